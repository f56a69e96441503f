"""
Peak resident memory of a DAPT run as the corpus grows: `allennlp train training_config/dapt.jsonnet`
(4 layers x 256, 50,265-token vocabulary, line-by-line, batch 16 x 128, `--steps` optimizer steps,
an empty tokenization cache, so the run tokenizes the whole corpus into its cache first) over a
generated corpus of 10 MB and of 1 GB (`_common.TextGenerator`, one document per line).

Peak RSS is the `ru_maxrss` of the `allennlp train` process (read by a small wrapper process
that runs it and reports `RUSAGE_CHILDREN`), i.e. the high-water mark over tokenizing, loading
and training; it includes pages of the memory-mapped cache the process touched. Everything is
written under a temporary directory that is deleted at the end (the 1 GB corpus and its ~0.6 GB
cache included). Takes 10-20 minutes on 2 cores, mostly tokenizing the 1 GB corpus.

Resident memory over a long TAPT run (issue 14, 4): `allennlp train training_config/tapt.jsonnet`
on MiniLM-L6 (`_common.minilm_directory`, no masked-LM head: the head warm-up runs first) against
Hugging Face's `Trainer` with `DataCollatorForLanguageModeling` on the same job: the same weights,
`--tapt-lines` generated lines of about 40 tokens (`task_lines`), truncation at 64 tokens,
batch 32 with one batch per optimizer step, `--tapt-epochs` passes, lr 1e-4 with 6% warm-up then
linear decay, fused AdamW (0.9, 0.98), eps 1e-6, weight decay 0.01, no clipping, a checkpoint
after every epoch (the two latest kept). Each records its RSS when training starts and after
every epoch (the plugin with the `epoch_rss` callback of `epoch_rss.py`, the Trainer with a
`TrainerCallback`); the peak is the whole process's `ru_maxrss`, as above. The two run at the
same time, each with `--threads` threads: RSS does not depend on how fast the steps go. With
the default 64 lines (2 steps an epoch), 50 epochs take 15-25 minutes on 2 shared cores.

    .venv/bin/python benchmarks/memory.py [--sizes-mb 10 1000] [--steps 5] [--threads 1]
        [--tapt-epochs 50] [--tapt-lines 64] [--only corpus|tapt]
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from _common import (
    BATCH_SIZE,
    MAX_LENGTH,
    PLUGINS,
    PYTHON,
    REPO,
    TextGenerator,
    append_results,
    build_model,
    dapt_env,
    markdown_table,
    minilm_directory,
    train_arguments,
    write_corpus,
)

# the TAPT job of the long run: lines of about 40 tokens, batch 32 (issue 14, 4)
TAPT_TOKENS = 40
TAPT_BATCH = 32
TAPT_MAX_LENGTH = 64
TAPT_LR = 1e-4

_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
sys.stderr.write(result.stderr[-4000:])
print(json.dumps({"returncode": result.returncode, "seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def start_measured(command: List[str], env: dict) -> subprocess.Popen:
    """Starts `command` under the wrapper that reports its peak RSS (see `peak_rss`)."""
    return subprocess.Popen(
        [PYTHON, "-c", _WRAPPER] + command,
        env=env,
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_measured(process: subprocess.Popen) -> dict:
    """`{"peak_mb", "seconds"}` of a run that `start_measured` started."""
    stdout, stderr = process.communicate()
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise RuntimeError(f"{' '.join(process.args[3:])} failed:\n{stderr}")
    return {"peak_mb": result["maxrss_kb"] / 1024, "seconds": result["seconds"]}


def peak_rss(serialization: Path, env: dict) -> dict:
    from dapt_plugin.common.launch import allennlp_command

    process = start_measured(allennlp_command(train_arguments(serialization), PLUGINS), env)
    return finish_measured(process)


# -- the long TAPT run ------------------------------------------------------------------------


def task_lines(path: Path, num_lines: int, model: Path) -> Path:
    """
    Writes `num_lines` lines of generated text (`TextGenerator`), each cut after the word that
    brings it to `TAPT_TOKENS` tokens of `model`'s tokenizer (special tokens not counted).
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    generator = TextGenerator(seed=0)
    lines: List[str] = []
    while len(lines) < num_lines:
        documents = [d.split() for d in generator.chunk(num_lines).decode().splitlines()]
        encoded = tokenizer(documents, is_split_into_words=True, add_special_tokens=False)
        for index, words in enumerate(documents):
            word_ids = encoded.word_ids(index)
            if len(word_ids) >= TAPT_TOKENS and len(lines) < num_lines:
                lines.append(" ".join(words[: word_ids[TAPT_TOKENS - 1] + 1]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def hf_worker(spec: Dict) -> None:
    """The Trainer's run of the TAPT job (its own process; see the module's docstring)."""
    import psutil
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

    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    lines = Path(spec["lines"]).read_text(encoding="utf-8").splitlines()
    encoded = tokenizer(
        lines, truncation=True, max_length=TAPT_MAX_LENGTH, return_special_tokens_mask=True
    )
    dataset = [
        {"input_ids": i, "attention_mask": a, "special_tokens_mask": s}
        for i, a, s in zip(
            encoded["input_ids"], encoded["attention_mask"], encoded["special_tokens_mask"]
        )
    ]
    model = AutoModelForMaskedLM.from_pretrained(spec["model"])

    def record(epoch: int) -> None:
        rss = psutil.Process(os.getpid()).memory_info().rss / 2**20
        with open(spec["rss"], "a") as handle:
            handle.write(json.dumps({"epoch": epoch, "rss_mb": rss}) + "\n")

    class EpochRss(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record(0)

        def on_epoch_end(self, args, state, control, **kwargs):
            record(round(state.epoch))

    args = TrainingArguments(
        output_dir=spec["output"],
        num_train_epochs=spec["epochs"],
        per_device_train_batch_size=TAPT_BATCH,
        learning_rate=TAPT_LR,
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.98,
        adam_epsilon=1e-6,
        optim="adamw_torch_fused",
        warmup_ratio=0.06,
        lr_scheduler_type="linear",
        max_grad_norm=0.0,
        eval_strategy="no",
        save_strategy="epoch",
        save_total_limit=2,
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=[EpochRss()],
    )
    trainer.train()


def read_rss(path: Path) -> Dict[int, float]:
    """RSS in MiB by epoch (0: when training starts) from an `rss.jsonl`."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {record["epoch"]: record["rss_mb"] for record in records}


def long_tapt(work: Path, epochs: int, num_lines: int, threads: int) -> None:
    """The plugin and the Trainer on the TAPT job, at the same time; appends their table."""
    # imported here: the Trainer's process (`--hf-worker`) must not import (and patch) allennlp
    from dapt_plugin.common.launch import allennlp_command, allennlp_environment

    model = minilm_directory()
    lines = task_lines(work / "task.txt", num_lines, model)
    plugin_dir, hf_dir = work / "tapt-plugin", work / "tapt-trainer"
    config = work / "tapt_rss.jsonnet"
    config.write_text(
        f"local tapt = import {json.dumps(str(REPO / 'training_config' / 'tapt.jsonnet'))};\n"
        "tapt + { trainer+: { callbacks+: [{ type: 'epoch_rss' }] } }\n"
    )
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    threads_env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    plugin_env = allennlp_environment(
        {
            "MODEL_NAME": model,
            "TAPT_PATH": lines,
            "NUM_EPOCHS": epochs,
            "EFFECTIVE_BATCH": TAPT_BATCH,
            "BATCH_SIZE": TAPT_BATCH,
            "MAX_LENGTH": TAPT_MAX_LENGTH,
            "LR": TAPT_LR,
            "DAPT_PLUGIN_CACHE": work / "cache",
            "CUDA_DEVICES": "-1",
            **threads_env,
            **offline,
        },
        python_path=[REPO / "benchmarks", REPO],
    )
    spec = {
        "model": str(model),
        "lines": str(lines),
        "epochs": epochs,
        "threads": threads,
        "output": str(hf_dir),
        "rss": str(work / "trainer-rss.jsonl"),
    }
    hf_env = allennlp_environment({"CUDA_VISIBLE_DEVICES": "", **threads_env, **offline})
    plugin_command = allennlp_command(
        ["train", str(config), "-s", str(plugin_dir)], ["dapt_plugin", "epoch_rss"]
    )
    processes = {
        "plugin": start_measured(plugin_command, plugin_env),
        "trainer": start_measured([PYTHON, __file__, "--hf-worker", json.dumps(spec)], hf_env),
    }
    results = {name: finish_measured(process) for name, process in processes.items()}
    rss = {
        "plugin": read_rss(plugin_dir / "rss.jsonl"),
        "trainer": read_rss(work / "trainer-rss.jsonl"),
    }
    shown = sorted(e for e in {0, 1, 2, 3, 5, epochs, *range(10, epochs, 10)} if e <= epochs)
    rows = [
        [str(epoch) if epoch else "start of training"]
        + [f"{rss[name][epoch]:,.0f} MB" for name in ("plugin", "trainer")]
        for epoch in shown
    ]

    def growth(name: str) -> float:
        after_two = [rss[name][epoch] for epoch in range(2, epochs + 1)]
        return 100 * (max(after_two) / after_two[0] - 1)

    rows.append(
        ["growth from epoch 2 to the end (highest / epoch 2)"]
        + [f"{growth(name):+.1f}%" for name in ("plugin", "trainer")]
    )
    rows.append(
        ["peak RSS of the process"]
        + [f"{results[name]['peak_mb']:,.0f} MB" for name in ("plugin", "trainer")]
    )
    rows.append(
        ["wall time (the two running at once)"]
        + [f"{results[name]['seconds']:.0f} s" for name in ("plugin", "trainer")]
    )
    table = markdown_table(
        ["RSS after epoch", "plugin (`allennlp train tapt.jsonnet`)", "Trainer"], rows
    )
    notes = (
        f"MiniLM-L6, {num_lines} lines of {TAPT_TOKENS} tokens, batch {TAPT_BATCH}, "
        f"{epochs} epochs ({-(-num_lines // TAPT_BATCH)} steps each; the plugin's head warm-up "
        f"and held-out loss first), {threads} thread(s) each. Targets: the plugin's RSS grows "
        "by at most 5% from epoch 2 to the end, and its peak is no higher than the Trainer's."
    )
    append_results("Resident memory over a long TAPT run: plugin vs Trainer", table, notes, threads)


def corpus_sizes(work: Path, sizes_mb: List[float], steps: int, threads: int) -> None:
    """Peak RSS of a DAPT run for each corpus size; appends their table."""
    rows, peaks = [], []
    model = build_model(work / "model", 4, 256)
    for size in sizes_mb:
        corpus = work / f"corpus-{size:g}mb.txt"
        start = time.perf_counter()
        write_corpus(corpus, int(size * 1e6))
        generated = time.perf_counter() - start
        cache = work / f"cache-{size:g}"
        env = dapt_env(
            model,
            corpus,
            cache,
            threads,
            MLM_MODE="line_by_line",
            NUM_STEPS=steps,
            NUM_CHECKPOINTS=1,
            BATCH_SIZE=BATCH_SIZE,
            EFFECTIVE_BATCH=BATCH_SIZE,
            MAX_LENGTH=MAX_LENGTH,
        )
        result = peak_rss(work / f"run-{size:g}", env)
        cache_mb = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e6
        peaks.append(result["peak_mb"])
        rows.append(
            [
                f"{corpus.stat().st_size / 1e6:,.0f} MB",
                f"{result['peak_mb']:,.0f} MB",
                f"{result['seconds']:.0f} s",
                f"{cache_mb:,.0f} MB",
                f"{generated:.0f} s",
            ]
        )
        print(rows[-1], flush=True)
        corpus.unlink()
    growth = peaks[-1] / peaks[0] - 1
    table = markdown_table(
        [
            "corpus",
            "peak RSS of `allennlp train`",
            "run time (tokenize + train)",
            "token cache",
            "generating the corpus",
        ],
        rows,
    )
    notes = (
        f"Peak RSS over the largest corpus is **{100 * growth:+.1f}%** against the smallest (target: within 10%). "
        f"{steps} optimizer steps, {threads} torch thread(s), an empty cache at the start of each run."
    )
    append_results("Peak memory of a DAPT run: 10 MB vs 1 GB corpus", table, notes, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[10, 1000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tapt-epochs", type=int, default=50)
    parser.add_argument("--tapt-lines", type=int, default=64)
    parser.add_argument("--only", choices=["corpus", "tapt"], help="one of the two measurements")
    parser.add_argument("--hf-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_worker:
        hf_worker(json.loads(args.hf_worker))
        return
    with tempfile.TemporaryDirectory(prefix="dapt_bench_memory_") as tmp:
        if args.only != "tapt":
            corpus_sizes(Path(tmp), args.sizes_mb, args.steps, args.threads)
        if args.only != "corpus":
            long_tapt(Path(tmp), args.tapt_epochs, args.tapt_lines, args.threads)


if __name__ == "__main__":
    main()
