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

Threads: 1 each by default. The 2-core machine these figures come from is shared with other jobs;
with 2 threads, a process's OpenMP barriers stall whenever another job holds one of the cores,
which in trials made both contenders slower and far noisier than with 1 thread (RESULTS.md).

    .venv/bin/python benchmarks/mlm_throughput.py [--steps 30] [--base-steps 6] [--repeats 3] [--threads 1]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

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

LR = 5e-4


def throughput(ends: List[float], tokens: List[int]) -> float:
    """Non-padding tokens/s of steps 2..N over the time from the end of step 1 to the end of step N."""
    return sum(tokens[1:]) / (ends[-1] - ends[0])


# -- Hugging Face Trainer worker (its own process) ----------------------------------------------


def hf_worker(spec: Dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
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
    # as run_mlm.py: the datasets.map step, done before training starts
    if spec["mode"] == "line_by_line":
        encoded = tokenizer(
            lines, truncation=True, max_length=MAX_LENGTH, return_special_tokens_mask=True
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
        total = len(flat["input_ids"]) // MAX_LENGTH * MAX_LENGTH
        dataset = [
            {k: v[i : i + MAX_LENGTH] for k, v in flat.items()} for i in range(0, total, MAX_LENGTH)
        ]
    model = AutoModelForMaskedLM.from_pretrained(spec["model"])
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    counts: List[int] = []

    def collate(examples):
        batch = collator(examples)
        counts.append(int(batch["attention_mask"].sum()))
        return batch

    ends: List[float] = []

    class Timer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.time())

    args = TrainingArguments(
        output_dir=spec["output"],
        max_steps=spec["steps"],
        per_device_train_batch_size=BATCH_SIZE,
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
        use_cpu=True,
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
        "tokens": counts[: len(ends)],
        "attn": model.config._attn_implementation,
        "threads": torch.get_num_threads(),
    }
    Path(spec["result"]).write_text(json.dumps(result))


def run_hf(model_dir: Path, corpus: Path, mode: str, steps: int, threads: int, work: Path) -> Dict:
    result = work / "hf_result.json"
    spec = {
        "model": str(model_dir),
        "corpus": str(corpus),
        "mode": mode,
        "steps": steps,
        "threads": threads,
        "seed": 0,
        "output": str(work / "hf_out"),
        "result": str(result),
    }
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        CUDA_VISIBLE_DEVICES="",
    )
    process = subprocess.run(
        [PYTHON, __file__, "--hf-worker", json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if process.returncode != 0:
        raise RuntimeError(f"Hugging Face worker failed:\n{process.stderr[-4000:]}")
    data = json.loads(result.read_text())
    assert data["threads"] == threads, data["threads"]
    return {
        "tokens_per_s": throughput(data["ends"], data["tokens"]),
        "steps": len(data["ends"]),
        "seconds_per_step": (data["ends"][-1] - data["ends"][0]) / (len(data["ends"]) - 1),
        "attn": data["attn"],
    }


def run_plugin(
    model_dir: Path,
    corpus: Path,
    mode: str,
    steps: int,
    threads: int,
    work: Path,
    cache: Path,
    fused: bool = True,
) -> Dict:
    serialization = work / f"plugin-{time.time_ns()}"
    env = dapt_env(
        model_dir,
        corpus,
        cache,
        threads,
        MLM_MODE=mode,
        NUM_STEPS=steps,
        NUM_CHECKPOINTS=1,
        BATCH_SIZE=BATCH_SIZE,
        EFFECTIVE_BATCH=BATCH_SIZE,
        MAX_LENGTH=MAX_LENGTH,
        FUSED_ADAMW=None if fused else "false",
    )
    allennlp_train(serialization, env)
    data = read_steps(serialization)
    ends = [s["end"] for s in data["steps"]]
    tokens = [s["tokens"] for s in data["steps"]]
    wait = sum(s["data_wait"] for s in data["steps"][1:]) / (ends[-1] - ends[0])
    shutil.rmtree(serialization)
    assert data["threads"] == threads and data["fused_adamw"] == fused, (
        data["threads"],
        data["fused_adamw"],
    )
    return {
        "tokens_per_s": throughput(ends, tokens),
        "steps": len(ends),
        "seconds_per_step": (ends[-1] - ends[0]) / (len(ends) - 1),
        "data_wait_share": wait,
        "attn": data["attention"],
        "fused": data["fused_adamw"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=30, help="optimizer steps per run, 4-layer model"
    )
    parser.add_argument(
        "--base-steps",
        type=int,
        default=6,
        help="optimizer steps per run, 12-layer model (0: skip)",
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

    rows = []
    with tempfile.TemporaryDirectory(prefix="dapt_bench_mlm_") as tmp:
        work = Path(tmp)
        corpus = write_corpus(work / "corpus.txt", int(args.corpus_mb * 1e6))
        models = {"4 x 256": build_model(work / "small", 4, 256)}
        runs = [("4 x 256", "line_by_line", args.steps), ("4 x 256", "packed", args.steps)]
        if args.base_steps:
            models["12 x 768"] = build_model(work / "base", 12, 768)
            runs.append(("12 x 768", "line_by_line", args.base_steps))
        cache = work / "cache"
        for shape, mode, steps in runs:
            results: Dict[str, List[Dict]] = {"plugin": [], "hf": []}
            if args.unfused and (shape, mode) == ("4 x 256", "line_by_line"):
                results["plugin, FUSED_ADAMW=false"] = []
            contenders = list(results)
            for repeat in range(args.repeats):
                for who in (
                    contenders[repeat % len(contenders) :] + contenders[: repeat % len(contenders)]
                ):
                    if who == "hf":
                        result = run_hf(models[shape], corpus, mode, steps, args.threads, work)
                    else:
                        result = run_plugin(
                            models[shape],
                            corpus,
                            mode,
                            steps,
                            args.threads,
                            work,
                            cache,
                            fused=who == "plugin",
                        )
                    results[who].append(result)
                    print(
                        f"{shape} {mode} {who}: {result['tokens_per_s']:.0f} tokens/s", flush=True
                    )
            h = median([r["tokens_per_s"] for r in results["hf"]])
            for who in [c for c in contenders if c != "hf"]:
                runs_of = results[who]
                p = median([r["tokens_per_s"] for r in runs_of])
                rows.append(
                    [
                        shape,
                        mode if who == "plugin" else f"{mode}, {who}",
                        steps,
                        ", ".join(f"{r['tokens_per_s']:.0f}" for r in runs_of),
                        f"**{p:.0f}**",
                        ", ".join(f"{r['tokens_per_s']:.0f}" for r in results["hf"]),
                        f"**{h:.0f}**",
                        f"**{p / h:.2f}x**",
                        f"{100 * median([r['data_wait_share'] for r in runs_of]):.2f}%",
                        f"{runs_of[0]['attn']} / {results['hf'][0]['attn']}",
                    ]
                )
    table = markdown_table(
        [
            "model",
            "mode",
            "steps/run",
            "plugin tokens/s (runs)",
            "plugin median",
            "HF Trainer tokens/s (runs)",
            "HF median",
            "ratio",
            "plugin data wait",
            "attention (plugin / HF)",
        ],
        rows,
    )
    notes = (
        "Non-padding tokens per second between the end of the first and the end of the last optimizer step "
        f"(batch {BATCH_SIZE} x up to {MAX_LENGTH} tokens per step), medians over {args.repeats} alternating runs "
        "of each contender; ratio = plugin median / Hugging Face Trainer median. Data wait: the plugin's "
        "share of step time spent waiting for its data loader (median over runs). Targets: >= 2x (4 x 256, "
        "line-by-line), >= 1.2x (12 x 768). Optimizer: the plugin's config default (fused AdamW; the row "
        "`FUSED_ADAMW=false` is the per-parameter AdamW the config used before issue 6, alternated with the other "
        "two), the Trainer's default (`adamw_torch`, per-parameter). Threads: see the script's docstring. "
        "GPU measurements (bf16, MFU): not run, no GPU on this machine."
    )
    append_results(
        "MLM training throughput: plugin vs Hugging Face Trainer", table, notes, args.threads
    )


if __name__ == "__main__":
    main()
