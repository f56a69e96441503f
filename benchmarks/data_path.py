"""
The masked-LM data path, on a generated corpus (`--corpus-mb`, default 20 MB, one document per
line) and the roberta-base-sized tokenizer (`_common.py`):

1. Tokenization: the `masked_lm_corpus` reader building its cache (`reader.corpus(path)` with an
   empty cache directory: hashing the file, reading it, tokenizing in batches of 1,000 lines,
   writing the memory-mapped ids) against the bare fast tokenizer on the same file (reading the
   lines and calling `tokenizer(batch)` in batches of 1,000, with special tokens, nothing kept).
   Both in this process, alternating, same tokenizer settings (the Rust tokenizer's own threads).
2. A cached epoch: a fresh reader and `masked_lm_batches` loader (batch 16, length 128, shuffled)
   finding the cache (hashing the file, opening the memory maps) and building every padded batch
   tensor of one pass, against tokenizing the file (the bare tokenizer's time of 1).
3. Waiting for data during training: `allennlp train training_config/dapt.jsonnet` (4 layers x 256,
   batch 16 x 128, `NUM_WORKERS=0`, so batches are built in the training process) with the
   `step_timer` callback, which times every `next()` on the trainer's data loader; the share of
   each optimizer step's wall time spent there (steps 2..N).

    .venv/bin/python benchmarks/data_path.py [--corpus-mb 20] [--repeats 3] [--steps 30] [--threads 1]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    BATCH_SIZE,
    MAX_LENGTH,
    allennlp_train,
    append_results,
    build_model,
    dapt_env,
    markdown_table,
    median,
    read_steps,
    write_corpus,
)


def bare_tokenizer(tokenizer, path: Path, batch_size: int = 1000) -> int:
    """Tokenizes every non-blank line of `path` in batches; returns the number of tokens."""
    tokens = 0
    batch = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.strip():
                batch.append(line)
            if len(batch) >= batch_size:
                tokens += sum(map(len, tokenizer(batch, add_special_tokens=True)["input_ids"]))
                batch = []
    if batch:
        tokens += sum(map(len, tokenizer(batch, add_special_tokens=True)["input_ids"]))
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-mb", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, default=30, help="optimizer steps of each training run (part 3)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of the training runs (part 3)"
    )
    args = parser.parse_args()

    import dapt_plugin  # noqa: F401
    from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
    from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

    with tempfile.TemporaryDirectory(prefix="dapt_bench_data_") as tmp:
        work = Path(tmp)
        corpus = write_corpus(work / "corpus.txt", int(args.corpus_mb * 1e6))
        megabytes = corpus.stat().st_size / 1e6
        model = build_model(work / "model", 4, 256)

        def reader(cache: Path, mode: str = "line_by_line") -> MaskedLmCorpusReader:
            return MaskedLmCorpusReader(
                str(model), mode=mode, max_length=MAX_LENGTH, cache_directory=str(cache)
            )

        # 1. tokenization --------------------------------------------------------------------------
        tokenizer = reader(work / "unused").tokenizer
        build, bare, num_tokens = [], [], 0
        for repeat in range(args.repeats):
            for who in ("reader", "bare") if repeat % 2 == 0 else ("bare", "reader"):
                if who == "reader":
                    cache = work / f"cache-{repeat}"
                    r = reader(cache)
                    start = time.perf_counter()
                    corpus_view = r.corpus(str(corpus))
                    build.append(time.perf_counter() - start)
                    num_tokens = corpus_view.files[0].num_tokens
                    if repeat < args.repeats - 1:
                        shutil.rmtree(cache)
                else:
                    start = time.perf_counter()
                    counted = bare_tokenizer(tokenizer, corpus)
                    bare.append(time.perf_counter() - start)
            print(
                f"tokenization {repeat}: reader {build[-1]:.2f} s, bare {bare[-1]:.2f} s",
                flush=True,
            )
        assert counted == num_tokens, (counted, num_tokens)
        cache = work / f"cache-{args.repeats - 1}"

        # 2. a cached epoch ----------------------------------------------------------------------------
        epochs = {}
        for mode in ("line_by_line", "packed"):
            times, loads, batches = [], [], 0
            for _ in range(args.repeats):
                start = time.perf_counter()
                loader = MaskedLmBatches(
                    reader(cache, mode), str(corpus), BATCH_SIZE, shuffle=True, seed=0
                )
                loader.corpus  # finds the cache: hashes the file, opens the memory maps
                loaded = time.perf_counter()
                batches = sum(1 for _ in loader)
                times.append(time.perf_counter() - start)
                loads.append(loaded - start)
            epochs[mode] = (median(times), median(loads), batches)
            print(f"cached epoch {mode}: {median(times):.3f} s ({batches} batches)", flush=True)

        # 3. data wait during training -------------------------------------------------------------------
        waits = {}
        for mode in ("line_by_line", "packed"):
            serialization = work / f"train-{mode}"
            env = dapt_env(
                model,
                corpus,
                cache,
                args.threads,
                MLM_MODE=mode,
                NUM_STEPS=args.steps,
                NUM_CHECKPOINTS=1,
                BATCH_SIZE=BATCH_SIZE,
                EFFECTIVE_BATCH=BATCH_SIZE,
                MAX_LENGTH=MAX_LENGTH,
            )
            allennlp_train(serialization, env)
            steps = read_steps(serialization)["steps"]
            ends = np.array([s["end"] for s in steps])
            wait = np.array([s["data_wait"] for s in steps])[1:]
            share = wait / np.diff(ends)
            waits[mode] = (
                float(np.median(share)),
                float(share.max()),
                float(wait.sum() / (ends[-1] - ends[0])),
                float(np.median(wait)),
                len(steps),
            )
            print(f"data wait {mode}: median {100 * waits[mode][0]:.3f}% of a step", flush=True)

    tokenize = median(bare)
    rows = [
        [
            "tokenization: reader building its cache",
            f"{median(build):.2f} s",
            f"{megabytes / median(build):.2f} MB/s, "
            f"{num_tokens / median(build) / 1e3:.0f}K tokens/s",
            f"**{median(bare) / median(build):.2f}x** the bare tokenizer (target >= 0.8x)",
        ],
        [
            "tokenization: bare fast tokenizer",
            f"{tokenize:.2f} s",
            f"{megabytes / tokenize:.2f} MB/s, {num_tokens / tokenize / 1e3:.0f}K tokens/s",
            "",
        ],
    ]
    for mode, (seconds, load, batches) in epochs.items():
        rows.append(
            [
                f"cached epoch, {mode} ({batches} batches of {BATCH_SIZE})",
                f"{seconds:.3f} s",
                f"{num_tokens / seconds / 1e6:.1f}M tokens/s; finding the cache {load:.3f} s of it",
                f"**{tokenize / seconds:.0f}x** faster than tokenizing (target >= 10x)",
            ]
        )
    for mode, (share, worst, total, seconds, steps) in waits.items():
        rows.append(
            [
                f"waiting for data in `allennlp train`, {mode}",
                f"{1e3 * seconds:.2f} ms/step (median)",
                f"median {100 * share:.3f}% of a step, worst step {100 * worst:.3f}%, all steps {100 * total:.3f}%",
                f"{steps} steps (target <= 5%)",
            ]
        )
    table = markdown_table(["measurement", "time", "throughput / share", "result"], rows)
    notes = (
        f"Corpus: {megabytes:.1f} MB generated text, {num_tokens:,} tokens with special tokens. Parts 1-2: medians "
        f"over {args.repeats} alternating repeats in one process. Part 3: one `allennlp train` run per mode, "
        f"{args.threads} torch thread(s), 4 layers x 256, 50,265-token vocabulary, batch {BATCH_SIZE} x {MAX_LENGTH}, "
        "`NUM_WORKERS=0`."
    )
    append_results(
        "Masked-LM data path: tokenization, cached epochs, waiting for data",
        table,
        notes,
        args.threads,
    )


if __name__ == "__main__":
    main()
