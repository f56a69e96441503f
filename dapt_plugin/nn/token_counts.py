"""
The real (not padding) tokens of the batches of a step: what `training_curves` divides by the
step's time, what `export_pretrained` records as tokens trained on, and what the benchmarks'
`step_timer` counts (with the lengths of the sequences, for their FLOPs).
"""

from typing import Any, Dict, List, Optional

import torch
from allennlp.data import TensorDict

# keys of a batch that mark its real (not padding) tokens: AllenNLP's text fields, Hugging Face's
_MASK_KEYS = ("mask", "attention_mask")
# keys of token ids, counted against the model's padding id when a batch has no mask
_ID_KEYS = ("input_ids", "token_ids")


def count_tokens(batch_group: List[TensorDict], pad_token_id: Optional[int]) -> Optional[float]:
    """Real (non-padding) tokens in the batches of one step; None when no batch has token ids."""
    counts = [
        mask.sum()
        for mask in (real_token_mask(batch, pad_token_id) for batch in batch_group)
        if mask is not None
    ]
    return float(torch.stack(counts).sum()) if counts else None


def real_token_mask(batch: Dict[str, Any], pad_token_id: Optional[int]) -> Optional[torch.Tensor]:
    """
    The `(batch, length)` mask, True at real tokens, of one batch: its mask, or its token ids
    compared with `pad_token_id` (all True without one); None when the batch has no token ids.
    """
    for keys in (_MASK_KEYS, _ID_KEYS):
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and key in keys:
                if key in _MASK_KEYS:
                    return value.bool()
                if pad_token_id is None:
                    return torch.ones_like(value, dtype=torch.bool)
                return value != pad_token_id
    for (
        value
    ) in batch.values():  # a text field: {"tokens": {"roberta": {"token_ids", "mask", ...}}}
        if isinstance(value, dict):
            mask = real_token_mask(value, pad_token_id)
            if mask is not None:
                return mask
    return None
