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

    .venv/bin/python benchmarks/memory.py [--sizes-mb 10 1000] [--steps 5] [--threads 1]
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from _common import (
    BATCH_SIZE,
    MAX_LENGTH,
    PLUGINS,
    PYTHON,
    REPO,
    append_results,
    build_model,
    dapt_env,
    markdown_table,
    train_arguments,
    write_corpus,
)

from dapt_plugin.common.launch import allennlp_command

_WRAPPER = """
import json, resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(result.stderr[-4000:])
print(json.dumps({"returncode": result.returncode, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def peak_rss(serialization: Path, env: dict) -> dict:
    command = allennlp_command(train_arguments(serialization), PLUGINS)
    start = time.perf_counter()
    process = subprocess.run(
        [PYTHON, "-c", _WRAPPER] + command, env=env, cwd=str(REPO), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    result = json.loads(process.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise RuntimeError(f"allennlp train failed:\n{process.stderr}")
    return {"peak_mb": result["maxrss_kb"] / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[10, 1000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows, peaks = [], []
    with tempfile.TemporaryDirectory(prefix="dapt_bench_memory_") as tmp:
        work = Path(tmp)
        model = build_model(work / "model", 4, 256)
        for size in args.sizes_mb:
            corpus = work / f"corpus-{size:g}mb.txt"
            start = time.perf_counter()
            write_corpus(corpus, int(size * 1e6))
            generated = time.perf_counter() - start
            cache = work / f"cache-{size:g}"
            env = dapt_env(
                model,
                corpus,
                cache,
                args.threads,
                MLM_MODE="line_by_line",
                NUM_STEPS=args.steps,
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
        f"{args.steps} optimizer steps, {args.threads} torch thread(s), an empty cache at the start of each run."
    )
    append_results("Peak memory of a DAPT run: 10 MB vs 1 GB corpus", table, notes, args.threads)


if __name__ == "__main__":
    main()
