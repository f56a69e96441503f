"""
Dynamic masking for masked-LM training, with the behaviour of Hugging Face's
`DataCollatorForLanguageModeling` (torch path): every non-special, non-padding token is selected
with probability `mlm_probability`; of the selected tokens `mask_replace_prob` (80%) become the
mask token, `random_replace_prob` (10%) a random token of the tokenizer (`len(tokenizer)`, added
tokens included), the rest (10%) stay as they are; labels are the original ids at selected
positions and -100 everywhere else. The names, defaults and meaning of the two shares are
Hugging Face's: each is a share of all the selected tokens. With whole-word masking, words (a
word-start token and the continuation tokens after it) are selected instead of tokens, and every
token of a selected word is then masked, replaced or kept as above.
"""

from typing import Optional, Tuple

import torch

IGNORE_INDEX = -100


def select_positions(
    maskable: torch.Tensor,
    probability: float,
    generator: torch.Generator,
    word_starts: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """
    Boolean `(batch, length)` tensor of the positions to predict.

    # Parameters

    maskable : `torch.BoolTensor`
        True at tokens that may be selected (not special, not padding).
    probability : `float`
        Probability of selecting a token (or a word, with `word_starts`).
    generator : `torch.Generator`
        Source of randomness, on the device of `maskable`.
    word_starts : `torch.BoolTensor`, optional (default = `None`)
        True at tokens that begin a word; `None` selects tokens independently.
    """
    draws = torch.rand(maskable.shape, generator=generator, device=maskable.device)
    if word_starts is not None:
        # a word begins at a word-start token or at the first maskable token after a non-maskable one
        previous_maskable = torch.nn.functional.pad(maskable[:, :-1], (1, 0), value=False)
        starts = maskable & (word_starts | ~previous_maskable)
        positions = torch.arange(maskable.shape[1], device=maskable.device).expand_as(maskable)
        start_of_word = torch.cummax(
            torch.where(starts, positions, torch.zeros_like(positions)), dim=1
        ).values
        draws = torch.gather(draws, 1, start_of_word)
    return maskable & (draws < probability)


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    num_tokens: int,
    probability: float,
    generator: torch.Generator,
    word_starts: Optional[torch.Tensor] = None,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Returns `(masked_input_ids, labels)`; `input_ids` is left unchanged.

    # Parameters

    input_ids : `torch.LongTensor`
        `(batch, length)` token ids.
    maskable : `torch.BoolTensor`
        True at tokens that may be selected (not special, not padding).
    mask_token_id : `int`
        Id of the mask token.
    num_tokens : `int`
        Random replacements are drawn uniformly from `range(num_tokens)`: `len(tokenizer)`, as
        Hugging Face draws them (not the model config's `vocab_size`, which may count padding rows
        of the embedding or miss tokens added to the tokenizer).
    probability : `float`
        Selection probability (`mlm_probability`).
    generator : `torch.Generator`
        Source of randomness, on the device of `input_ids`.
    word_starts : `torch.BoolTensor`, optional (default = `None`)
        Word-start flags for whole-word masking.
    mask_replace_prob : `float`, optional (default = `0.8`)
        Share of selected tokens replaced by the mask token.
    random_replace_prob : `float`, optional (default = `0.1`)
        Share of selected tokens replaced by a random token; the rest
        (`1 - mask_replace_prob - random_replace_prob`) stay unchanged.
    """
    selected = select_positions(maskable, probability, generator, word_starts)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    to_mask = selected & (action < mask_replace_prob)
    to_random = (
        selected
        & (action >= mask_replace_prob)
        & (action < mask_replace_prob + random_replace_prob)
    )
    random_ids = torch.randint(
        num_tokens, input_ids.shape, generator=generator, device=input_ids.device
    )
    masked = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked = torch.where(to_random, random_ids, masked)
    return masked, labels


def word_start_table(tokenizer) -> torch.Tensor:
    """
    Boolean tensor over the vocabulary, True for tokens that begin a word: byte-level BPE tokens
    with a leading space marker `Ġ` (RoBERTa, GPT-2 style), WordPiece tokens without the `##`
    continuation prefix (BERT), SentencePiece tokens with the `▁` marker (XLM-R). Raises
    `ValueError` for a vocabulary in none of these styles.
    """
    vocab = tokenizer.get_vocab()
    tokens = sorted(vocab, key=vocab.get)
    table = torch.zeros(max(vocab.values()) + 1, dtype=torch.bool)
    if any(token.startswith("##") for token in tokens):
        for token in tokens:
            table[vocab[token]] = not token.startswith("##")
    elif any(token.startswith("Ġ") for token in tokens):
        for token in tokens:
            table[vocab[token]] = token.startswith("Ġ")
    elif any(token.startswith("\u2581") for token in tokens):
        for token in tokens:
            table[vocab[token]] = token.startswith("\u2581")
    else:
        raise ValueError(
            "whole-word masking needs a byte-level BPE, WordPiece or SentencePiece vocabulary; "
            f"cannot tell word starts in the vocabulary of {type(tokenizer).__name__}"
        )
    return table
