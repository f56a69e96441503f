"""
The masked-LM heads of Hugging Face encoders: computing logits at the masked positions only, and
telling which of a model's parameters are its head.

A masked-LM model is its encoder (`model.base_model`) plus a head that maps hidden states to
vocabulary logits. Only about 15% of the positions are predicted, so the head (whose output
layer is as wide as the vocabulary) runs on those alone. The head's parameters are the model's
parameters outside the encoder, less those tied to it (the output projection shares the
encoder's word embeddings in every family here).

How many positions are masked is a random draw for every batch. The head runs on them padded to a
multiple of `HEAD_ROWS_MULTIPLE` rows (`head_positions`), so that its tensors (the
vocabulary-wide logits, the hidden states they come from, their gradients) take a few sizes over
a run instead of a new one at every step: tensors of ever-new sizes fragment the allocator's
heap, which glibc's malloc does not give back to the system, and a CPU run's resident memory
kept growing (TAPT of MiniLM-L6, batch 32 x 48 tokens: +10.5% from epoch 2 to epoch 28, all of
it free memory kept in the heap, the memory in use constant; flat with the padding,
`benchmarks/memory.py`). The padding costs at most 63 rows of head per batch, and counts in
neither the loss nor the metrics.
"""

from typing import Callable, Dict, List, Optional, Tuple

import torch
from transformers import PreTrainedModel

from dapt_plugin.nn.masking import IGNORE_INDEX

HeadFunction = Callable[[PreTrainedModel, torch.Tensor], torch.Tensor]

# Logits from hidden states, by model class: what each class's `forward` does after its encoder.
_HEADS: Dict[str, HeadFunction] = {
    "BertForMaskedLM": lambda model, hidden: model.cls(hidden),
    "RobertaForMaskedLM": lambda model, hidden: model.lm_head(hidden),
    "XLMRobertaForMaskedLM": lambda model, hidden: model.lm_head(hidden),
    "CamembertForMaskedLM": lambda model, hidden: model.lm_head(hidden),
    "DistilBertForMaskedLM": lambda model, hidden: model.vocab_projector(
        model.vocab_layer_norm(model.activation(model.vocab_transform(hidden)))
    ),
    "ElectraForMaskedLM": lambda model, hidden: model.generator_lm_head(
        model.generator_predictions(hidden)
    ),
    "DebertaV2ForMaskedLM": lambda model, hidden: (
        model.cls(hidden)
        if model.legacy
        else model.lm_predictions(hidden, model.deberta.embeddings.word_embeddings)
    ),
    "ModernBertForMaskedLM": lambda model, hidden: model.decoder(model.head(hidden)),
}
# Other classes whose head is a single module under one of these names (BERT's and RoBERTa's
# layouts, which many families copy).
_HEAD_ATTRIBUTES = ("lm_head", "cls")

KNOWN_FAMILIES = tuple(_HEADS)

# the head's rows are padded to a multiple of this (see the module's docstring)
HEAD_ROWS_MULTIPLE = 64


def head_positions(
    labels: torch.Tensor, multiple: int = HEAD_ROWS_MULTIPLE
) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """
    Where the head predicts: `(positions, targets, num_selected)`, the positions in
    `labels.flatten()` of the selected tokens (labels other than -100) followed by as many
    padding positions (position 0, target -100, ignored by `cross_entropy`) as make their number
    a multiple of `multiple`; their targets; the number of selected tokens.

    # Parameters

    labels : `torch.LongTensor`
        `(batch, length)` original ids at the selected positions, -100 elsewhere.
    multiple : `int`, optional (default = `HEAD_ROWS_MULTIPLE`)
        The number of positions returned is a multiple of it.
    """
    flat = labels.flatten()
    positions = flat.ne(IGNORE_INDEX).nonzero().squeeze(1)
    num_selected = positions.numel()
    padding = -num_selected % multiple
    targets = flat[positions]
    if padding:
        positions = torch.cat([positions, positions.new_zeros(padding)])
        targets = torch.cat([targets, targets.new_full((padding,), IGNORE_INDEX)])
    return positions, targets, num_selected


def masked_lm_head(model: PreTrainedModel) -> Optional[HeadFunction]:
    """The function from hidden states to logits of `model`'s class, or None if unknown."""
    head = _HEADS.get(type(model).__name__)
    if head is not None:
        return head
    attribute = next((name for name in _HEAD_ATTRIBUTES if hasattr(model, name)), None)
    if attribute is None:
        return None
    return lambda model, hidden: getattr(model, attribute)(hidden)


def head_parameters(model: PreTrainedModel) -> Dict[str, torch.nn.Parameter]:
    """The parameters of the head, by name: outside the encoder and not tied to it."""
    encoder = {id(p) for p in model.base_model.parameters()}
    prefix = model.base_model_prefix + "."
    return {
        name: p
        for name, p in model.named_parameters()
        if not name.startswith(prefix) and id(p) not in encoder
    }


def missing_head_weights(model: PreTrainedModel, missing_keys: List[str]) -> List[str]:
    """
    Of the `missing_keys` that `from_pretrained(..., output_loading_info=True)` reports (weights
    the checkpoint lacks, initialised at random), those of the head.
    """
    prefix = model.base_model_prefix + "."
    encoder = {id(p) for p in model.base_model.parameters()}
    head = {
        name
        for name, p in model.named_parameters(remove_duplicate=False)
        if not name.startswith(prefix) and id(p) not in encoder
    }
    return sorted(key for key in missing_keys if key in head)
