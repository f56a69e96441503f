"""
Resuming a killed masked-LM run: `allennlp train training_config/dapt.jsonnet` (4 layers x 256,
50,265-token vocabulary, line-by-line, batch 16 x 128, `--accumulation` batches per optimizer
step) checkpoints every `--checkpoint-at` optimizer steps (`CHECKPOINT_EVERY_BATCHES`); the
benchmark SIGKILLs it once the step after that checkpoint has been logged, then runs the same
command with `--recover`, which replays the checkpointed steps' batches (AllenNLP skips them
without training) and continues.

Measured with the `step_timer` callback (`benchmarks/step_timer.py`):
- what the replayed steps originally took: from the original run's training start (the trainer's
  `on_start`) to the end of step `--checkpoint-at`;
- the recovered run: from the launch of its process to the end of its first new optimizer step,
  split into start-up (launch to the trainer's `on_start`: imports, model, data, checkpoint loading)
  and replay plus that first step (`on_start` to its end), of which the replay is the time the
  trainer spent in the data loader before the first new step's batches; the first new step's own
  duration is estimated as the median of the original run's steps and also reported without it.

    .venv/bin/python benchmarks/resume.py [--checkpoint-at 100] [--accumulation 4] [--threads 1]
"""

import argparse
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    BATCH_SIZE,
    MAX_LENGTH,
    PLUGINS,
    REPO,
    allennlp_train,
    append_results,
    build_model,
    dapt_env,
    markdown_table,
    read_steps,
    train_arguments,
    write_corpus,
)

from dapt_plugin.common.launch import start_allennlp


def run_until_killed(serialization: Path, env: dict, kill_after_step: int) -> None:
    """Starts the run and SIGKILLs it as soon as `step_timer` has logged `kill_after_step`."""
    log = open(serialization.parent / "original.log", "w")
    process = start_allennlp(
        train_arguments(serialization), env, cwd=REPO, include_packages=PLUGINS, log=log
    )
    steps = serialization / "step_times.jsonl"
    try:
        while process.poll() is None:
            if steps.exists() and any(
                f'"step": {kill_after_step},' in line for line in steps.read_text().splitlines()
            ):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"the run ended (exit {process.returncode}) before step {kill_after_step}; see {log.name}"
        )
    finally:
        if process.poll() is None:
            process.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint-at", type=int, default=100, help="optimizer steps before the checkpoint"
    )
    parser.add_argument("--accumulation", type=int, default=4, help="batches per optimizer step")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    k = args.checkpoint_at
    with tempfile.TemporaryDirectory(prefix="dapt_bench_resume_") as tmp:
        work = Path(tmp)
        corpus = write_corpus(work / "corpus.txt", 10_000_000)
        model = build_model(work / "model", 4, 256)
        env = dapt_env(
            model,
            corpus,
            work / "cache",
            args.threads,
            MLM_MODE="line_by_line",
            NUM_STEPS=k + 5,
            NUM_CHECKPOINTS=1,
            BATCH_SIZE=BATCH_SIZE,
            EFFECTIVE_BATCH=BATCH_SIZE * args.accumulation,
            MAX_LENGTH=MAX_LENGTH,
            CHECKPOINT_EVERY_BATCHES=k,
        )
        # build the tokenization cache first, so that neither run pays for it
        allennlp_train(work / "warm-up", dict(env, NUM_STEPS="1", CHECKPOINT_EVERY_BATCHES=""))
        serialization = work / "run"
        run_until_killed(serialization, env, k + 1)
        original = read_steps(serialization, 0)
        steps = original["steps"]
        replayed = steps[k - 1]["end"] - original["started"]
        step_time = float(np.median(np.diff([s["end"] for s in steps])))
        allennlp_train(serialization, env, recover=True, log=work / "recover.log")
        recovered = read_steps(serialization, -1)
        first = recovered["steps"][0]
        assert first["step"] == k + 1, (
            f"the recovered run started at step {first['step']}, not {k + 1}"
        )
        total = first["end"] - recovered["launched"]
        startup = recovered["started"] - recovered["launched"]
        after_start = first["end"] - recovered["started"]
        replay = first["data_wait"]  # every next() on the loader until the first new step's batches
        without_step = total - step_time
    rows = [
        [
            f"original run: steps 1-{k} ({k * args.accumulation} batches)",
            f"{replayed:.1f} s",
            f"{step_time:.3f} s per step (median)",
        ],
        [
            "`--recover`: launch to end of first new step",
            f"{total:.1f} s",
            f"**{100 * total / replayed:.1f}%** of the replayed steps' time",
        ],
        [
            "  start-up (imports, model, data, checkpoint) to `on_start`",
            f"{startup:.1f} s",
            f"{100 * startup / replayed:.1f}%",
        ],
        [
            "  replay of the skipped batches + the first new step",
            f"{after_start:.2f} s",
            f"{100 * after_start / replayed:.2f}%",
        ],
        [
            f"    of which fetching the {k * args.accumulation} replayed batches (and opening the cache)",
            f"{replay:.3f} s",
            f"{100 * replay / replayed:.3f}%",
        ],
        [
            "  launch to first new step, less one step's time",
            f"{without_step:.1f} s",
            f"**{100 * without_step / replayed:.1f}%** (target <= 5%)",
        ],
    ]
    table = markdown_table(["", "seconds", "share / note"], rows)
    notes = (
        f"One killed run and its recovery, {args.threads} torch thread(s), batch {BATCH_SIZE} x {MAX_LENGTH}, "
        f"{args.accumulation} batches per optimizer step, checkpoint after step {k}, killed after step {k + 1}. "
        "Start-up is mostly a fixed cost (Python imports of allennlp/transformers/torch, building the model, "
        "loading the checkpoint); the replay's cost grows with the number of replayed batches."
    )
    append_results("Resuming with `allennlp train --recover`", table, notes, args.threads)


if __name__ == "__main__":
    main()
