"""
Where a masked-LM training step's time goes, against the machine's matmul limit: the plugin's
model (`dapt_masked_lm`: masking, the encoder, the LM head at masked positions) and fused AdamW
(the config's default) on packed batches of 16 x 128 random tokens, profiled in this process
(`torch.profiler`) for a 4 x 256 RoBERTa and a roberta-base-shaped one (12 x 768), both with
roberta-base's 50,265-token vocabulary (`_common.build_model`).

MFU (`_flops.py`) is the product of three shares: of the step's wall time, the share spent in
matmul kernels (`mm`, `addmm`, `bmm`); the FLOP/s those kernels reach (the profiler's count of
their FLOPs over their time) as a share of the dense `torch.mm` FLOP/s of 4096 x 4096 matrices
measured before and after each model; and the model FLOPs' share of the matmul FLOPs run (below
1 where work is computed but not counted: none here, the batches are packed). The rest of the
step, by kind of work (each operator's own time), says what holds MFU back: the optimizer's pass
over every weight; the dense gradient of the word embeddings (zeroing it, adding the tied
decoder's); work on (masked x vocabulary) tensors (the decoder's bias, log-softmax and loss, the
accuracy metric's argmax); dropout, GELU, layer norm, attention's softmax; and the rest (residual
adds, copies, masking, Python between operators).

    .venv/bin/python benchmarks/mfu_breakdown.py [--steps 2] [--threads 1]
"""

import argparse
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch
from _common import BATCH_SIZE, MAX_LENGTH, append_results, build_model, markdown_table
from _flops import EncoderShape, MatmulPeak, batch_counts, mlm_training_flops

_MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
# kinds of elementwise work by the operators that do them
_BY_NAME = {
    "dropout": ("aten::bernoulli_", "aten::native_dropout", "aten::native_dropout_backward"),
    "GELU": ("aten::gelu", "aten::gelu_backward"),
    "layer norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "attention softmax": ("aten::_softmax", "aten::_softmax_backward_data", "aten::_safe_softmax"),
}
KINDS = [
    "optimizer",
    "word-embedding gradient",
    "vocabulary-wide",
    *_BY_NAME,
    "other",
]


def _kind(name: str, input_shapes: list, shape: EncoderShape) -> str:
    """
    The kind of work of a non-matmul operator: the optimizer's; on the (vocabulary x hidden)
    gradient of the word embeddings (zeroing it, adding the tied decoder's); on (masked x
    vocabulary) tensors (the decoder's bias, log-softmax and loss, the accuracy metric's argmax);
    or by its name.
    """
    if name == "aten::_fused_adamw_" or name.startswith("Optimizer."):
        return "optimizer"
    if [shape.vocab, shape.hidden] in input_shapes:
        return "word-embedding gradient"
    if any(len(s) == 2 and s[1] == shape.vocab for s in input_shapes):
        return "vocabulary-wide"
    return next((kind for kind, names in _BY_NAME.items() if name in names), "other")


def profile_steps(model_dir: Path, steps: int) -> Dict[str, float]:
    """
    Seconds per step in all, in matmuls and in each of `KINDS`, the model FLOPs and the FLOPs the
    matmul kernels ran, per step over `steps` profiled steps.
    """
    from allennlp.data import Vocabulary

    from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm

    model = DaptMaskedLm(Vocabulary.empty(), str(model_dir))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    generator = torch.Generator().manual_seed(0)
    special = set(model.tokenizer.all_special_ids)
    vocabulary = torch.tensor([i for i in range(model.num_tokens) if i not in special])
    shape = EncoderShape.of(str(model_dir))

    def step() -> float:
        picks = torch.randint(len(vocabulary), (BATCH_SIZE, MAX_LENGTH), generator=generator)
        input_ids = vocabulary[picks]
        output = model(input_ids)
        output["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return mlm_training_flops(shape, batch_counts(torch.ones_like(input_ids), output["labels"]))

    step()  # warm-up: first-use allocations, the optimizer's state
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True, with_flops=True
    ) as profiler:
        start = time.perf_counter()
        model_flops = sum(step() for _ in range(steps))
        seconds_per_step = (time.perf_counter() - start) / steps
    times = dict.fromkeys(["matmul", "matmul_flops", *KINDS], 0.0)
    # time outside any operator (Python between them) is "other"
    times["other"] = seconds_per_step
    for event in profiler.key_averages(group_by_input_shape=True):
        seconds = event.self_cpu_time_total / 1e6 / steps
        times["other"] -= seconds
        if event.key in _MATMULS:
            times["matmul"] += seconds
            times["matmul_flops"] += event.flops / steps
        else:
            times[_kind(event.key, event.input_shapes, shape)] += seconds
    return dict(times, step=seconds_per_step, model_flops=model_flops / steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="profiled steps per model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: List[List[str]] = []
    with tempfile.TemporaryDirectory(prefix="dapt_bench_mfu_") as tmp:
        for layers, hidden in ((4, 256), (12, 768)):
            model_dir = build_model(Path(tmp) / f"{layers}x{hidden}", layers, hidden)
            # each model's own peak, sampled around its steps: the load of other processes varies
            peak = MatmulPeak(threads=args.threads)
            peak.sample()
            t = profile_steps(model_dir, args.steps)
            peak.sample()
            matmul_rate = t["matmul_flops"] / t["matmul"]
            rows.append(
                [
                    f"{layers} x {hidden}",
                    f"{t['step']:.2f}",
                    peak.describe(),
                    f"**{100 * t['model_flops'] / t['step'] / peak.value:.0f}%**",
                    f"{100 * t['matmul'] / t['step']:.0f}%",
                    f"{100 * matmul_rate / peak.value:.0f}%",
                    f"{100 * t['model_flops'] / t['matmul_flops']:.0f}%",
                    *(f"{100 * t[kind] / t['step']:.1f}%" for kind in KINDS),
                ]
            )
            print(rows[-1], flush=True)
    table = markdown_table(
        [
            "model",
            "s/step (profiled)",
            "peak: fp32 `torch.mm`, 4096 x 4096",
            "MFU",
            "time in matmuls",
            "matmul FLOP/s / peak",
            "model / matmul FLOPs",
            *(f"time: {kind}" for kind in KINDS),
        ],
        rows,
    )
    notes = (
        f"Packed batches of {BATCH_SIZE} x {MAX_LENGTH} random tokens, {args.steps} profiled steps "
        "after one warm-up, the plugin's model and fused AdamW in this process (no data loader: its "
        "wait is a fraction of a percent, `mlm_throughput.py`); times are shares of the profiled "
        "steps' wall time (the profiler lengthens it a little). MFU = time in matmuls x matmul "
        "FLOP/s / peak x model / matmul FLOPs; peak: sampled before and after each model's steps."
    )
    append_results(
        "Where a masked-LM step's time goes, against the matmul limit (MFU)",
        table,
        notes,
        args.threads,
    )


if __name__ == "__main__":
    main()
