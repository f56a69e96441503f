"""
The real (not padding) tokens of the batches of a step: what `training_curves` divides by the
step's time, what `export_pretrained` records as tokens trained on, and what the benchmarks'
`step_timer` counts.
"""

from typing import Any, Dict, List, Optional

import torch
from allennlp.data import TensorDict

# keys of a batch that mark its real (not padding) tokens: AllenNLP's text fields, Hugging Face's
_MASK_KEYS = ("mask", "attention_mask")
# keys of token ids, counted against the model's padding id when a batch has no mask (`dapt_masked_lm`)
_ID_KEYS = ("input_ids", "token_ids")


def count_tokens(batch_group: List[TensorDict], pad_token_id: Optional[int]) -> Optional[float]:
    """Real (non-padding) tokens in the batches of one step; None when no batch has token ids."""
    counts = [
        count
        for count in (_batch_tokens(batch, pad_token_id) for batch in batch_group)
        if count is not None
    ]
    return float(torch.stack(counts).sum()) if counts else None


def _batch_tokens(batch: Dict[str, Any], pad_token_id: Optional[int]) -> Optional[torch.Tensor]:
    for keys in (_MASK_KEYS, _ID_KEYS):
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and key in keys:
                if key in _MASK_KEYS:
                    return value.sum()
                return (
                    (value != pad_token_id).sum()
                    if pad_token_id is not None
                    else torch.tensor(value.numel())
                )
    for (
        value
    ) in batch.values():  # a text field: {"tokens": {"roberta": {"token_ids", "mask", ...}}}
        if isinstance(value, dict):
            count = _batch_tokens(value, pad_token_id)
            if count is not None:
                return count
    return None
