"""
Masked-LM training on a CUDA GPU: the contenders of `mlm_throughput.py` (the plugin's `allennlp
train training_config/dapt.jsonnet` and Hugging Face's Trainer, same model, text, steps and
optimizer) on a roberta-base-shaped model (12 x 768, random weights, roberta-base's 50,265-token
vocabulary), packed and line-by-line, at sequence lengths 128 and 512, in bf16 (autocast) and
fp16 (autocast with loss scaling, AMP). Every row gives tokens/s and model FLOP utilisation
(MFU, `_flops.py`): model FLOP/s as a share of the GPU's dense matmul FLOP/s in the same
precision, measured by this script before every run (`torch.mm` of 8192 x 8192 matrices).
The table, with the GPU's name, is appended to `benchmarks/RESULTS.md`.

Batches hold `--tokens-per-batch` positions (16,384: 128 sequences of 128 tokens, 32 of 512), one
batch per optimizer step, so that the GPU has work enough at both lengths. Options, each
recorded in the table's title: `--attention eager` (transformers' own attention instead of its
default, PyTorch's SDPA, which runs FlashAttention on batches without padding, as packed batches
are), `--compile` (`torch.compile`: the Trainer's `torch_compile`, the plugin's `torch_compile`
model option, which compiles its encoder). Packed batches are the unpadded ones.

    .venv/bin/python benchmarks/gpu.py [--steps 20] [--repeats 1]
        [--runs 128:bf16,512:bf16,128:fp16] [--modes packed,line_by_line] [--attention eager]
        [--compile]

The defaults make 12 runs, estimated at ~30 s each on an H100, most of it each process's start,
plus a minute to train the benchmarks' tokenizer on a machine that has not cached it (not yet
run on a GPU: no GPU was available when it was written).
Without CUDA it stops at once, saying so on one line (exit status 1). On a machine without
network access whose Python has torch: `offline_site.py` packs what else it needs.
"""

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
from _common import append_results, build_model, machine_description, markdown_table, write_corpus
from _flops import MatmulPeak
from mlm_throughput import COLUMNS, MFU_NOTE, Setup, compare, table_rows

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NO_CUDA = (
    "benchmarks/gpu.py needs a CUDA GPU, and torch.cuda.is_available() is False here; "
    "on a CPU, run benchmarks/mlm_throughput.py"
)


def parse_runs(text: str) -> List[Tuple[int, str]]:
    """`"128:bf16,512:bf16"` as `[(128, "bf16"), (512, "bf16")]`; a bad entry stops the script."""
    runs = []
    for entry in text.split(","):
        length, _, precision = entry.partition(":")
        if not length.isdigit() or precision not in DTYPES:
            sys.exit(
                f"--runs: {entry!r} is not LENGTH:PRECISION with PRECISION one of {list(DTYPES)}"
            )
        runs.append((int(length), precision))
    return runs


def gpu_description() -> str:
    properties = torch.cuda.get_device_properties(0)
    return (
        f"GPU: {properties.name}, {properties.total_memory / 2**30:.0f} GiB, "
        f"CUDA {torch.version.cuda}, 1 GPU used"
    )


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--runs",
        default="128:bf16,512:bf16,128:fp16",
        help="comma-separated LENGTH:PRECISION (bf16 or fp16) to measure",
    )
    parser.add_argument("--modes", default="packed,line_by_line", help="comma-separated MLM_MODEs")
    parser.add_argument("--tokens-per-batch", type=int, default=16384)
    parser.add_argument("--attention", help="attn_implementation of both (default: sdpa)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--corpus-mb", type=float, default=5.0)
    args = parser.parse_args(argv)
    runs = parse_runs(args.runs)
    if not torch.cuda.is_available():
        sys.exit(NO_CUDA)

    peaks = {
        precision: MatmulPeak(device="cuda", dtype=DTYPES[precision], size=8192, iterations=10)
        for precision in {p for _, p in runs}
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="dapt_bench_gpu_") as tmp:
        work = Path(tmp)
        corpus = write_corpus(work / "corpus.txt", int(args.corpus_mb * 1e6))
        model = build_model(work / "base", 12, 768)
        for length, precision in runs:
            batch_size = args.tokens_per_batch // length
            setup = Setup(
                max_length=length,
                batch_size=batch_size,
                device="cuda",
                precision=precision,
                attention=args.attention,
                compile=args.compile,
            )
            for mode in args.modes.split(","):
                peak = peaks[precision]
                results = compare(model, corpus, mode, args.steps, setup, args.repeats, work, peak)
                rows += table_rows([length, precision, batch_size], mode, results, peak)
    table = markdown_table(["length", "precision", "batch", *COLUMNS], rows)
    peak_text = "; ".join(
        f"{precision}: `torch.mm` of 8192 x 8192 matrices, {peak.describe()}"
        for precision, peak in sorted(peaks.items())
    )
    notes = (
        f"roberta-base shape, random weights; {args.steps} optimizer steps per run, one batch each, "
        f"medians over {args.repeats} alternating runs of each contender; tokens/s and ratio as in "
        "the CPU table (`benchmarks/mlm_throughput.py`). Target: MFU >= 50% on an H100. "
        + MFU_NOTE.format(peak=peak_text)
    )
    options = [f"attention {args.attention}"] if args.attention else []
    options += ["torch.compile"] if args.compile else []
    append_results(
        f"MLM training on a GPU ({torch.cuda.get_device_name(0)}): plugin vs Hugging Face Trainer"
        + "".join(f", {option}" for option in options),
        table,
        notes,
        machine=machine_description(threads=1, gpu=gpu_description()),
    )


if __name__ == "__main__":
    main()
