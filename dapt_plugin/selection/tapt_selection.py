"""
Selecting domain text to augment task-adaptive pretraining (Gururangan et al. 2020, §5):

- **kNN-TAPT**: embed every task example and every unit (sentence or document) of a pool drawn
  from the domain, take the `k` nearest units of each task example, and keep each selected unit
  once;
- **RAND-TAPT**: a uniform random sample of the pool's units (the paper's control, of the same
  size as a kNN-TAPT selection).

The output is a JSON-lines corpus, one `{"text": ...}` object per line, one unit per line, in the
order of the domain corpus. The TAPT config reads it as it reads a task's `train.jsonl`.

# Units and the pool

As the paper did, the default unit is the **sentence** (`unit="sentence"`, split by the rule of
`dapt_plugin/selection/units.py`: sentence-final punctuation followed by whitespace and a capital
letter, a few abbreviations excepted; no model): with whole papers as units, 50 neighbours of each
of ChemProt's 4,169 examples would be ~200K papers, not ~200K sentences. `unit="document"` selects
whole documents (lines of a txt file, or the text of a jsonl line).

Units are selected from a **pool**: a uniform random sample of `pool_size` distinct units of the
domain (the paper embedded a deduplicated 1M-sentence sample; 1M is the default), drawn in one
pass by `common/sampling.py: distinct_sample` (the units with the smallest seeded hash keys, so
identical texts count once, and the same corpus and seed give the same pool). A domain with fewer
distinct units gives them all. RAND-TAPT draws the pool's `size` first units in the same key
order: with the same seed, a subset of the kNN-TAPT pool. Memory while drawing: about 300 bytes
per pooled unit (300 MB for 1M), plus the texts of the `sample_size` units the embedding is
fitted on.

# Embedding

`embedder="lsa"` (the default): latent semantic analysis (LSA) of a bag of words
(`dapt_plugin/selection/lsa.py`), a low-rank topical embedding fitted in seconds on CPU, with no
vocabulary pass over the corpus:

1. words as scikit-learn's `CountVectorizer` sees them (lowercased, tokens of two or more word
   characters), English stop words removed;
2. hashed into 2^20 buckets (`HashingVectorizer`), so no vocabulary is built or stored;
3. weighted by sublinear term frequency, 1 + log(tf), times the smoothed inverse document
   frequency, log((1 + n) / (1 + df)) + 1, with `df` counted on a uniform random sample of the
   pool (`sample_size` units), so that words common to the whole domain count little and topical
   words much; only the 2^17 words with the highest `df` (and `df` >= 2) are kept;
4. projected onto the top `dimension` (128) right singular vectors of the L2-normalised TF-IDF
   matrix of that sample (randomized truncated SVD);
5. L2-normalised float32, so that the inner product is the cosine similarity.

`embedder="vampire"`: the paper's choice, a bag-of-words variational autoencoder in the manner of
VAMPIRE (`dapt_plugin/selection/vampire.py`: 30K-word vocabulary, `dimension` 64 latent
variables, KL annealing), trained on CPU on the same sample plus the task examples; the
embedding is the encoder's mean. It takes minutes rather than seconds, and on the benchmark's
labelled topical data (`benchmarks/RESULTS.md`, "kNN-TAPT embedders") it maps the task's
examples to nearly the same point: their nearest neighbours are more often on the task's topic
than LSA's but far fewer distinct units, and at the same number of distinct units fewer are on
topic; hence LSA as the default (`docs/selection.md` has the figures).

Why not a fixed random projection of the TF-IDF vectors, which needs no fitting? Similarities
between a short task example and a domain unit are small (0.1 to 0.3), and a random projection to
a few hundred dimensions adds noise of about sqrt(2 / dimension) to each, where LSA removes noise
rather than adding it: on the benchmark's synthetic topical data
(`benchmarks/select_tapt_data.py`), far fewer of the neighbours under a random projection are on
the task's topic than under exact TF-IDF cosine or LSA. The shares, and the speed of embedding
and of fitting on the sample, are in `benchmarks/RESULTS.md`.

A unit with no embedding (no known word) is never a neighbour; a task example without one is
skipped with a warning.

# Search

Nearest neighbours by inner product with faiss:

- **exact** when the pool has at most `approximate_above` units (default 1M): the pool is
  embedded in chunks of `chunk_size` units, each chunk is searched with an `IndexFlatIP` and the
  per-example top `k` are merged across chunks (faiss `ResultHeap`). Memory: one chunk plus the
  task examples' `k` results, whatever the pool size; time grows with (task examples x pool
  units) (`benchmarks/RESULTS.md`).
- **approximate** above that: an inverted-file index with 8-bit scalar-quantised vectors
  (`IndexIVFScalarQuantizer`), its `nlist` cells (4 sqrt(units), at most one per 39 sampled
  units) trained on the embedded sample, filled chunk by chunk, searched with `nprobe` (128)
  cells per example; it finds most of the exact neighbours (recall in `benchmarks/RESULTS.md`).
  Memory: `dimension` bytes per pooled unit (128 MB per million at 128 dimensions) plus one
  chunk; time grows with (task examples x pool units x `nprobe` / `nlist`).

The domain texts are never held in memory (apart from the sample): the corpus is read three times,
once to draw the pool, once to embed and search the pool's units, and once to write the selected
units by their position.
"""

import gzip
import json
import logging
import math
import os
from types import ModuleType
from typing import Iterable, Iterator, List, NamedTuple, Optional, Tuple, TypeVar, Union, cast

import numpy as np
from allennlp.common.checks import ConfigurationError
from allennlp.common.tqdm import Tqdm
from more_itertools import chunked

from dapt_plugin.common.atomic import atomic_path, check_writable_path
from dapt_plugin.common.optional_dependencies import optional_dependency
from dapt_plugin.common.sampling import distinct_sample
from dapt_plugin.data.documents import Document, is_json_lines, iter_documents
from dapt_plugin.data.text_files import DataError, PathSpec, expand_paths
from dapt_plugin.selection.lsa import LsaEmbedder
from dapt_plugin.selection.options import EMBEDDERS, METHODS, POOL_SIZE
from dapt_plugin.selection.units import UNITS, Unit, iter_units
from dapt_plugin.selection.vampire import VampireEmbedder

logger = logging.getLogger(__name__)

_MIN_TRAINING_POINTS_PER_CELL = 39  # below this, faiss warns that k-means is poorly trained

T = TypeVar("T")
Embedder = Union[LsaEmbedder, VampireEmbedder]


def require_faiss() -> ModuleType:
    """
    faiss, which kNN selection needs: an optional dependency (the plugin's `selection` extra),
    imported when a selection runs (or `allennlp adapt` checks one) rather than with this
    module, which `--include-package dapt_plugin` imports for every command. Raises
    `MissingDependency` when it cannot be imported.
    """
    with optional_dependency("TAPT data selection", "faiss", "faiss-cpu", extra="selection"):
        import faiss
    return faiss


class ExactSearch:
    """
    Exact top-`k` inner-product search over a corpus that arrives in chunks: each chunk is searched
    with a flat index and the results merged, so memory holds one chunk at a time.

    # Parameters

    queries : `np.ndarray`
        Unit-length float32 query embeddings, one row per task example.
    k : `int`
        Neighbours kept per query.
    """

    name = "exact"

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self._queries = queries
        self._k = k
        self._faiss = require_faiss()
        self._heap = self._faiss.ResultHeap(len(queries), k, keep_max=True)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Searches one chunk of the corpus: `vectors` with their corpus positions `ids`."""
        index = self._faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        scores, positions = index.search(self._queries, min(self._k, len(vectors)))
        self._heap.add_result(scores, ids[positions])

    def search(self) -> Tuple[np.ndarray, np.ndarray]:
        """Returns scores and corpus positions of the `k` nearest units per query (-1: none)."""
        self._heap.finalize()
        return self._heap.D, self._heap.I


class ApproximateSearch:
    """
    Approximate top-`k` inner-product search: an inverted-file index with 8-bit scalar-quantised
    vectors (`IndexIVFScalarQuantizer`), filled chunk by chunk.

    # Parameters

    queries : `np.ndarray`
        Unit-length float32 query embeddings, one row per task example.
    k : `int`
        Neighbours kept per query.
    training_vectors : `np.ndarray`
        Embeddings of a uniform sample of the corpus, to train the cells and the quantiser.
    num_units : `int`
        Size of the corpus, which sets the default number of cells.
    nlist : `int`, optional (default = `None`)
        Number of cells. `None` takes 4 x sqrt(`num_units`), at most one per 39 training
        vectors (faiss's minimum for a well-trained k-means).
    nprobe : `int`, optional (default = `128`)
        Cells searched per query (capped at `nlist`); more is slower and closer to exact.
    """

    name = "approximate"

    def __init__(
        self,
        queries: np.ndarray,
        k: int,
        training_vectors: np.ndarray,
        num_units: int,
        nlist: Optional[int] = None,
        nprobe: int = 128,
    ) -> None:
        if nlist is None:
            nlist = max(
                1,
                min(
                    int(4 * math.sqrt(num_units)),
                    len(training_vectors) // _MIN_TRAINING_POINTS_PER_CELL,
                ),
            )
        elif nlist > len(training_vectors):
            raise ConfigurationError(
                f"`nlist` ({nlist}) exceeds the {len(training_vectors)} sampled units that "
                "train the index; lower `nlist` or raise `sample_size`"
            )
        self._queries = queries
        self._k = k
        dimension = queries.shape[1]
        faiss = require_faiss()
        self._index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dimension),
            dimension,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        self._index.train(training_vectors)
        self._index.nprobe = min(nprobe, nlist)
        logger.info(
            "approximate search: %d cells, %d probed per task example", nlist, self._index.nprobe
        )

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds one chunk of the corpus: `vectors` with their corpus positions `ids`."""
        self._index.add_with_ids(vectors, ids)

    def search(self) -> Tuple[np.ndarray, np.ndarray]:
        """Returns scores and corpus positions of the `k` nearest units per query (-1: none)."""
        return self._index.search(self._queries, self._k)


class SelectionResult(NamedTuple):
    """What `select_tapt_data` wrote."""

    path: str  # the JSON-lines corpus
    method: str  # "knn" or "random"
    unit: str  # "sentence" or "document"
    units: int  # units written
    domain_units: int  # units in the domain corpus, duplicates included
    pool: Optional[int]  # kNN: distinct units in the pool searched; None for random
    search: Optional[str]  # "exact" or "approximate" for kNN, None for random


def select_tapt_data(
    task_paths: PathSpec,
    domain_paths: PathSpec,
    output_path: str,
    k: int = 50,
    method: str = "knn",
    size: Optional[int] = None,
    unit: str = "sentence",
    pool_size: int = POOL_SIZE,
    embedder: str = "lsa",
    text_key: str = "text",
    dimension: Optional[int] = None,
    chunk_size: int = 50000,
    approximate_above: int = 1000000,
    nlist: Optional[int] = None,
    nprobe: int = 128,
    sample_size: int = 100000,
    seed: int = 0,
) -> SelectionResult:
    """
    Selects domain sentences or documents for TAPT and writes them to `output_path` as JSON lines
    (`{"text": ...}`, one unit per line, in corpus order, each distinct text once). The file
    appears only when complete. Every argument is checked before any corpus is read.

    # Parameters

    task_paths : `PathSpec`
        The task's examples (e.g. its `train.jsonl`): txt or jsonl, optionally `.gz`; a path, glob,
        comma-separated list or list. Each example is one query, never split.
    domain_paths : `PathSpec`
        The domain corpus to select from, in the same formats.
    output_path : `str`
        Where to write the selection; must end in `.jsonl` or `.jsonl.gz` and differ from the
        inputs.
    k : `int`, optional (default = `50`)
        kNN: neighbours per task example (the paper used 50, 150 and 500). Random: with `size`
        unset, the sample has `k` x (number of task examples) units, the size of a kNN selection
        before de-duplication.
    method : `str`, optional (default = `"knn"`)
        `"knn"` (kNN-TAPT) or `"random"` (RAND-TAPT).
    size : `int`, optional (default = `None`)
        Random only: number of units to sample, at most `pool_size`. To match a kNN selection,
        pass its `SelectionResult.units`.
    unit : `str`, optional (default = `"sentence"`)
        What is selected: `"sentence"` (the paper's unit; the sentences of the domain's
        documents, split by `dapt_plugin.selection.units.split_sentences`) or `"document"`.
    pool_size : `int`, optional (default = `1000000`)
        The units searched (kNN) or sampled (random): a uniform random sample of this many
        distinct units of the domain (all of them when it has fewer), drawn with `seed`. The
        paper searched a 1M-sentence sample. About 300 bytes of memory per pooled unit.
    embedder : `str`, optional (default = `"lsa"`)
        kNN: `"lsa"` (latent semantic analysis of TF-IDF, fitted in seconds) or `"vampire"` (a
        VAMPIRE-like bag-of-words VAE, the paper's embedder, trained for minutes on CPU).
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in JSON-lines inputs.
    dimension : `int`, optional (default = `None`)
        Embedding size; `None`: 128 for LSA, 64 for VAMPIRE.
    chunk_size : `int`, optional (default = `50000`)
        Units embedded and searched at a time; bounds memory.
    approximate_above : `int`, optional (default = `1000000`)
        Search is exact for pools of at most this many units and approximate (IVF) above. 0
        always searches approximately.
    nlist : `int`, optional (default = `None`)
        Approximate search: number of IVF cells (`None`: 4 x sqrt(pooled units), at most one
        per 39 sampled units).
    nprobe : `int`, optional (default = `128`)
        Approximate search: cells searched per task example.
    sample_size : `int`, optional (default = `100000`)
        kNN: units of the pool (a uniform sample of it) on which the embedder is fitted and the
        approximate index trained; these texts are held in memory.
    seed : `int`, optional (default = `0`)
        Seed of the pool, of the sample and of the embedder; the same inputs and seed give the
        same output.
    """
    _check_arguments(
        k,
        method,
        size,
        unit,
        pool_size,
        embedder,
        dimension,
        chunk_size,
        approximate_above,
        nlist,
        nprobe,
        sample_size,
        seed,
    )
    if method == "knn":
        require_faiss()  # missing: said before any file is read
    task_files = expand_paths(task_paths)
    domain_files = expand_paths(domain_paths)
    _check_output_path(output_path, task_files + domain_files)
    corpus = _Corpus(domain_files, text_key, cast(Unit, unit))
    if method == "knn":
        return _select_knn(
            task_files,
            corpus,
            output_path,
            k,
            pool_size,
            embedder,
            dimension,
            chunk_size,
            approximate_above,
            nlist,
            nprobe,
            sample_size,
            seed,
        )
    return _select_random(task_files, corpus, output_path, k, size, pool_size, seed)


def _check_arguments(
    k: int,
    method: str,
    size: Optional[int],
    unit: str,
    pool_size: int,
    embedder: str,
    dimension: Optional[int],
    chunk_size: int,
    approximate_above: int,
    nlist: Optional[int],
    nprobe: int,
    sample_size: int,
    seed: int,
) -> None:
    if not 0 <= seed < 2**32:  # what numpy's and scikit-learn's generators take
        raise ConfigurationError(f"`seed` must be between 0 and {2**32 - 1}; got {seed}")
    for name, value, choices in (
        ("method", method, METHODS),
        ("unit", unit, UNITS),
        ("embedder", embedder, EMBEDDERS),
    ):
        if value not in choices:
            raise ConfigurationError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")
    if k <= 0:
        raise ConfigurationError(
            f"`k` must be a positive number of neighbours per task example "
            f"(the paper used 50, 150, 500); got {k}"
        )
    for name, value in (
        ("pool_size", pool_size),
        ("chunk_size", chunk_size),
        ("nprobe", nprobe),
        ("sample_size", sample_size),
    ):
        if value <= 0:
            raise ConfigurationError(f"`{name}` must be positive; got {value}")
    if dimension is not None and dimension <= 0:
        raise ConfigurationError(
            f"`dimension` must be positive, or unset for the embedder's default; got {dimension}"
        )
    if size is not None:
        if method != "random":
            raise ConfigurationError(
                "`size` applies to the random method only; kNN selects `k` "
                "neighbours per task example"
            )
        if size <= 0:
            raise ConfigurationError(f"`size` must be a positive number of units; got {size}")
        _check_size_in_pool(size, pool_size)
    if approximate_above < 0:
        raise ConfigurationError(
            f"`approximate_above` must be 0 or more units; got {approximate_above}"
        )
    if nlist is not None and nlist <= 0:
        raise ConfigurationError(f"`nlist` must be positive, or unset for the default; got {nlist}")


def _check_size_in_pool(size: int, pool_size: int) -> None:
    if size > pool_size:
        raise ConfigurationError(
            f"the random sample of {size} units exceeds `pool_size` ({pool_size}), the units it "
            "is drawn from; raise `pool_size` or lower `size` (or `k`)"
        )


def _check_output_path(output_path: str, input_files: List[str]) -> None:
    if not is_json_lines(output_path):
        raise ConfigurationError(
            f"the output {output_path!r} must end in .jsonl or .jsonl.gz (or .ndjson or .json, "
            "in any case): it is written as JSON lines with a 'text' field, and readers tell "
            "the format by the name"
        )
    check_writable_path(output_path, "file")
    output = os.path.realpath(output_path)
    for path in input_files:
        if os.path.realpath(path) == output:
            raise ConfigurationError(
                f"the output {output_path!r} is also an input; choose another output path"
            )


class _Corpus(NamedTuple):
    """The domain corpus, read unit by unit."""

    files: List[str]
    text_key: str
    unit: Unit

    @property
    def name(self) -> str:
        return ", ".join(self.files)

    def draw(
        self, size: int, seed: int, keep_texts: int, description: str
    ) -> Tuple[int, np.ndarray, List[str]]:
        """
        One pass: the number of units, the positions of a uniform random sample of `size`
        distinct units in the seed's order (`distinct_sample`), and the texts of its first
        `keep_texts` in corpus order.
        """
        units = _progress(iter_units(self.files, self.text_key, self.unit), description, self.unit)
        seen, sample, kept = distinct_sample(units, size, seed, keep_texts)
        positions = np.fromiter((position for _, position in sample), np.int64, len(sample))
        return seen, positions, [text for _, text in kept]

    def units_at(
        self, positions: np.ndarray, num_units: int, description: str
    ) -> Iterator[Tuple[str, int]]:
        """`(text, position)` of the units at the sorted `positions`, in one pass."""
        wanted = iter(positions.tolist())
        next_wanted = next(wanted, None)
        seen = 0
        units = iter_units(self.files, self.text_key, self.unit)
        for text, position in _progress(units, description, self.unit, num_units):
            seen += 1
            if position == next_wanted:
                yield text, position
                next_wanted = next(wanted, None)
        if seen != num_units:
            raise DataError(
                self.name,
                0,
                f"the domain corpus had {num_units} {self.unit}s when first read and {seen} "
                "now; it changed during selection: run again on a corpus nobody is writing to",
            )

    def write(self, positions: np.ndarray, output_path: str, num_units: int) -> int:
        """Writes the units at the sorted `positions`, atomically; returns how many."""
        os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
        written = 0
        with atomic_path(output_path) as temporary:
            with (
                gzip.open(temporary, "wt", encoding="utf-8")
                if output_path.lower().endswith(".gz")
                else open(temporary, "w", encoding="utf-8")
            ) as handle:
                for text, _ in self.units_at(
                    positions, num_units, f"writing the selected {self.unit}s"
                ):
                    handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                    written += 1
        logger.info("wrote %d %ss to %s", written, self.unit, output_path)
        return written


def _select_knn(
    task_files: List[str],
    corpus: _Corpus,
    output_path: str,
    k: int,
    pool_size: int,
    embedder_name: str,
    dimension: Optional[int],
    chunk_size: int,
    approximate_above: int,
    nlist: Optional[int],
    nprobe: int,
    sample_size: int,
    seed: int,
) -> SelectionResult:
    task = list(iter_documents(task_files, corpus.text_key))
    if not task:
        raise DataError(
            ", ".join(task_files), 0, "no task example (every line is blank); check the task path"
        )
    num_units, pool, sample = corpus.draw(
        pool_size, seed, sample_size, f"drawing a pool of {corpus.unit}s from the domain"
    )
    if num_units == 0:
        raise DataError(corpus.name, 0, "the domain corpus has no text; check the domain path")
    logger.info(
        "domain corpus: %d %ss; pool of %d distinct ones%s; %d of them fit the embedding",
        num_units,
        corpus.unit,
        len(pool),
        "" if len(pool) == pool_size else " (all the domain's distinct ones)",
        len(sample),
    )
    embedder = _fit_embedder(embedder_name, sample, task, dimension, seed)
    queries = _embed_task(embedder, task)
    if k > len(pool):
        logger.warning(
            "k=%d exceeds the %d pooled %ss: every one with words will be selected",
            k,
            len(pool),
            corpus.unit,
        )
    searcher: Union[ExactSearch, ApproximateSearch]
    if len(pool) <= approximate_above:
        searcher = ExactSearch(queries, k)
    else:
        training, embedded = embedder.embed(sample)
        searcher = ApproximateSearch(queries, k, training[embedded], len(pool), nlist, nprobe)
    del sample
    logger.info(
        "%s search for the %d nearest of %d pooled %ss of each of %d task examples",
        searcher.name,
        k,
        len(pool),
        corpus.unit,
        len(queries),
    )
    pool.sort()
    pooled = corpus.units_at(pool, num_units, f"embedding and searching the pooled {corpus.unit}s")
    for chunk in chunked(pooled, chunk_size):
        vectors, embedded = embedder.embed([text for text, _ in chunk])
        if embedded.any():
            ids = np.fromiter((position for _, position in chunk), np.int64, len(chunk))
            searcher.add(ids[embedded], np.ascontiguousarray(vectors[embedded]))
    scores, neighbours = searcher.search()
    found = neighbours >= 0
    selected = np.unique(neighbours[found])
    logger.info(
        "%d distinct %ss among the %d neighbours found; mean cosine similarity "
        "to their task example %.3f",
        len(selected),
        corpus.unit,
        found.sum(),
        float(scores[found].mean()) if found.any() else float("nan"),
    )
    written = corpus.write(selected, output_path, num_units)
    return SelectionResult(
        output_path, "knn", corpus.unit, written, num_units, len(pool), searcher.name
    )


def _select_random(
    task_files: List[str],
    corpus: _Corpus,
    output_path: str,
    k: int,
    size: Optional[int],
    pool_size: int,
    seed: int,
) -> SelectionResult:
    if size is None:
        num_task = sum(1 for _ in iter_documents(task_files, corpus.text_key))
        if num_task == 0:
            raise DataError(
                ", ".join(task_files),
                0,
                "no task example (every line is blank) to "
                "set the sample size; check the task path or give `size`",
            )
        size = k * num_task
        logger.info(
            "random sample of k x task examples = %d x %d = %d %ss", k, num_task, size, corpus.unit
        )
        _check_size_in_pool(size, pool_size)
    # the first `size` units of the pool in the seed's order: a subset of the kNN pool
    num_units, drawn, _ = corpus.draw(size, seed, 0, f"sampling the domain's {corpus.unit}s")
    if len(drawn) < size:
        raise ConfigurationError(
            f"cannot sample {size} {corpus.unit}s from a domain corpus of {len(drawn)} "
            f"distinct {corpus.unit}s ({corpus.name}); lower `size` (or `k`)"
        )
    drawn.sort()
    written = corpus.write(drawn, output_path, num_units)
    return SelectionResult(output_path, "random", corpus.unit, written, num_units, None, None)


def _fit_embedder(
    name: str, sample: List[str], task: List[Document], dimension: Optional[int], seed: int
) -> Embedder:
    size = {} if dimension is None else {"dimension": dimension}
    if name == "lsa":
        return LsaEmbedder(sample, seed=seed, **size)
    return VampireEmbedder(sample + [document.text for document in task], seed=seed, **size)


def _embed_task(embedder: Embedder, task: List[Document]) -> np.ndarray:
    vectors, embedded = embedder.embed([document.text for document in task])
    if not embedded.all():
        first = task[int(np.argmin(embedded))]
        logger.warning(
            "%d task example(s) have no word the embedder knows (outside the English stop words, "
            "in the texts it was fitted on) and are skipped, the first at %s:%d",
            (~embedded).sum(),
            first.path,
            first.line_number,
        )
    if not embedded.any():
        raise DataError(
            first.path,
            0,
            "no task example has a word the embedder knows (outside the English stop words, in "
            "the texts it was fitted on): the task shares no vocabulary with the domain; check "
            "the task and domain paths and `text_key`",
        )
    return np.ascontiguousarray(vectors[embedded])


def _progress(
    items: Iterable[T], description: str, unit: str, total: Optional[int] = None
) -> Iterable[T]:
    return Tqdm.tqdm(items, desc=description, total=total, unit=f" {unit}s")
