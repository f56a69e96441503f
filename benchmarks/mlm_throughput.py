"""
Masked-LM training throughput: the plugin (`allennlp train training_config/dapt.jsonnet`, the real
CLI in a subprocess) against Hugging Face's `Trainer` with `DataCollatorForLanguageModeling`, set
up as `run_mlm.py` does, in a subprocess of this script (`--hf-worker`).

Both get the same random-weight RoBERTa (same config file, roberta-base's dropout, 50,265-token
vocabulary), the same generated text file, sequence length 128, batch size 16 with one batch per
optimizer step, the same number of optimizer steps, the same threads (`OMP_NUM_THREADS` and
`torch.set_num_threads`), the same optimizer settings (AdamW, lr 5e-4, betas (0.9, 0.98), eps 1e-6,
weight decay 0.01 except biases and LayerNorm weights, 6% linear warm-up then linear decay, no
gradient clipping: the plugin's config does not clip, so the Trainer's `max_grad_norm` is 0), no
evaluation and no saving while timed. Neither uses gradient accumulation.

Line-by-line: one example per line, truncated to 128 tokens; the Trainer's collator pads each batch
to its longest line (`run_mlm.py` pads to a multiple of 8 only under fp16), the plugin to a multiple
of 8. Packed: every line with its `<s> ... </s>` concatenated and cut into blocks of 128 tokens
(`run_mlm.py`'s `group_texts`, the plugin's `MLM_MODE=packed`).

Measure: non-padding tokens per second between the end of the first optimizer step and the end of
the last (so start-up, tokenization and first-step costs are excluded): the plugin's steps are
timed by the `step_timer` callback (`benchmarks/step_timer.py`), the Trainer's by a
`TrainerCallback.on_step_end`; tokens are counted in the batches each step trained on. The
contenders alternate `--repeats` times (order swapped every repeat); the table gives each run and
the medians, and the ratio of the medians (plugin / Trainer).

Model FLOP utilisation (MFU): each run's model FLOP/s (forward and backward over the real tokens
of the steps it was timed on, the last layer and the LM head at masked positions only,
`_flops.py`) as a share of
the machine's dense fp32 matmul FLOP/s, measured by this script with the same threads before
and after every run (the median of those samples; other processes on the machine slow both
down, and make both noisier).

Threads: 1 each by default. The 2-core machine these figures come from is shared with other jobs;
with 2 threads, a process's OpenMP barriers stall whenever another job holds one of the cores,
which in trials made both contenders slower and far noisier than with 1 thread (RESULTS.md).

    .venv/bin/python benchmarks/mlm_throughput.py [--steps 30] [--base-steps 6] [--repeats 3]
        [--threads 1] [--base-modes line_by_line,packed]

`--steps 0` leaves out the 4-layer rows, `--base-steps 0` the 12-layer ones. `benchmarks/gpu.py`
runs the same contenders on a GPU (`Setup`).
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from _common import (
    BATCH_SIZE,
    MAX_LENGTH,
    PYTHON,
    allennlp_train,
    append_results,
    build_model,
    dapt_env,
    markdown_table,
    median,
    read_steps,
    write_corpus,
)
from _flops import (
    BatchCounts,
    EncoderShape,
    MatmulPeak,
    achieved_flops_per_s,
    batch_counts,
    mlm_training_flops,
)

LR = 5e-4


class Setup(NamedTuple):
    """
    How both contenders train, besides the model, the mode and the steps; the defaults are this
    script's CPU runs.
    """

    threads: int = 1  # torch threads (and OMP_NUM_THREADS) of each contender
    max_length: int = MAX_LENGTH
    batch_size: int = BATCH_SIZE  # sequences per optimizer step
    device: str = "cpu"  # "cuda": the first GPU
    precision: str = "fp32"  # "bf16": bfloat16 autocast; "fp16": float16 autocast, loss scaling
    attention: Optional[str] = None  # transformers' `attn_implementation`; None: its default
    compile: bool = False  # `torch.compile` of the model (the plugin: of its encoder)


def throughput(ends: List[float], tokens: List[int]) -> float:
    """Non-padding tokens/s of steps 2..N over the time from the end of step 1 to the end of step N."""
    return sum(tokens[1:]) / (ends[-1] - ends[0])


def _result(model_dir: Path, ends: List[float], counts: List[BatchCounts]) -> Dict:
    """What a run reports: tokens/s and model FLOP/s of its steps 2..N, seconds per step."""
    shape = EncoderShape.of(str(model_dir))
    flops = [mlm_training_flops(shape, c) for c in counts]
    return {
        "tokens_per_s": throughput(ends, [c.tokens for c in counts]),
        "flops_per_s": achieved_flops_per_s(flops, ends),
        "steps": len(ends),
        "seconds_per_step": (ends[-1] - ends[0]) / (len(ends) - 1),
    }


# -- Hugging Face Trainer worker (its own process) ----------------------------------------------


def hf_worker(spec: Dict) -> None:
    import torch

    setup = Setup(**spec["setup"])
    torch.set_num_threads(setup.threads)
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    lines = [
        line
        for line in Path(spec["corpus"]).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    length = setup.max_length
    # as run_mlm.py: the datasets.map step, done before training starts
    if spec["mode"] == "line_by_line":
        encoded = tokenizer(
            lines, truncation=True, max_length=length, return_special_tokens_mask=True
        )
        dataset = [
            {"input_ids": i, "attention_mask": a, "special_tokens_mask": s}
            for i, a, s in zip(
                encoded["input_ids"], encoded["attention_mask"], encoded["special_tokens_mask"]
            )
        ]
    else:
        encoded = tokenizer(lines, return_special_tokens_mask=True)
        flat = {
            k: [t for row in encoded[k] for t in row]
            for k in ("input_ids", "attention_mask", "special_tokens_mask")
        }
        total = len(flat["input_ids"]) // length * length
        dataset = [{k: v[i : i + length] for k, v in flat.items()} for i in range(0, total, length)]
    options = {"attn_implementation": setup.attention} if setup.attention else {}
    model = AutoModelForMaskedLM.from_pretrained(spec["model"], **options)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    counts: List[BatchCounts] = []

    def collate(examples):
        batch = collator(examples)
        counts.append(batch_counts(batch["attention_mask"], batch["labels"]))
        return batch

    ends: List[float] = []
    on_gpu = setup.device == "cuda"

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if on_gpu:
                torch.cuda.synchronize()
            ends.append(time.time())

    args = TrainingArguments(
        output_dir=spec["output"],
        max_steps=spec["steps"],
        per_device_train_batch_size=setup.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=LR,
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.98,
        adam_epsilon=1e-6,
        warmup_ratio=0.06,
        lr_scheduler_type="linear",
        max_grad_norm=0.0,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=not on_gpu,
        bf16=setup.precision == "bf16",
        fp16=setup.precision == "fp16",
        torch_compile=setup.compile,
        dataloader_num_workers=0,
        seed=spec["seed"],
        disable_tqdm=False,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset, data_collator=collate, callbacks=[Timer()]
    )
    trainer.train()
    result = {
        "ends": ends,
        "counts": counts[: len(ends)],
        "attn": model.config._attn_implementation,
        "threads": torch.get_num_threads(),
    }
    Path(spec["result"]).write_text(json.dumps(result))


def run_hf(model_dir: Path, corpus: Path, mode: str, steps: int, setup: Setup, work: Path) -> Dict:
    result = work / "hf_result.json"
    spec = {
        "model": str(model_dir),
        "corpus": str(corpus),
        "mode": mode,
        "steps": steps,
        "setup": setup._asdict(),
        "seed": 0,
        "output": str(work / "hf_out"),
        "result": str(result),
    }
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(setup.threads),
        MKL_NUM_THREADS=str(setup.threads),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    # the CPU, or the first GPU, as the plugin's CUDA_DEVICES=0 (the Trainer would use them all)
    first_gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    env["CUDA_VISIBLE_DEVICES"] = "" if setup.device == "cpu" else first_gpu
    process = subprocess.run(
        [PYTHON, __file__, "--hf-worker", json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if process.returncode != 0:
        raise RuntimeError(f"Hugging Face worker failed:\n{process.stderr[-4000:]}")
    data = json.loads(result.read_text())
    assert data["threads"] == setup.threads, data["threads"]
    counts = [BatchCounts(*c) for c in data["counts"]]
    return dict(_result(model_dir, data["ends"], counts), attn=data["attn"])


def run_plugin(
    model_dir: Path,
    corpus: Path,
    mode: str,
    steps: int,
    setup: Setup,
    work: Path,
    cache: Path,
    fused: bool = True,
) -> Dict:
    serialization = work / f"plugin-{time.time_ns()}"
    env = dapt_env(
        model_dir,
        corpus,
        cache,
        setup.threads,
        MLM_MODE=mode,
        NUM_STEPS=steps,
        NUM_CHECKPOINTS=1,
        BATCH_SIZE=setup.batch_size,
        EFFECTIVE_BATCH=setup.batch_size,
        MAX_LENGTH=setup.max_length,
        FUSED_ADAMW=None if fused else "false",
        CUDA_DEVICES="0" if setup.device == "cuda" else "-1",
        BF16="true" if setup.precision == "bf16" else None,
        USE_AMP="true" if setup.precision == "fp16" else None,
    )
    overrides = {
        key: value
        for key, value in (
            ("model.attn_implementation", setup.attention),
            ("model.torch_compile", setup.compile or None),
        )
        if value is not None
    }
    allennlp_train(serialization, env, overrides=overrides)
    data = read_steps(serialization)
    ends = [s["end"] for s in data["steps"]]
    counts = [BatchCounts(*[s[field] for field in BatchCounts._fields]) for s in data["steps"]]
    wait = sum(s["data_wait"] for s in data["steps"][1:]) / (ends[-1] - ends[0])
    shutil.rmtree(serialization)
    assert data["threads"] == setup.threads and data["fused_adamw"] == fused, (
        data["threads"],
        data["fused_adamw"],
    )
    return dict(
        _result(model_dir, ends, counts),
        data_wait_share=wait,
        attn=data["attention"],
        fused=data["fused_adamw"],
    )


# a contender: "plugin", "hf" (the Trainer) or "plugin, FUSED_ADAMW=false"
Results = Dict[str, List[Dict]]


def compare(
    model_dir: Path,
    corpus: Path,
    mode: str,
    steps: int,
    setup: Setup,
    repeats: int,
    work: Path,
    peak: MatmulPeak,
    contenders: Sequence[str] = ("plugin", "hf"),
) -> Results:
    """
    Runs the contenders `repeats` times each, alternated (the order rotated every repeat), with
    a sample of the machine's matmul FLOP/s (`peak`) before and after every run.
    """
    results: Results = {who: [] for who in contenders}
    cache = work / "cache"
    for repeat in range(repeats):
        turn = repeat % len(contenders)
        for who in list(contenders[turn:]) + list(contenders[:turn]):
            peak.sample()
            if who == "hf":
                result = run_hf(model_dir, corpus, mode, steps, setup, work)
            else:
                fused = who == "plugin"
                result = run_plugin(model_dir, corpus, mode, steps, setup, work, cache, fused)
            peak.sample()
            results[who].append(result)
            print(
                f"{model_dir.name} {mode} {who}: {result['tokens_per_s']:.0f} tokens/s, "
                f"{result['flops_per_s'] / 1e9:.1f} GFLOP/s",
                flush=True,
            )
    return results


def table_rows(label: Sequence, mode: str, results: Results, peak: MatmulPeak) -> List[List]:
    """
    The table's rows of one comparison: for each contender but the Trainer, its runs and median
    tokens/s, the Trainer's, their ratio, both MFUs (median model FLOP/s over `peak.value`),
    the plugin's data wait and the attention implementations; `label` opens each row.
    """
    hf = results["hf"]
    h = median([r["tokens_per_s"] for r in hf])
    hf_mfu = median([r["flops_per_s"] for r in hf]) / peak.value
    rows = []
    for who in [c for c in results if c != "hf"]:
        runs = results[who]
        p = median([r["tokens_per_s"] for r in runs])
        rows.append(
            [
                *label,
                mode if who == "plugin" else f"{mode}, {who}",
                ", ".join(f"{r['tokens_per_s']:.0f}" for r in runs),
                f"**{p:.0f}**",
                ", ".join(f"{r['tokens_per_s']:.0f}" for r in hf),
                f"**{h:.0f}**",
                f"**{p / h:.2f}x**",
                f"**{100 * median([r['flops_per_s'] for r in runs]) / peak.value:.0f}%**",
                f"{100 * hf_mfu:.0f}%",
                f"{100 * median([r['data_wait_share'] for r in runs]):.2f}%",
                f"{runs[0]['attn']} / {hf[0]['attn']}",
            ]
        )
    return rows


# the columns after those of a row's `label`
COLUMNS = [
    "mode",
    "plugin tokens/s (runs)",
    "plugin median",
    "HF Trainer tokens/s (runs)",
    "HF median",
    "ratio",
    "plugin MFU",
    "HF MFU",
    "plugin data wait",
    "attention (plugin / HF)",
]
MFU_NOTE = (
    "MFU: model FLOP/s (forward and backward, 3x the forward's matmul FLOPs, over the real tokens of "
    "the timed steps, the last layer and the LM head at masked positions only; the same count for "
    "both contenders, "
    "`benchmarks/_flops.py`) as a share of the dense matmul FLOP/s measured in the same run: {peak}, "
    "median over its runs."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=30, help="optimizer steps per run, 4-layer model (0: skip)"
    )
    parser.add_argument(
        "--base-steps",
        type=int,
        default=6,
        help="optimizer steps per run, 12-layer model (0: skip)",
    )
    parser.add_argument(
        "--base-modes",
        default="line_by_line",
        help="comma-separated MLM_MODEs of the 12-layer rows (line_by_line, packed)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each contender")
    parser.add_argument("--corpus-mb", type=float, default=5.0)
    parser.add_argument(
        "--no-unfused",
        dest="unfused",
        action="store_false",
        help="skip the third contender of the 4-layer line-by-line row (the plugin with "
        "FUSED_ADAMW=false, its optimizer before issue 6)",
    )
    parser.add_argument("--hf-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_worker:
        hf_worker(json.loads(args.hf_worker))
        return

    setup = Setup(threads=args.threads)
    peak = MatmulPeak(threads=args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dapt_bench_mlm_") as tmp:
        work = Path(tmp)
        corpus = write_corpus(work / "corpus.txt", int(args.corpus_mb * 1e6))
        runs: List[Tuple[str, Path, str, int]] = []
        if args.steps:
            small = build_model(work / "small", 4, 256)
            runs += [("4 x 256", small, mode, args.steps) for mode in ("line_by_line", "packed")]
        if args.base_steps:
            base = build_model(work / "base", 12, 768)
            runs += [("12 x 768", base, m, args.base_steps) for m in args.base_modes.split(",")]
        for shape, model_dir, mode, steps in runs:
            contenders = ["plugin", "hf"]
            if args.unfused and (shape, mode) == ("4 x 256", "line_by_line"):
                contenders.append("plugin, FUSED_ADAMW=false")
            results = compare(
                model_dir, corpus, mode, steps, setup, args.repeats, work, peak, contenders
            )
            rows += table_rows([shape, steps], mode, results, peak)
    table = markdown_table(["model", "steps/run", *COLUMNS], rows)
    notes = (
        "Non-padding tokens per second between the end of the first and the end of the last optimizer step "
        f"(batch {BATCH_SIZE} x up to {MAX_LENGTH} tokens per step), medians over {args.repeats} alternating runs "
        "of each contender; ratio = plugin median / Hugging Face Trainer median. Data wait: the plugin's "
        "share of step time spent waiting for its data loader (median over runs). Targets: >= 2x (4 x 256, "
        "line-by-line), >= 1.2x (12 x 768); MFU >= 50% (12 x 768). Optimizer: the plugin's config default (fused AdamW; the row "
        "`FUSED_ADAMW=false` is the per-parameter AdamW the config used before issue 6, alternated with the other "
        "two), the Trainer's default (`adamw_torch`, per-parameter). Threads: see the script's docstring. "
        + MFU_NOTE.format(peak=f"fp32 `torch.mm` of 4096 x 4096 matrices, {peak.describe()}")
        + " GPU measurements: `benchmarks/gpu.py`."
    )
    append_results(
        "MLM training throughput: plugin vs Hugging Face Trainer", table, notes, args.threads
    )


if __name__ == "__main__":
    main()
