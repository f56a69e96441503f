"""
Model FLOP utilisation (MFU) of the benchmarks: the FLOPs a training step needs, from the model's
shape and the batches it trained on, and the machine's dense matmul FLOP/s, measured by the
benchmark itself with the threads (or the GPU and precision) its runs use. MFU is their ratio.

FLOPs. A matmul of (m x k) by (k x n) is 2mkn FLOPs. Per real (non-padding) token, the forward pass
of each encoder layer runs the Q, K, V and output projections (4 x 2h^2 for hidden size h) and the
feed-forward block (2 x 2hi for intermediate size i); per sequence of L real tokens, attention's
QK^T and AV are 2L^2h each per layer (the number of heads does not change them). The last layer's
output is read at a few positions only (the masked ones of a masked LM, the first token of a
classifier that pools it): there, only its K and V projections count at every token, its Q and
output projections, feed-forward and attention (2Lh per read position and product) at the read
positions (see the plugin's `nn/selected_rows.py`, which computes just that). The masked-LM
head (a dense h x h layer and the h x V decoder) counts at the masked positions only, and a
classifier head (RoBERTa's and BERT's: one h x h layer, then h x labels) once per sequence.
The backward pass computes the gradients of each matmul's two inputs, twice its FLOPs, so a
training step is 3x its forward pass: the usual approximation (Kaplan et al., 2020; PaLM's MFU),
exact for the matmuls (`tests/benchmarks/test_flops.py` checks the count against PyTorch's
`FlopCounterMode`). Not counted: embedding lookups, layer norm, softmax, GELU, dropout, the loss
and the optimizer: work a step pays for that adds no model FLOPs.

The count is of useful work, the same for every contender: padding is computed by a padded batch
but not counted, and the LM head and the last layer count at the read positions only, also for a
contender that computes them at every position (the Trainer's `RobertaForMaskedLM` and
`...ForSequenceClassification`). A contender that computes
more than it needs is therefore slower at the same count, and its MFU shows it.

This module imports neither allennlp nor the plugin: the Trainer's worker processes use it too.
"""

import statistics
import time
from typing import List, NamedTuple, Optional, Sequence

import torch

# the label of ignored positions in masked-LM labels (Hugging Face's and the plugin's)
IGNORE_INDEX = -100


class EncoderShape(NamedTuple):
    """What the FLOPs of a BERT-style encoder depend on."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int

    @classmethod
    def of(cls, model_name: str) -> "EncoderShape":
        """The shape of a model-hub name or `save_pretrained` directory, from its config."""
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_name)
        return cls(
            config.num_hidden_layers,
            config.hidden_size,
            config.intermediate_size,
            config.vocab_size,
        )


class BatchCounts(NamedTuple):
    """What the FLOPs of a step depend on, added up over its batches."""

    tokens: int  # real (non-padding) tokens
    attended: int  # sum over sequences of (real tokens)^2: the query-key pairs of attention
    masked: int  # positions the masked-LM loss is computed at
    sequences: int
    masked_attended: int  # sum over masked positions of their sequence's real tokens

    def __add__(self, other: "BatchCounts") -> "BatchCounts":  # type: ignore[override]
        return BatchCounts(*(a + b for a, b in zip(self, other)))


def batch_counts(
    attention_mask: torch.Tensor, labels: Optional[torch.Tensor] = None
) -> BatchCounts:
    """
    The counts of one batch from its `(batch, length)` attention mask (1 at real tokens) and, for
    masked-LM, its labels (`IGNORE_INDEX` where no loss is computed).
    """
    lengths = attention_mask.long().sum(-1)
    masked = (
        (labels != IGNORE_INDEX).long().sum(-1) if labels is not None else torch.zeros_like(lengths)
    )
    return BatchCounts(
        int(lengths.sum()),
        int((lengths**2).sum()),
        int(masked.sum()),
        int(attention_mask.shape[0]),
        int((masked * lengths).sum()),
    )


def encoder_flops(shape: EncoderShape, counts: BatchCounts, read: int, read_attended: int) -> float:
    """
    Forward FLOPs of the encoder's layers over the real tokens of `counts`, the last layer's
    output at `read` positions only, whose query-key pairs are `read_attended`.
    """
    h, i = shape.hidden, shape.intermediate
    keys_values = 2 * 2 * h * h
    rest = 2 * (2 * h * h + 2 * h * i)  # Q and output projections, feed-forward
    layer = (keys_values + rest) * counts.tokens + 2 * 2 * h * counts.attended
    last = keys_values * counts.tokens + rest * read + 2 * 2 * h * read_attended
    return float((shape.layers - 1) * layer + last)


def mlm_head_flops(shape: EncoderShape, counts: BatchCounts) -> float:
    """Forward FLOPs of the masked-LM head (dense h x h, then the h x V decoder) at masked positions."""
    h = shape.hidden
    return float(2 * (h * h + h * shape.vocab) * counts.masked)


def classifier_head_flops(shape: EncoderShape, counts: BatchCounts, num_labels: int) -> float:
    """Forward FLOPs of a classifier head (one h x h layer, then h x labels) on each sequence."""
    h = shape.hidden
    return float(2 * (h * h + h * num_labels) * counts.sequences)


def mlm_training_flops(shape: EncoderShape, counts: BatchCounts) -> float:
    """Forward and backward FLOPs of masked-LM training on batches of `counts` (3x the forward)."""
    encoder = encoder_flops(shape, counts, counts.masked, counts.masked_attended)
    return 3 * (encoder + mlm_head_flops(shape, counts))


def classifier_training_flops(shape: EncoderShape, counts: BatchCounts, num_labels: int) -> float:
    """Forward and backward FLOPs of fine-tuning a classifier on batches of `counts` (3x the forward)."""
    # the first token read: one position per sequence, attending to its sequence's tokens
    encoder = encoder_flops(shape, counts, counts.sequences, counts.tokens)
    return 3 * (encoder + classifier_head_flops(shape, counts, num_labels))


def matmul_flops_per_s(
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    size: int = 4096,
    repeats: int = 3,
    iterations: int = 1,
) -> float:
    """
    The best FLOP/s of `repeats` timings of `iterations` dense (size x size) @ (size x size)
    matmuls (`torch.mm`) on `device` in `dtype`, after one warm-up, with torch's current number
    of threads: what the machine's matmul kernels reach, the denominator of MFU.
    """
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    b = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    out = torch.empty(size, size, device=device, dtype=dtype)
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    torch.mm(a, b, out=out)
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            torch.mm(a, b, out=out)
        synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * iterations / best


class MatmulPeak:
    """
    The machine's dense matmul FLOP/s sampled along a benchmark (`sample()` before each run), so
    that the denominator sees the same load from other processes as the runs it divides: `value`
    is the median of the samples.

    # Parameters

    threads : `int`, optional (default = `None`)
        torch threads of the measurement, those of the runs; `None` leaves torch's setting.
    **matmul : optional
        Arguments of `matmul_flops_per_s` (device, dtype, size, repeats, iterations).
    """

    def __init__(self, threads: Optional[int] = None, **matmul) -> None:
        self.threads = threads
        self.matmul = matmul
        self.samples: List[float] = []

    def sample(self) -> float:
        previous = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            self.samples.append(matmul_flops_per_s(**self.matmul))
        finally:
            torch.set_num_threads(previous)
        return self.samples[-1]

    @property
    def value(self) -> float:
        if not self.samples:
            self.sample()
        return statistics.median(self.samples)

    def describe(self) -> str:
        """The samples in GFLOP/s (TFLOP/s from 1e12 FLOP/s on), for a table's notes."""
        scale, unit = (1e12, "TFLOP/s") if self.value >= 1e12 else (1e9, "GFLOP/s")
        low, high = min(self.samples), max(self.samples)
        return (
            f"{self.value / scale:.1f} {unit} (median of {len(self.samples)} samples, "
            f"{low / scale:.1f} to {high / scale:.1f})"
        )


def achieved_flops_per_s(flops: Sequence[float], ends: Sequence[float]) -> float:
    """
    Model FLOP/s of steps 2..N (`flops[i]` of the step that ended at `ends[i]`) over the time from
    the end of step 1 to the end of step N, the window the benchmarks' tokens/s are measured over.
    """
    return sum(flops[1:]) / (ends[-1] - ends[0])
