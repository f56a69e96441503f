"""
Benchmark of TAPT data selection (`allennlp select-tapt-data`, `dapt_plugin.selection.tapt_selection`)
on generated text: a domain corpus of `--documents` (1M) documents on 20 topics and a task of
`--task-examples` examples on topic 0 (`dapt_plugin.testing.topics`), written to a temporary
directory.

It measures, on this machine:
- embedding: documents per second of `LsaEmbedder.embed` (reading excluded), and the time to fit
  the embedder on the sample;
- search: domain documents per second through exact search (chunked `IndexFlatIP`) and through
  approximate search (IVF, 8-bit codes; training, adding and searching), and the recall of the
  approximate neighbours against the exact ones;
- end to end, each in a fresh process: wall time and peak resident memory of kNN selection with
  exact and with approximate search, and of random selection, and the share of selected documents
  on the task's topic (5% of the corpus is);
- embedding quality on a small labelled corpus (20K documents on 20 topics, 200 task examples on
  one): the share on the task's topic (the selection's precision) of the distinct nearest
  neighbours under exact TF-IDF cosine, a 256-dimensional random projection of it, LSA (the
  default embedder) and the VAMPIRE-like VAE (`embedder="vampire"`, the paper's choice), with the
  time to fit each.

Prints a table and appends it, with the command and a machine description, to
`benchmarks/RESULTS.md` (`_common.append_results`). Takes about 15 minutes on 2 cores for 1M
documents; `--quality-only` measures the embedding quality alone (a few minutes, most of it
training the VAE).

    .venv/bin/python benchmarks/select_tapt_data.py [--documents 1000000] [--task-examples 2000] [--k 50]
    .venv/bin/python benchmarks/select_tapt_data.py --quality-only
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from _common import append_results, machine_description

from dapt_plugin.data.documents import iter_documents
from dapt_plugin.selection.lsa import LsaEmbedder
from dapt_plugin.selection.tapt_selection import ApproximateSearch, ExactSearch
from dapt_plugin.selection.vampire import VampireEmbedder
from dapt_plugin.testing.topics import TopicalTextGenerator

NUM_TOPICS = 20
GENERATOR = dict(
    num_topics=NUM_TOPICS, topic_vocabulary=300, shared_vocabulary=5000, topic_share=0.25
)
CHUNK = 50000
EQUAL_SIZE = 1000
SAMPLE = 100000
DIMENSION = 128


def write_corpus(
    directory: Path, documents: int, task_examples: int, seed: int
) -> Tuple[Path, Path]:
    generator = TopicalTextGenerator(seed=seed, **GENERATOR)
    rng = np.random.default_rng(seed)
    domain = directory / "domain.txt"
    with open(domain, "w", encoding="utf-8") as handle:
        for start in range(0, documents, 100000):
            topics = rng.integers(0, NUM_TOPICS, size=min(100000, documents - start))
            handle.write("".join(text + "\n" for text in generator.documents(topics, 20, 80)))
    task = directory / "task.jsonl"
    with open(task, "w", encoding="utf-8") as handle:
        for text in generator.documents([0] * task_examples, 10, 30):
            handle.write(json.dumps({"text": text, "label": "x"}) + "\n")
    return domain, task


def on_topic(path: Path, seed: int) -> float:
    generator = TopicalTextGenerator(seed=seed, **GENERATOR)
    return float(np.mean([generator.topic_of(d.text) == 0 for d in iter_documents(str(path))]))


def measure_components(
    domain: Path, task: Path, k: int, dimension: int, seed: int
) -> Dict[str, float]:
    """Embedding and search throughput, each timed alone (reading the corpus excluded)."""
    texts = [d.text for d in iter_documents(str(domain))]
    sample = random.Random(seed).sample(texts, min(SAMPLE, len(texts)))
    start = time.perf_counter()
    embedder = LsaEmbedder(sample, dimension=dimension, seed=seed)
    fit_seconds = time.perf_counter() - start
    queries, _ = embedder.embed([d.text for d in iter_documents(str(task))])
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    start = time.perf_counter()
    for offset in range(0, len(texts), CHUNK):
        vectors[offset : offset + CHUNK] = embedder.embed(texts[offset : offset + CHUNK])[0]
    embed_seconds = time.perf_counter() - start
    del texts

    ids = np.arange(len(vectors), dtype=np.int64)
    start = time.perf_counter()
    exact = ExactSearch(queries, k)
    for offset in range(0, len(vectors), CHUNK):
        exact.add(ids[offset : offset + CHUNK], vectors[offset : offset + CHUNK])
    _, exact_ids = exact.search()
    exact_seconds = time.perf_counter() - start

    training = embedder.embed(sample)[0]
    start = time.perf_counter()
    approximate = ApproximateSearch(queries, k, training, len(vectors))
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for offset in range(0, len(vectors), CHUNK):
        approximate.add(ids[offset : offset + CHUNK], vectors[offset : offset + CHUNK])
    add_seconds = time.perf_counter() - start
    start = time.perf_counter()
    _, approximate_ids = approximate.search()
    search_seconds = time.perf_counter() - start
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approximate_ids, exact_ids)])
    return {
        "documents": len(vectors),
        "queries": len(queries),
        "fit_seconds": fit_seconds,
        "embed_per_second": len(vectors) / embed_seconds,
        "exact_per_second": len(vectors) / exact_seconds,
        "ivf_train_seconds": train_seconds,
        "ivf_add_per_second": len(vectors) / add_seconds,
        "ivf_search_seconds": search_seconds,
        "ivf_per_second": len(vectors) / (train_seconds + add_seconds + search_seconds),
        "ivf_recall": float(recall),
    }


def end_to_end(domain: Path, task: Path, output: Path, seed: int, **arguments) -> Dict[str, float]:
    """Runs `select_tapt_data` in a fresh process; returns its wall time and memory."""
    request = json.dumps(
        {
            "task_paths": str(task),
            "domain_paths": str(domain),
            "output_path": str(output),
            "seed": seed,
            "unit": "document",  # the generated documents are one unit each, in the pool
            **arguments,
        }
    )
    process = subprocess.run(
        [sys.executable, __file__, "--child", request],
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
        check=True,
    )
    report = json.loads(process.stdout.strip().splitlines()[-1])
    report["on_topic"] = on_topic(output, seed)
    return report


def memory_mb(field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of this process. Not `getrusage`: its peak survives
    `exec`, so a child would report the peak of the benchmark process that started it."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def child(request: str) -> None:
    from dapt_plugin.selection.tapt_selection import select_tapt_data

    before = memory_mb("VmRSS")
    start = time.perf_counter()
    result = select_tapt_data(**json.loads(request))
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "documents": result.units,
                "search": result.search,
                "peak_rss_mb": memory_mb("VmHWM"),
                "rss_before_mb": before,
            }
        )
    )


def embedding_quality(seed: int) -> Dict[str, Tuple[float, int, float, int, float]]:
    """
    Per embedding, among 20K documents: the share on topic and the number of the distinct 20
    nearest neighbours of 200 task examples; the share on topic of `EQUAL_SIZE` distinct
    neighbours and the neighbours per example it takes; the seconds to fit.
    """
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    generator = TopicalTextGenerator(seed=seed, **GENERATOR)
    topics = np.random.default_rng(seed).integers(0, NUM_TOPICS, size=20000)
    domain = generator.documents(topics, 20, 80)
    task = generator.documents([0] * 200, 10, 30)

    def quality(scores: np.ndarray, seconds: float) -> Tuple[float, int, float, int, float]:
        order = np.argsort(-scores, axis=1)
        neighbours = np.unique(order[:, :20])
        # the same number of distinct documents for every embedding: the fewest nearest
        # neighbours per example that give EQUAL_SIZE distinct ones
        k = 1
        while len(np.unique(order[:, :k])) < EQUAL_SIZE:
            k += 1
        equal = np.unique(order[:, :k])
        return (
            float((topics[neighbours] == 0).mean()),
            len(neighbours),
            float((topics[equal] == 0).mean()),
            k,
            seconds,
        )

    start = time.perf_counter()
    tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit(domain)
    documents, queries = tfidf.transform(domain), tfidf.transform(task)
    seconds = time.perf_counter() - start
    results = {"exact TF-IDF cosine": quality((queries @ documents.T).toarray(), seconds)}
    projection = (
        np.random.default_rng(seed).standard_normal((documents.shape[1], 256)).astype(np.float32)
    )

    def project(matrix: sp.csr_matrix) -> np.ndarray:
        vectors = matrix @ projection
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    results["random projection, 256 dims"] = quality(
        project(queries) @ project(documents).T, seconds
    )
    for name, fit in [
        ("LSA, 64 dims", lambda: LsaEmbedder(domain, dimension=64, seed=seed)),
        ("LSA, 128 dims (default)", lambda: LsaEmbedder(domain, dimension=128, seed=seed)),
        ("VAMPIRE-like VAE, 64 dims", lambda: VampireEmbedder(domain + task, seed=seed)),
    ]:
        start = time.perf_counter()
        embedder = fit()
        seconds = time.perf_counter() - start
        results[name] = quality(embedder.embed(task)[0] @ embedder.embed(domain)[0].T, seconds)
        print(name, results[name], flush=True)
    return results


def quality_table(results: Dict[str, Tuple[float, int, float, int, float]]) -> str:
    lines = [
        "Embedding quality, the precision of kNN selection (20K generated documents of 20-80 "
        "words on 20 topics, 200 task examples on one; share of the selected documents on the "
        "task's topic, which is 5% of the corpus): of the distinct 20 nearest documents of each "
        f"example, and of {EQUAL_SIZE:,} distinct neighbours for every embedding (the fewest "
        "neighbours per example, k, that give that many):",
        "",
        f"| embedding | on topic, k = 20 | distinct, k = 20 | on topic, {EQUAL_SIZE:,} "
        "distinct | k for them | fit |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {100 * share:.1f}% | {count:,} | {100 * equal:.1f}% | {k} | {seconds:.1f} s |"
        for name, (share, count, equal, k, seconds) in results.items()
    ]
    return "\n".join(lines)


def table(
    components: Dict[str, float],
    runs: Dict[str, Dict[str, float]],
    k: int,
) -> str:
    c = components
    lines = [
        f"Domain: {c['documents']:,} generated documents (20-80 words, {NUM_TOPICS} topics); task: "
        f"{c['queries']:,} examples on one topic; k = {k}; LSA {DIMENSION} dims; chunks of {CHUNK:,}.",
        "",
        "| stage | throughput | notes |",
        "|---|---|---|",
        f"| embedding (hash, TF-IDF, LSA projection) | {c['embed_per_second']:,.0f} docs/s | fit on "
        f"{SAMPLE:,}-doc sample: {c['fit_seconds']:.1f} s |",
        f"| exact search (IndexFlatIP per chunk, merged top-k) | {c['exact_per_second']:,.0f} docs/s | "
        f"{c['queries']:,} queries |",
        f"| approximate search (IVF-SQ8, nprobe 128) | {c['ivf_per_second']:,.0f} docs/s | train "
        f"{c['ivf_train_seconds']:.1f} s, add {c['ivf_add_per_second']:,.0f} docs/s, search "
        f"{c['ivf_search_seconds']:.1f} s; recall@{k} vs exact {c['ivf_recall']:.3f} |",
        "",
        "| end to end (fresh process) | wall time | docs/s | peak RSS | selected | on task topic |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        lines.append(
            f"| {name} | {run['seconds']:.0f} s | {c['documents'] / run['seconds']:,.0f} | "
            f"{run['peak_rss_mb']:,.0f} MB ({run['rss_before_mb']:,.0f} MB before) | "
            f"{run['documents']:,} | {100 * run['on_topic']:.1f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1000000)
    parser.add_argument("--task-examples", type=int, default=2000)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument(
        "--quality-only", action="store_true", help="measure the embedding quality only"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    machine = machine_description(
        packages=("torch", "faiss", "numpy", "sklearn"), load_average=True
    )
    if args.quality_only:
        quality = embedding_quality(args.seed)
        append_results(
            "kNN-TAPT embedders: LSA vs the VAMPIRE-like VAE",
            quality_table(quality),
            machine=machine,
            record=not args.no_record,
        )
        return
    with tempfile.TemporaryDirectory(prefix="select_tapt_bench_") as directory:
        directory = Path(directory)
        start = time.perf_counter()
        domain, task = write_corpus(directory, args.documents, args.task_examples, args.seed)
        print(
            f"generated {args.documents:,} documents ({domain.stat().st_size / 2**20:,.0f} MB) in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        components = measure_components(domain, task, args.k, DIMENSION, args.seed)
        print(json.dumps(components), flush=True)
        runs = {}
        for name, arguments in [
            ("kNN, exact search", {"k": args.k, "approximate_above": args.documents}),
            ("kNN, approximate search", {"k": args.k, "approximate_above": 0}),
        ]:
            runs[name] = end_to_end(domain, task, directory / "out.jsonl", args.seed, **arguments)
            print(name, json.dumps(runs[name]), flush=True)
        runs["random, same size"] = end_to_end(
            domain,
            task,
            directory / "out.jsonl",
            args.seed,
            method="random",
            size=runs["kNN, exact search"]["documents"],
        )
        print(json.dumps(runs["random, same size"]), flush=True)
    quality = embedding_quality(args.seed)
    append_results(
        "TAPT data selection (kNN-TAPT, RAND-TAPT)",
        table(components, runs, args.k) + "\n\n" + quality_table(quality),
        machine=machine,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
