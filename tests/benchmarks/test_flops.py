"""
The FLOP model behind the benchmarks' MFU column (`benchmarks/_flops.py`), checked against
PyTorch's own count of a tiny RoBERTa's forward and backward matmuls, computed as the plugin
computes them (the last layer at the read positions only, `encode_rows`): an MFU built on a
wrong count would be wrong in every table.
"""

import pytest
import torch
from _flops import (
    BatchCounts,
    EncoderShape,
    MatmulPeak,
    batch_counts,
    classifier_training_flops,
    mlm_training_flops,
)
from torch.utils.flop_counter import FlopCounterMode
from transformers import RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification

from dapt_plugin.nn.selected_rows import encode_rows

# odd widths, so that a count that swaps two of them is wrong
_CONFIG = dict(
    vocab_size=101,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=40,
    max_position_embeddings=64,
    type_vocab_size=1,
    pad_token_id=1,
    num_labels=3,
)
_SHAPE = EncoderShape(layers=2, hidden=32, intermediate=40, vocab=101)


def _counted(step) -> int:
    """PyTorch's count of the FLOPs of `step()` (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def test_shape_is_read_from_a_model_config(tmp_path):
    RobertaConfig(**_CONFIG).save_pretrained(str(tmp_path))
    assert EncoderShape.of(str(tmp_path)) == _SHAPE


def test_batch_counts_leave_out_padding_and_unmasked_positions():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    labels = torch.tensor([[-100, 7, -100, -100], [3, -100, -100, -100]])
    assert batch_counts(mask, labels) == BatchCounts(
        tokens=5, attended=13, masked=2, sequences=2, masked_attended=3 + 2
    )
    assert batch_counts(mask) + batch_counts(mask) == BatchCounts(10, 26, 0, 4, 0)


@pytest.mark.parametrize("lengths", [[16], [16, 9]])
def test_masked_lm_count_matches_pytorch_forward_and_backward(lengths):
    """The plugin's path: the encoder over each sequence, its last layer and the LM head at the
    masked positions only."""
    torch.manual_seed(0)
    model = RobertaForMaskedLM(RobertaConfig(**_CONFIG, attn_implementation="eager"))
    counts, counted = BatchCounts(*[0] * len(BatchCounts._fields)), 0
    for length in lengths:  # one sequence at a time: no padding for eager attention to compute
        ids = torch.randint(5, 101, (1, length))
        labels = torch.full_like(ids, -100)
        labels[0, ::4] = ids[0, ::4]
        selected = labels != -100

        def step():
            rows = selected.flatten().nonzero().squeeze(1)
            logits = model.lm_head(encode_rows(model.roberta, rows, ids, torch.ones_like(ids)))
            torch.nn.functional.cross_entropy(logits, labels[selected]).backward()

        counted += _counted(step)
        counts += batch_counts(torch.ones_like(ids), labels)
    assert mlm_training_flops(_SHAPE, counts) == counted


def test_classifier_count_matches_pytorch_forward_and_backward():
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(**_CONFIG, attn_implementation="eager"))
    ids = torch.randint(5, 101, (4, 12))

    def step():
        first = encode_rows(model.roberta, torch.arange(4) * 12, ids, torch.ones_like(ids))
        logits = model.classifier(first[:, None])  # the head reads the first of the positions
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()

    expected = classifier_training_flops(_SHAPE, batch_counts(torch.ones_like(ids)), num_labels=3)
    assert expected == _counted(step)


def test_matmul_peak_is_the_median_of_its_samples():
    peak = MatmulPeak(threads=1, size=64, repeats=2)
    for _ in range(3):
        assert peak.sample() > 0
    assert peak.value == sorted(peak.samples)[1]
    assert "median of 3 samples" in peak.describe()
