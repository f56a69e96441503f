import logging
import zlib
from typing import Dict, Optional, Tuple

import torch
import transformers
from allennlp.common import cached_transformers
from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params
from allennlp.data import Vocabulary
from allennlp.models.model import Model
from transformers import AutoConfig, AutoModelForMaskedLM, PreTrainedModel, PreTrainedTokenizerBase

from dapt_plugin.common.console import quiet_logger
from dapt_plugin.common.distributed import rank
from dapt_plugin.common.pretrained import check_model_name, check_remote_code
from dapt_plugin.nn.masked_lm_heads import head_positions, masked_lm_head, missing_head_weights
from dapt_plugin.nn.masking import IGNORE_INDEX, mask_tokens, word_start_table
from dapt_plugin.nn.selected_rows import encode_rows, encodes_rows
from dapt_plugin.training.metrics.masked_lm_metrics import MaskedLmMetrics

logger = logging.getLogger(__name__)

# arguments renamed to Hugging Face's names (`DataCollatorForLanguageModeling`), same meaning
_RENAMED_ARGUMENTS = {
    "mask_replace_probability": "mask_replace_prob",
    "random_replace_probability": "random_replace_prob",
}


@Model.register("dapt_masked_lm")
class DaptMaskedLm(Model):
    """
    Continued masked-LM pretraining of a Hugging Face `AutoModelForMaskedLM` (DAPT and TAPT).

    Every batch is masked anew when it is seen (dynamic masking, as RoBERTa): tokens other than
    special and padding tokens are selected with probability `mlm_probability`, and of those 80%
    become the mask token, 10% a random token of the tokenizer and 10% stay, as Hugging Face's
    `DataCollatorForLanguageModeling` does, with its argument names (see
    `dapt_plugin/nn/masking.py`).
    The LM head (and its vocabulary-sized projection) runs only at the selected positions, and
    so does the encoder's last layer (`last_layer_at_read_positions`).
    Reports `perplexity` (exp of the mean loss over masked tokens) and `mlm_accuracy` (share of
    masked tokens predicted exactly).

    Masks come from the model's own random generator, seeded from `masking_seed`, the number of
    batches this model has trained on (saved in checkpoints, so `--recover` continues the same
    sequence of masks) and the distributed rank. In evaluation, the masks of each example depend
    only on `evaluation_masking_seed` and that example's token ids (not on the batch it is in, its
    padding or the batch size), so `allennlp evaluate` on the same file gives the same perplexity
    every time, for any batch size and order, and for any model with the same tokenizer.

    # Parameters

    vocab : `Vocabulary`
        Unused (the model's own tokenizer defines the vocabulary); use `{"type": "empty"}`.
    model_name : `str`
        Model-hub name or `save_pretrained` directory of the encoder to adapt (`MODEL_NAME`).
    mlm_probability : `float`, optional (default = `0.15`)
        Share of tokens (or words) selected for prediction; in (0, 1).
    mask_replace_prob : `float`, optional (default = `0.8`)
        Share of selected tokens replaced by the mask token (Hugging Face's name and meaning;
        `mask_replace_probability` before).
    random_replace_prob : `float`, optional (default = `0.1`)
        Share of selected tokens replaced by a token drawn uniformly from the tokenizer's
        `len(tokenizer)` tokens, added tokens included; the rest stay unchanged. Hugging Face's
        name and meaning (a share of all selected tokens; `random_replace_probability` before).
    whole_word_masking : `bool`, optional (default = `False`)
        Select whole words instead of single tokens (byte-level BPE, WordPiece and SentencePiece
        vocabularies).
    masking_seed : `int`, optional (default = `0`)
        Seed of the training masks.
    evaluation_masking_seed : `int`, optional (default = `1234`)
        Seed of the evaluation masks.
    bf16 : `bool`, optional (default = `False`)
        Run the forward pass under bfloat16 autocast (CUDA only; for fp16 use the trainer's
        `use_amp`). Parameters and optimizer state stay float32.
    gradient_checkpointing : `bool`, optional (default = `False`)
        Recompute activations in the backward pass to save memory.
    trust_remote_code : `bool`, optional (default = `False`)
        Allow a model directory to run its own Python code; off unless you trust its source.
    load_weights : `bool`, optional (default = `True`)
        Load the weights of `model_name`; `False` builds the model from its config alone, as
        loading an archive does (the archive holds the trained weights).
    attn_implementation : `str`, optional (default = `None`)
        transformers' attention implementation of the encoder (`"sdpa"`: PyTorch's fused
        scaled-dot-product attention, `"eager"`, `"flash_attention_2"` where installed); `None`
        keeps transformers' default for the model (`"sdpa"` where the model supports it).
    torch_compile : `bool`, optional (default = `False`)
        Compile the encoder with `torch.compile` when it first runs (minutes on a CPU, where it
        measured slower than without; `benchmarks/gpu.py --compile` measures it on a GPU).
        Checkpoints and the export are the same as without.
    last_layer_at_read_positions : `bool`, optional (default = `True`)
        Run the encoder's last layer only at the selected positions, the ones the head reads
        (its keys and values at every token), where `dapt_plugin/nn/selected_rows.py` supports
        the encoder (BERT's layout: BERT, RoBERTa, XLM-R, CamemBERT; not with
        `gradient_checkpointing` or `torch_compile`). The same function with less computed;
        `False` runs the encoder's own forward over every position (its dropout draws masks for
        every position, so a training run differs from one with `True` as two seeds do).

    Registered as a `Model` with name "dapt_masked_lm".
    """

    def __init__(
        self,
        vocab: Vocabulary,
        model_name: str,
        mlm_probability: float = 0.15,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
        whole_word_masking: bool = False,
        masking_seed: int = 0,
        evaluation_masking_seed: int = 1234,
        bf16: bool = False,
        gradient_checkpointing: bool = False,
        trust_remote_code: bool = False,
        load_weights: bool = True,
        attn_implementation: Optional[str] = None,
        torch_compile: bool = False,
        last_layer_at_read_positions: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(vocab, **kwargs)
        if not 0.0 < mlm_probability < 1.0:
            raise ConfigurationError(f"`mlm_probability` must be in (0, 1); got {mlm_probability}")
        if not (
            0.0 <= mask_replace_prob
            and 0.0 <= random_replace_prob
            and mask_replace_prob + random_replace_prob <= 1.0
        ):
            raise ConfigurationError(
                "`mask_replace_prob` and `random_replace_prob` must be non-negative "
                f"and sum to at most 1; got {mask_replace_prob} and {random_replace_prob}"
            )
        check_model_name(
            model_name, ("model", "tokenizer") if load_weights else ("config", "tokenizer")
        )
        check_remote_code(model_name, trust_remote_code)
        self.model_name = model_name
        self.mlm: PreTrainedModel
        options = dict(trust_remote_code=trust_remote_code)
        if attn_implementation is not None:
            options["attn_implementation"] = attn_implementation
        try:
            if load_weights:
                # transformers' own report of the weights it initialised is replaced by the line below
                with quiet_logger(transformers.modeling_utils.logger):
                    self.mlm, loading_info = AutoModelForMaskedLM.from_pretrained(
                        model_name, output_loading_info=True, **options
                    )
                # head weights the checkpoint lacks, which transformers initialised at random
                self.missing_head_weights = missing_head_weights(
                    self.mlm, loading_info["missing_keys"]
                )
            else:
                config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code)
                self.mlm = AutoModelForMaskedLM.from_config(config, **options)
                self.missing_head_weights = []
        except (ValueError, ImportError) as error:
            if attn_implementation is None:
                raise
            raise ConfigurationError(
                f"`attn_implementation` {attn_implementation!r} cannot be used for {model_name!r}: "
                f"{error}; leave it unset for transformers' default"
            ) from None
        if self.missing_head_weights:
            logger.warning(
                "%s has no trained masked-LM head (%d of its tensors are missing from the checkpoint, "
                "e.g. %s): the head starts at random; training warms it up alone first unless "
                "HEAD_WARMUP_STEPS is 0, and a masked-LM loss measured before that is a random "
                "head's",
                model_name,
                len(self.missing_head_weights),
                self.missing_head_weights[0],
            )
        self.tokenizer: PreTrainedTokenizerBase = cached_transformers.get_tokenizer(
            model_name, trust_remote_code=trust_remote_code
        )
        if self.tokenizer.mask_token_id is None:
            raise ConfigurationError(
                f"the tokenizer of {model_name!r} has no mask token; use a masked-LM model's tokenizer"
            )
        if gradient_checkpointing:
            self.mlm.gradient_checkpointing_enable()
        if torch_compile:
            self.mlm.base_model.compile()  # in place: the parameters keep their names
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.masking_seed = masking_seed
        self.evaluation_masking_seed = evaluation_masking_seed
        self.bf16 = bf16
        self.last_layer_at_read_positions = last_layer_at_read_positions
        embedding_rows = self.mlm.get_input_embeddings().num_embeddings
        # random replacements are drawn from the tokenizer's tokens, as Hugging Face draws them
        self.num_tokens = len(self.tokenizer)
        if self.num_tokens > embedding_rows:
            raise ConfigurationError(
                f"the tokenizer of {model_name!r} has {self.num_tokens} tokens, but the model's "
                f"input embeddings have {embedding_rows} rows: the ids from {embedding_rows} on "
                "(tokens added to the tokenizer) have no embedding; resize the embeddings "
                "(`model.resize_token_embeddings(len(tokenizer))`) and save the model again"
            )
        special = torch.zeros(embedding_rows, dtype=torch.bool)
        special[self.tokenizer.all_special_ids] = True
        self.register_buffer("_special", special, persistent=False)
        if whole_word_masking:
            try:
                self.register_buffer(
                    "_word_starts", word_start_table(self.tokenizer), persistent=False
                )
            except ValueError as error:
                raise ConfigurationError(f"`whole_word_masking`: {error}") from None
        else:
            self._word_starts = None
        # Batches trained on; part of the checkpoint so that a recovered run continues the masks.
        self.register_buffer("_batches_seen", torch.zeros((), dtype=torch.long))
        self._head = masked_lm_head(self.mlm)
        if self._head is None:
            logger.warning(
                "%s: unknown masked-LM head; computing logits at every position",
                type(self.mlm).__name__,
            )
        self._generators: Dict[torch.device, torch.Generator] = {}
        self._metrics = MaskedLmMetrics()

    @classmethod
    def from_params(cls, params: Params, *args, **extras) -> "DaptMaskedLm":
        for old, new in _RENAMED_ARGUMENTS.items():
            if old in params:
                raise ConfigurationError(
                    f"`{old}` of the dapt_masked_lm model was renamed `{new}`, Hugging Face's "
                    f"name (same meaning); got {old}={params[old]!r}"
                )
        return super().from_params(params, *args, **extras)

    def _generator(self, device: torch.device, seed: int) -> torch.Generator:
        generator = self._generators.get(device)
        if generator is None:
            generator = self._generators[device] = torch.Generator(device=device)
        generator.manual_seed(seed & 0x7FFF_FFFF_FFFF)
        return generator

    def _mask(
        self, input_ids, attention_mask, maskable, word_starts
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """`(masked_input_ids, labels)`: training masks for the batch, evaluation masks per example."""
        arguments = (self.tokenizer.mask_token_id, self.num_tokens, self.mlm_probability)
        options = (self.mask_replace_prob, self.random_replace_prob)
        if self.training:
            generator = self._generator(
                input_ids.device, hash((self.masking_seed, int(self._batches_seen), rank()))
            )
            return mask_tokens(input_ids, maskable, *arguments, generator, word_starts, *options)
        # each example (its tokens without padding) masked with a generator seeded from its own
        # ids, on the CPU whatever the model's device (a CUDA generator draws other numbers from
        # the same seed): the same masks wherever a model is evaluated
        device = input_ids.device
        input_ids, attention_mask, maskable = (
            input_ids.cpu(),
            attention_mask.cpu(),
            maskable.cpu(),
        )
        word_starts = word_starts.cpu() if word_starts is not None else None
        masked, labels = input_ids.clone(), torch.full_like(input_ids, IGNORE_INDEX)
        for row in range(input_ids.shape[0]):
            keep = attention_mask[row]
            content = zlib.crc32(input_ids[row][keep].numpy().tobytes())
            generator = self._generator(
                input_ids.device, hash((self.evaluation_masking_seed, content))
            )
            row_masked, row_labels = mask_tokens(
                input_ids[row, keep][None],
                maskable[row, keep][None],
                *arguments,
                generator,
                word_starts[row, keep][None] if word_starts is not None else None,
                *options,
            )
            masked[row, keep] = row_masked[0]
            labels[row, keep] = row_labels[0]
        return masked.to(device), labels.to(device)

    def forward(  # type: ignore
        self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """
        # Parameters

        input_ids : `torch.LongTensor`
            `(batch, length)` token ids with special tokens, padded with the pad token.
        attention_mask : `torch.BoolTensor`, optional
            `(batch, length)`, true at the examples' tokens (`masked_lm_batches` gives it); without
            it, every position that does not hold the pad id, which takes a pad token written in
            a text (`<pad>`) for padding.

        # Returns

        `loss` (mean cross-entropy over masked tokens), `num_masked` and `labels` (original ids at
        selected positions, -100 elsewhere).
        """
        if self.bf16 and input_ids.device.type != "cuda":
            raise ConfigurationError(
                "`bf16` autocast needs a CUDA GPU, but the model runs on the CPU; set the model's "
                "`bf16` to false (BF16=false) or train on a GPU (cuda_device)"
            )
        if attention_mask is None:
            attention_mask = input_ids != self.tokenizer.pad_token_id
        attention_mask = attention_mask.bool()
        maskable = attention_mask & ~self._special[input_ids]
        word_starts = self._word_starts[input_ids] if self._word_starts is not None else None
        masked_ids, labels = self._mask(input_ids, attention_mask, maskable, word_starts)
        if self.training:
            self._batches_seen += 1
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            # the selected positions, padded to a few sizes over a run (see `head_positions`)
            positions, targets, num_selected = head_positions(labels)
            encoder = self.mlm.base_model
            if self._head is None:
                logits = self.mlm(input_ids=masked_ids, attention_mask=attention_mask).logits
                logits = logits.flatten(0, 1)[positions]
            elif self.last_layer_at_read_positions and encodes_rows(encoder):
                # the last layer at the head's positions only (see `encode_rows`)
                hidden = encode_rows(encoder, positions, masked_ids, attention_mask)
                logits = self._head(self.mlm, hidden)
            else:
                hidden = encoder(input_ids=masked_ids, attention_mask=attention_mask)
                logits = self._head(self.mlm, hidden.last_hidden_state.flatten(0, 1)[positions])
        logits = logits.float()
        if num_selected:
            # the padding rows' targets are -100: in neither the mean nor the count of correct
            loss = torch.nn.functional.cross_entropy(logits, targets)
        else:  # no token selected (a batch of very short lines): zero loss that still touches every weight
            loss = logits.sum() * 0.0
        with torch.no_grad():
            num_masked = float(num_selected)
            self._metrics(float(loss), float((logits.argmax(-1) == targets).sum()), num_masked)
        return {"loss": loss, "num_masked": torch.tensor(num_masked), "labels": labels}

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        return self._metrics.get_metric(reset)
