"""
Selecting domain documents to augment task-adaptive pretraining (Gururangan et al. 2020, §5):

- **kNN-TAPT**: embed every task example and every domain document, take the `k` nearest domain
  documents of each task example, and keep each selected document once;
- **RAND-TAPT**: a uniform random sample of the domain documents (the paper's control, of the same
  size as a kNN-TAPT selection).

The output is a JSON-lines corpus, one `{"text": ...}` object per line, one document per line, in
the order of the domain corpus; identical texts are written once. The TAPT config reads it as it
reads a task's `train.jsonl`.

# Embedding

The paper embedded documents with VAMPIRE, a bag-of-words topic model (a VAE) trained per domain.
Here the embedding is latent semantic analysis (LSA) of a bag of words: a low-rank topical
embedding too, but fitted in seconds on CPU, with no GPU and no vocabulary pass over the corpus:

1. words as scikit-learn's `CountVectorizer` sees them (lowercased, tokens of two or more word
   characters), English stop words removed;
2. hashed into 2^20 buckets (`HashingVectorizer`), so no vocabulary is built or stored;
3. weighted by sublinear term frequency, 1 + log(tf), times the smoothed inverse document
   frequency, log((1 + n) / (1 + df)) + 1, with `df` counted on a uniform random sample
   (reservoir sampling, `sample_size` documents) of the domain corpus, so that words common to
   the whole domain count little and topical words much; only the 2^17 words with the highest
   `df` (and `df` >= 2) are kept;
4. projected onto the top `dimension` (128) right singular vectors of the L2-normalised TF-IDF
   matrix of that sample (randomized truncated SVD);
5. L2-normalised float32, so that the inner product is the cosine similarity.

Why not a fixed random projection of the TF-IDF vectors, which needs no fitting? Similarities
between a short task example and a domain document are small (0.1 to 0.3), and a random
projection to a few hundred dimensions adds noise of about sqrt(2 / dimension) to each, where LSA
removes noise rather than adding it: on the benchmark's synthetic topical data
(`benchmarks/select_tapt_data.py`), far fewer of the neighbours under a random projection are on
the task's topic than under exact TF-IDF cosine or LSA. The shares, and the speed of embedding
and of fitting on the sample, are in `benchmarks/RESULTS.md`.

A document with no embedding (no known word left after steps 1-3) is never a neighbour; a task
example without one is skipped with a warning.

# Search

Nearest neighbours by inner product with faiss:

- **exact** when the domain corpus has at most `approximate_above` documents (default 1M): the
  corpus is embedded in chunks of `chunk_size` documents, each chunk is searched with an
  `IndexFlatIP` and the per-example top `k` are merged across chunks (faiss `ResultHeap`). Memory:
  one chunk plus the task examples' `k` results, whatever the corpus size; time grows with
  (task examples x domain documents) (`benchmarks/RESULTS.md`).
- **approximate** above that: an inverted-file index with 8-bit scalar-quantised vectors
  (`IndexIVFScalarQuantizer`), its `nlist` cells (4 sqrt(documents), at most one per 39 sampled
  documents) trained on the embedded sample, filled chunk by chunk, searched with `nprobe` (128)
  cells per example; it finds most of the exact neighbours (recall in `benchmarks/RESULTS.md`). Memory:
  `dimension` bytes per domain document (128 MB per million documents at 128 dimensions) plus one
  chunk; time grows with (task examples x domain documents x `nprobe` / `nlist`).

The domain texts are never held in memory (apart from the sample): the corpus is read three times,
once to count and sample it, once to embed and search it, and once to write the selected documents
by their position.
"""

import gzip
import hashlib
import json
import logging
import math
import os
import random
from typing import Iterable, List, Literal, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import scipy.sparse as sp
from allennlp.common.checks import ConfigurationError
from allennlp.common.tqdm import Tqdm
from more_itertools import chunked
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from dapt_plugin.common.atomic import atomic_path
from dapt_plugin.common.optional_dependencies import optional_dependency
from dapt_plugin.common.sampling import reservoir_sample
from dapt_plugin.data.documents import Document, iter_documents
from dapt_plugin.data.text_files import DataError, PathSpec, expand_paths

with optional_dependency("TAPT data selection", "faiss", "faiss-cpu"):
    import faiss

logger = logging.getLogger(__name__)

METHODS = ("knn", "random")
OUTPUT_SUFFIXES = (".jsonl", ".jsonl.gz")
_NUM_BUCKETS = 2**20
_MIN_TRAINING_POINTS_PER_CELL = 39  # below this, faiss warns that k-means is poorly trained

T = TypeVar("T")


class LsaEmbedder:
    """
    Embeds texts by latent semantic analysis of hashed TF-IDF bags of words: the projection onto
    the top singular vectors of a TF-IDF sample of the corpus (see the module docstring for each
    step and why), unit length, float32.

    # Parameters

    sample : `Sequence[str]`
        Documents on which document frequencies are counted and the projection is fitted: a
        uniform random sample of the corpus to be searched (all of it when small).
    dimension : `int`, optional (default = `128`)
        Size of the embeddings. Fewer dimensions keep broader topics; more keep finer distinctions
        and cost proportionally more search time and index memory. Lowered, with a warning, when
        the sample has fewer documents or words than that.
    max_words : `int`, optional (default = `131072`)
        The projection covers this many of the sample's most document-frequent hashed words (those
        in at least 2 sampled documents); the others are ignored. Memory: `max_words` x
        `dimension` x 4 bytes (64 MB by default).
    seed : `int`, optional (default = `0`)
        Seed of the randomized SVD. The same sample, dimension and seed give the same embedder.
    """

    def __init__(
        self, sample: Sequence[str], dimension: int = 128, max_words: int = 2**17, seed: int = 0
    ) -> None:
        if dimension <= 0:
            raise ConfigurationError(f"`dimension` must be positive; got {dimension}")
        if max_words <= 0:
            raise ConfigurationError(f"`max_words` must be positive; got {max_words}")
        self._vectorizer = HashingVectorizer(
            n_features=_NUM_BUCKETS,
            alternate_sign=False,
            norm=None,
            stop_words="english",
            dtype=np.float32,
        )
        counts = self._vectorizer.transform(sample)
        document_frequency = np.bincount(counts.indices, minlength=_NUM_BUCKETS)
        candidates = np.flatnonzero(document_frequency >= 2)
        kept = candidates[np.argsort(-document_frequency[candidates], kind="stable")[:max_words]]
        kept.sort()
        self.dimension = min(dimension, len(sample) - 1, len(kept) - 1)
        if self.dimension < 1:
            raise ConfigurationError(
                f"the sample of {len(sample)} document(s) has {len(kept)} word(s) in at least two "
                "documents outside the English stop words: too little text to embed; give a "
                "larger domain corpus"
            )
        if self.dimension < dimension:
            logger.warning(
                "embedding dimension lowered from %d to %d: the sample has only %d "
                "documents and %d words in two or more of them",
                dimension,
                self.dimension,
                len(sample),
                len(kept),
            )
        idf = np.log((1.0 + len(sample)) / (1.0 + document_frequency[kept])) + 1.0
        # Maps hashed words to the kept columns, weighted by their IDF, in one sparse product.
        self._weighting = sp.csr_matrix(
            (idf.astype(np.float32), (kept, np.arange(len(kept)))),
            shape=(_NUM_BUCKETS, len(kept)),
            dtype=np.float32,
        )
        tfidf = normalize(self._tfidf(counts))
        # OpenBLAS's threaded QR of the tall, thin matrices of a randomized SVD can be far slower
        # than its single-threaded one (`benchmarks/RESULTS.md`).
        with threadpool_limits(limits=1, user_api="blas"):
            svd = TruncatedSVD(self.dimension, algorithm="randomized", random_state=seed).fit(tfidf)
        self._components = np.ascontiguousarray(svd.components_.T, dtype=np.float32)
        logger.info(
            "LSA embedding: %d dimensions over %d hashed words, fitted on %d documents "
            "(%.0f%% of the TF-IDF variance)",
            self.dimension,
            len(kept),
            len(sample),
            100 * svd.explained_variance_ratio_.sum(),
        )

    def _tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Weights hashed word counts (changed in place) and keeps the covered words."""
        counts.data = 1.0 + np.log(counts.data)
        return counts @ self._weighting

    def embed(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """
        Returns the embeddings of `texts` (float32, `len(texts)` x `dimension`, unit length) and a
        boolean mask of the texts that have one (the others, without any known word outside the
        stop words, are rows of zeros).

        # Parameters

        texts : `Sequence[str]`
            The texts to embed.
        """
        vectors = np.asarray(
            self._tfidf(self._vectorizer.transform(texts)) @ self._components, dtype=np.float32
        )
        norms = np.linalg.norm(vectors, axis=1)
        embedded = norms > 0
        vectors[embedded] /= norms[embedded, None]
        return vectors, embedded


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
        self._heap = faiss.ResultHeap(len(queries), k, keep_max=True)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Searches one chunk of the corpus: `vectors` with their corpus positions `ids`."""
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        scores, positions = index.search(self._queries, min(self._k, len(vectors)))
        self._heap.add_result(scores, ids[positions])

    def search(self) -> Tuple[np.ndarray, np.ndarray]:
        """Returns scores and corpus positions of the `k` nearest documents per query (-1: none)."""
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
    num_documents : `int`
        Size of the corpus, which sets the default number of cells.
    nlist : `int`, optional (default = `None`)
        Number of cells. `None` takes 4 x sqrt(`num_documents`), at most one per 39 training
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
        num_documents: int,
        nlist: Optional[int] = None,
        nprobe: int = 128,
    ) -> None:
        if nlist is None:
            nlist = max(
                1,
                min(
                    int(4 * math.sqrt(num_documents)),
                    len(training_vectors) // _MIN_TRAINING_POINTS_PER_CELL,
                ),
            )
        elif nlist > len(training_vectors):
            raise ConfigurationError(
                f"`nlist` ({nlist}) exceeds the {len(training_vectors)} sampled documents that "
                "train the index; lower `nlist` or raise `sample_size`"
            )
        self._queries = queries
        self._k = k
        dimension = queries.shape[1]
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
        """Returns scores and corpus positions of the `k` nearest documents per query (-1: none)."""
        return self._index.search(self._queries, self._k)


class SelectionResult(NamedTuple):
    """What `select_tapt_data` wrote."""

    path: str  # the JSON-lines corpus
    method: str  # "knn" or "random"
    documents: int  # documents written
    domain_documents: int  # documents in the domain corpus
    search: Optional[str]  # "exact" or "approximate" for kNN, None for random


def select_tapt_data(
    task_paths: PathSpec,
    domain_paths: PathSpec,
    output_path: str,
    k: int = 50,
    method: str = "knn",
    size: Optional[int] = None,
    text_key: str = "text",
    dimension: int = 128,
    chunk_size: int = 50000,
    approximate_above: int = 1000000,
    nlist: Optional[int] = None,
    nprobe: int = 128,
    sample_size: int = 100000,
    seed: int = 0,
) -> SelectionResult:
    """
    Selects domain documents for TAPT and writes them to `output_path` as JSON lines
    (`{"text": ...}`, one document per line, in corpus order, identical texts once). The file
    appears only when complete. Every argument is checked before any corpus is read.

    # Parameters

    task_paths : `PathSpec`
        The task's examples (e.g. its `train.jsonl`): txt or jsonl, optionally `.gz`; a path, glob,
        comma-separated list or list.
    domain_paths : `PathSpec`
        The domain corpus to select from, in the same formats.
    output_path : `str`
        Where to write the selection; must end in `.jsonl` or `.jsonl.gz` and differ from the
        inputs.
    k : `int`, optional (default = `50`)
        kNN: neighbours per task example (the paper used 50, 150 and 500). Random: with `size`
        unset, the sample has `k` x (number of task examples) documents, the size of a kNN
        selection before de-duplication.
    method : `str`, optional (default = `"knn"`)
        `"knn"` (kNN-TAPT) or `"random"` (RAND-TAPT).
    size : `int`, optional (default = `None`)
        Random only: number of documents to sample. To match a kNN selection, pass its
        `SelectionResult.documents`. Must not exceed the domain corpus.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in JSON-lines inputs.
    dimension : `int`, optional (default = `128`)
        Embedding size (LSA dimensions).
    chunk_size : `int`, optional (default = `50000`)
        Domain documents embedded and searched at a time; bounds memory.
    approximate_above : `int`, optional (default = `1000000`)
        Search is exact for domain corpora with at most this many documents and approximate
        (IVF) above. 0 always searches approximately.
    nlist : `int`, optional (default = `None`)
        Approximate search: number of IVF cells (`None`: 4 x sqrt(domain documents), at most one
        per 39 sampled documents).
    nprobe : `int`, optional (default = `128`)
        Approximate search: cells searched per task example.
    sample_size : `int`, optional (default = `100000`)
        kNN: domain documents sampled uniformly to count document frequencies and to train the
        approximate index; these texts are held in memory.
    seed : `int`, optional (default = `0`)
        Seed of the sampling and of the randomized SVD of the embedding; the same inputs and seed
        give the same output.
    """
    _check_arguments(
        k, method, size, dimension, chunk_size, approximate_above, nlist, nprobe, sample_size
    )
    task_files = expand_paths(task_paths)
    domain_files = expand_paths(domain_paths)
    _check_output_path(output_path, task_files + domain_files)
    if method == "knn":
        return _select_knn(
            task_files,
            domain_files,
            output_path,
            k,
            text_key,
            dimension,
            chunk_size,
            approximate_above,
            nlist,
            nprobe,
            sample_size,
            seed,
        )
    return _select_random(task_files, domain_files, output_path, k, size, text_key, seed)


def _check_arguments(
    k: int,
    method: str,
    size: Optional[int],
    dimension: int,
    chunk_size: int,
    approximate_above: int,
    nlist: Optional[int],
    nprobe: int,
    sample_size: int,
) -> None:
    if method not in METHODS:
        raise ConfigurationError(f"`method` must be one of {', '.join(METHODS)}; got {method!r}")
    if k <= 0:
        raise ConfigurationError(
            f"`k` must be a positive number of neighbours per task example "
            f"(the paper used 50, 150, 500); got {k}"
        )
    if size is not None:
        if method != "random":
            raise ConfigurationError(
                "`size` applies to the random method only; kNN selects `k` "
                "neighbours per task example"
            )
        if size <= 0:
            raise ConfigurationError(f"`size` must be a positive number of documents; got {size}")
    for name, value in (
        ("dimension", dimension),
        ("chunk_size", chunk_size),
        ("nprobe", nprobe),
        ("sample_size", sample_size),
    ):
        if value <= 0:
            raise ConfigurationError(f"`{name}` must be positive; got {value}")
    if approximate_above < 0:
        raise ConfigurationError(
            f"`approximate_above` must be 0 or more documents; got {approximate_above}"
        )
    if nlist is not None and nlist <= 0:
        raise ConfigurationError(f"`nlist` must be positive, or None for the default; got {nlist}")


def _check_output_path(output_path: str, input_files: List[str]) -> None:
    if not output_path.endswith(OUTPUT_SUFFIXES):
        raise ConfigurationError(
            f"the output {output_path!r} must end in .jsonl or .jsonl.gz: it "
            "is written as JSON lines with a 'text' field, and readers tell "
            "the format by the name"
        )
    output = os.path.realpath(output_path)
    for path in input_files:
        if os.path.realpath(path) == output:
            raise ConfigurationError(
                f"the output {output_path!r} is also an input; choose another output path"
            )


def _select_knn(
    task_files: List[str],
    domain_files: List[str],
    output_path: str,
    k: int,
    text_key: str,
    dimension: int,
    chunk_size: int,
    approximate_above: int,
    nlist: Optional[int],
    nprobe: int,
    sample_size: int,
    seed: int,
) -> SelectionResult:
    task = list(iter_documents(task_files, text_key))
    if not task:
        raise DataError(
            ", ".join(task_files), 0, "no task example (every line is blank); check the task path"
        )
    num_documents, sample = _count_and_sample(
        domain_files, text_key, "text", sample_size, seed, "counting and sampling the domain corpus"
    )
    if num_documents == 0:
        raise DataError(
            ", ".join(domain_files), 0, "the domain corpus has no document; check the domain path"
        )
    logger.info(
        "domain corpus: %d documents; %d sampled to fit the embedding", num_documents, len(sample)
    )
    embedder = LsaEmbedder(sample, dimension=dimension, seed=seed)
    queries = _embed_task(embedder, task)
    if k > num_documents:
        logger.warning(
            "k=%d exceeds the %d domain documents: every domain document with words "
            "will be selected",
            k,
            num_documents,
        )
    searcher: Union[ExactSearch, ApproximateSearch]
    if num_documents <= approximate_above:
        searcher = ExactSearch(queries, k)
    else:
        training, embedded = embedder.embed(sample)
        searcher = ApproximateSearch(queries, k, training[embedded], num_documents, nlist, nprobe)
    del sample
    logger.info(
        "%s search for the %d nearest of %d domain documents of each of %d task examples",
        searcher.name,
        k,
        num_documents,
        len(queries),
    )
    documents = _progress(
        iter_documents(domain_files, text_key), "embedding and searching", num_documents
    )
    seen = 0
    for chunk in chunked(documents, chunk_size):
        vectors, embedded = embedder.embed([document.text for document in chunk])
        seen += len(chunk)
        if embedded.any():
            ids = np.fromiter(
                (document.index for document in chunk), dtype=np.int64, count=len(chunk)
            )
            searcher.add(ids[embedded], np.ascontiguousarray(vectors[embedded]))
    _check_unchanged(domain_files, num_documents, seen)
    scores, neighbours = searcher.search()
    found = neighbours >= 0
    selected = np.zeros(num_documents, dtype=bool)
    selected[neighbours[found]] = True
    logger.info(
        "%d distinct documents among the %d neighbours found; mean cosine similarity "
        "to their task example %.3f",
        selected.sum(),
        found.sum(),
        float(scores[found].mean()) if found.any() else float("nan"),
    )
    written = _write_selected(domain_files, text_key, selected, output_path, num_documents)
    return SelectionResult(output_path, "knn", written, num_documents, searcher.name)


def _select_random(
    task_files: List[str],
    domain_files: List[str],
    output_path: str,
    k: int,
    size: Optional[int],
    text_key: str,
    seed: int,
) -> SelectionResult:
    if size is None:
        num_task = sum(1 for _ in iter_documents(task_files, text_key))
        if num_task == 0:
            raise DataError(
                ", ".join(task_files),
                0,
                "no task example (every line is blank) to "
                "set the sample size; check the task path or give `size`",
            )
        size = k * num_task
        logger.info(
            "random sample of k x task examples = %d x %d = %d documents", k, num_task, size
        )
    num_documents, sample = _count_and_sample(
        domain_files, text_key, "index", size, seed, "sampling the domain corpus"
    )
    if size > num_documents:
        raise ConfigurationError(
            f"cannot sample {size} documents from a domain corpus of "
            f"{num_documents} ({', '.join(domain_files)}); lower `size` (or "
            "`k`)"
        )
    selected = np.zeros(num_documents, dtype=bool)
    selected[np.asarray(sample, dtype=np.int64)] = True
    written = _write_selected(domain_files, text_key, selected, output_path, num_documents)
    return SelectionResult(output_path, "random", written, num_documents, None)


def _count_and_sample(
    domain_files: List[str],
    text_key: str,
    field: Literal["text", "index"],
    size: int,
    seed: int,
    description: str,
) -> Tuple[int, list]:
    """
    One pass over the domain corpus: its number of documents, and `size` of them drawn uniformly
    with `random.Random(seed)`, each kept as its `field` (`"text"`, or `"index"` to hold less).
    """
    documents = _progress(iter_documents(domain_files, text_key), description)
    return reservoir_sample(
        (getattr(document, field) for document in documents), size, random.Random(seed)
    )


def _embed_task(embedder: LsaEmbedder, task: List[Document]) -> np.ndarray:
    vectors, embedded = embedder.embed([document.text for document in task])
    if not embedded.all():
        first = task[int(np.argmin(embedded))]
        logger.warning(
            "%d task example(s) have no word outside the stop words and are skipped, "
            "the first at %s:%d",
            (~embedded).sum(),
            first.path,
            first.line_number,
        )
    if not embedded.any():
        raise DataError(
            first.path,
            0,
            "no task example has a word outside the English stop "
            "words; check the task path and `text_key`",
        )
    return np.ascontiguousarray(vectors[embedded])


def _write_selected(
    domain_files: List[str],
    text_key: str,
    selected: np.ndarray,
    output_path: str,
    num_documents: int,
) -> int:
    """Writes the documents whose position is `selected`, each distinct text once, atomically."""
    directory = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(directory, exist_ok=True)
    digests = set()
    seen = written = 0
    with atomic_path(output_path) as temporary:
        with (
            gzip.open(temporary, "wt", encoding="utf-8")
            if output_path.endswith(".gz")
            else open(temporary, "w", encoding="utf-8")
        ) as handle:
            for document in _progress(
                iter_documents(domain_files, text_key),
                "writing the selected documents",
                num_documents,
            ):
                seen += 1
                if document.index >= num_documents or not selected[document.index]:
                    continue
                digest = hashlib.blake2b(document.text.encode("utf-8"), digest_size=16).digest()
                if digest in digests:
                    continue
                digests.add(digest)
                handle.write(json.dumps({"text": document.text}, ensure_ascii=False) + "\n")
                written += 1
        _check_unchanged(domain_files, num_documents, seen)
    duplicates = int(selected.sum()) - written
    logger.info(
        "wrote %d documents to %s%s",
        written,
        output_path,
        f" ({duplicates} duplicate text(s) written once)" if duplicates else "",
    )
    return written


def _check_unchanged(domain_files: List[str], expected: int, seen: int) -> None:
    if seen != expected:
        raise DataError(
            ", ".join(domain_files),
            0,
            f"the domain corpus had {expected} documents "
            f"when first read and {seen} now; it changed during selection: run again "
            "on a corpus nobody is writing to",
        )


def _progress(items: Iterable[T], description: str, total: Optional[int] = None) -> Iterable[T]:
    return Tqdm.tqdm(items, desc=description, total=total, unit=" docs")
