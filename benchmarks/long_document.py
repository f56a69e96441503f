"""
Peak memory of tokenizing one enormous document into the token cache: whole, as before, against a
piece of at most `PIECE_CHARACTERS` characters at a time (`token_cache.TokenCache._encode`).

A one-line file of `--megabytes` MB of generated text (`_common.TextGenerator`'s pseudo-words) is
tokenized into a fresh cache by the roberta-base-sized byte-level BPE of `_common.tokenizer_dir`,
each way in a process of its own, and so is a one-line file of 2 KB, whose peak resident memory
(the imports and the tokenizer) is subtracted. Both ways must give the same token ids (compared
byte for byte). Takes about a minute at 21 MB.

    .venv/bin/python benchmarks/long_document.py [--megabytes 21]
"""

import argparse
import filecmp
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import append_results, markdown_table, tokenizer_dir, write_corpus

_MEASURE = """
import json, resource, sys, time
from transformers import AutoTokenizer
from dapt_plugin.data import token_cache
if sys.argv[4] == "whole":
    token_cache.PIECE_CHARACTERS = 1 << 62
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
start = time.monotonic()
entry = token_cache.TokenCache(tokenizer, sys.argv[3]).load(sys.argv[2])
print(json.dumps({
    "tokens": entry.num_tokens,
    "seconds": time.monotonic() - start,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _measure(tokenizer: Path, corpus: Path, cache: Path, way: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tokenizer), str(corpus), str(cache), way],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=21)
    args = parser.parse_args()

    tokenizer = tokenizer_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text = write_corpus(work / "text.txt", int(args.megabytes * 1e6)).read_text()
        huge, small = work / "huge.txt", work / "small.txt"
        huge.write_text(" ".join(text.split("\n")) + "\n")
        megabytes = huge.stat().st_size / 1e6
        small.write_text(" ".join(text[:2000].split("\n")) + "\n")
        baseline = _measure(tokenizer, small, work / "cache_small", "pieces")["peak_mb"]
        results = {
            way: _measure(tokenizer, huge, work / f"cache_{way}", way)
            for way in ("whole", "pieces")
        }
        ids = [glob.glob(str(work / f"cache_{way}" / "*" / "ids.bin"))[0] for way in results]
        same = filecmp.cmp(*ids, shallow=False)
    if not same:
        raise SystemExit("the two ways gave different token ids")
    rows = [
        (
            "whole (before)" if way == "whole" else "pieces of 1M characters",
            f"{result['tokens']:,}",
            f"{result['seconds']:.1f}",
            f"{(result['peak_mb'] - baseline) / 1024:.2f}",
        )
        for way, result in results.items()
    ]
    append_results(
        "Tokenizing one enormous document: whole vs in pieces",
        markdown_table(
            ["tokenized", "tokens", "seconds", "peak resident memory over the process's own (GB)"],
            rows,
        ),
        notes=(
            f"A one-line file of {megabytes:.1f} MB of generated text, tokenized "
            "into a fresh token cache by a byte-level BPE of roberta-base's vocabulary size, each "
            f"way in a process of its own; the process's own peak ({baseline:,.0f} MB: imports "
            "and tokenizer, measured on a one-line file of 2 KB) subtracted. Both ways give the "
            f"same ids, byte for byte. Measured {time.strftime('%Y-%m-%d %H:%M')}."
        ),
    )


if __name__ == "__main__":
    main()
