"""
Builds tiny, randomly initialised RoBERTa models with a byte-level BPE tokenizer trained on local
text, in Hugging Face's `save_pretrained` layout. Tests and benchmarks use them in place of a
downloaded checkpoint, so nothing here touches the network.
"""

import logging
from pathlib import Path
from typing import Iterable, Union

from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

logger = logging.getLogger(__name__)

ROBERTA_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_bpe_tokenizer(
    text_files: Iterable[Union[str, Path]], output_dir: Union[str, Path], vocab_size: int = 1000
) -> RobertaTokenizerFast:
    """
    Trains a byte-level BPE tokenizer with RoBERTa's special tokens on `text_files` and saves it
    as a `RobertaTokenizerFast` in `output_dir`.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train(
        [str(f) for f in text_files],
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=ROBERTA_SPECIAL_TOKENS,
        show_progress=False,
    )
    bpe.save_model(str(output_dir))
    tokenizer = RobertaTokenizerFast(
        vocab_file=str(output_dir / "vocab.json"),
        merges_file=str(output_dir / "merges.txt"),
        model_max_length=512,
    )
    tokenizer.save_pretrained(str(output_dir))
    return tokenizer


def build_tiny_roberta(
    output_dir: Union[str, Path],
    text_files: Iterable[Union[str, Path]],
    vocab_size: int = 1000,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    max_length: int = 512,
    seed: int = 0,
) -> Path:
    """
    Writes a randomly initialised `RobertaForMaskedLM` (`num_layers` x `hidden_size`) and a BPE
    tokenizer trained on `text_files` to `output_dir`, loadable with `AutoModelForMaskedLM`,
    `AutoTokenizer` and as `MODEL_NAME` of every config in `training_config/`.
    """
    output_dir = Path(output_dir)
    tokenizer = train_bpe_tokenizer(text_files, output_dir, vocab_size)
    save_random_roberta(output_dir, tokenizer, num_layers, hidden_size, num_heads, max_length, seed)
    logger.info(
        "Tiny RoBERTa (%d layers, %d wide) written to %s", num_layers, hidden_size, output_dir
    )
    return output_dir


def save_random_roberta(
    output_dir: Union[str, Path],
    tokenizer: RobertaTokenizerFast,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    max_length: int = 512,
    seed: int = 0,
) -> None:
    """
    Writes a `RobertaForMaskedLM` of `num_layers` x `hidden_size` with random weights drawn from
    `seed`, for `tokenizer`'s vocabulary and sequences of up to `max_length` tokens, to
    `output_dir` (`save_pretrained` layout; the tokenizer is saved by the caller).
    """
    import torch

    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=max_length + 2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        type_vocab_size=1,
    )
    torch.manual_seed(seed)
    RobertaForMaskedLM(config).save_pretrained(str(output_dir))
