"""
Vocabulary overlap between corpora, the paper's measure of domain similarity (Gururangan et al.
2020, Figure 2): for each corpus, the `top_k` most frequent words (10K in the paper) excluding
English stop words; for each pair of corpora, the overlap of those word sets in percent. The
paper's released script (`scripts/vocab_overlap.py`) compares another set, which `min_df` gives:
every non-stop word found in at least `min_df` documents (its `CountVectorizer(min_df=3)`), with
no cut by frequency. Either is computed over a whole corpus or over a random sample of its
documents (`sample`, `seed`), as the paper's held-out samples of each domain were.

Words are what scikit-learn's `CountVectorizer` (the paper's tool) counts by default: the text
lowercased, tokens of two or more word characters (`(?u)\\b\\w\\w+\\b`), minus scikit-learn's
`ENGLISH_STOP_WORDS` (318 words, no download). Frequency ties at the cut-off are broken
alphabetically, so the sets do not depend on the order of the corpus.

The overlap of sets A and B is |A ∩ B| / |A ∪ B| × 100 (Jaccard), as in the paper's released
script: symmetric, 100 for a corpus with itself, 0 for disjoint vocabularies, and meaningful when
a small corpus has fewer than `top_k` distinct words. The number of shared words |A ∩ B| is
reported next to it, for readers who prefer |A ∩ B| / `top_k`.

Corpora are streamed: memory grows with the number of distinct words, not with the corpus.
"""

import itertools
import json
import logging
import os
import random
import re
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from allennlp.common.checks import ConfigurationError
from allennlp.common.tqdm import Tqdm
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from dapt_plugin.common.atomic import (
    atomic_file,
    atomic_path,
    check_not_an_input,
    check_writable_path,
)
from dapt_plugin.common.optional_dependencies import optional_dependency
from dapt_plugin.common.sampling import reservoir_sample
from dapt_plugin.data.documents import iter_documents
from dapt_plugin.data.text_files import DataError, PathSpec, expand_paths

with optional_dependency("the vocabulary-overlap heatmap", "matplotlib"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

WORD_PATTERN = re.compile(r"(?u)\b\w\w+\b")
JSON_NAME = "vocab_overlap.json"
PNG_NAME = "vocab_overlap.png"


class CorpusVocabulary(NamedTuple):
    """The words of one corpus that are compared, and the counts behind them."""

    name: str
    paths: List[str]
    documents: int  # documents counted (the sample's, when sampled)
    words: int  # running words that are not stop words
    distinct_words: int  # distinct words that are not stop words
    top_words: List[str]  # the words compared, most frequent first (ties alphabetical)


def corpus_vocabulary(
    name: str,
    paths: PathSpec,
    top_k: Optional[int] = 10000,
    max_documents: Optional[int] = None,
    text_key: str = "text",
    sample: Optional[int] = None,
    seed: int = 0,
    min_df: Optional[int] = None,
) -> CorpusVocabulary:
    """
    Counts the words of one corpus and keeps the non-stop words that are compared: its `top_k`
    most frequent, or, with `min_df`, every one found in at least `min_df` documents.

    # Parameters

    name : `str`
        Name of the corpus in the outputs.
    paths : `PathSpec`
        Its files (txt or jsonl, optionally `.gz`; a path, glob, comma-separated list or list).
    top_k : `int`, optional (default = `10000`)
        Size of the vocabulary compared (the paper's 10K); `None` with `min_df`.
    max_documents : `int`, optional (default = `None`)
        Reads only the first this many documents (lines); `None` reads all.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in JSON-lines files.
    sample : `int`, optional (default = `None`)
        Counts a uniform random sample of this many documents of the whole corpus (all of them
        when it has fewer), drawn in one pass with `seed`; the sample's texts are held in memory.
        Not with `max_documents`.
    seed : `int`, optional (default = `0`)
        Seed of `sample`: the same corpus and seed give the same sample.
    min_df : `int`, optional (default = `None`)
        Compares every non-stop word found in at least this many documents, with no `top_k` cut:
        the released script's vocabulary (`CountVectorizer(min_df=3, stop_words="english")`).
    """
    _check_vocabulary_options(top_k, min_df, max_documents, sample)
    files = expand_paths(paths)
    texts = (
        document.text
        for document in Tqdm.tqdm(iter_documents(files, text_key), desc=f"counting words of {name}")
    )
    if max_documents is not None:
        texts = itertools.islice(texts, max_documents)
    if sample is not None:
        total, sampled = reservoir_sample(texts, sample, random.Random(seed))
        logger.info("%s: a random sample of %d of its %d documents", name, len(sampled), total)
        texts = iter(sampled)
    counts: Counter = Counter()
    document_counts: Counter = Counter()
    documents = 0
    for text in texts:
        words = WORD_PATTERN.findall(text.lower())
        counts.update(words)
        document_counts.update(set(words))
        documents += 1
    for stop_word in ENGLISH_STOP_WORDS:
        counts.pop(stop_word, None)
    if not counts:
        raise DataError(
            ", ".join(files),
            0,
            f"corpus {name!r} has no words outside the English "
            f"stop words in {documents} document(s); is it the right file?",
        )
    by_frequency = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if min_df is None:
        compared = [word for word, _ in by_frequency[:top_k]]
        kept = f"kept the {len(compared)} most frequent"
    else:
        compared = [word for word, _ in by_frequency if document_counts[word] >= min_df]
        kept = f"kept the {len(compared)} found in at least {min_df} documents"
        if not compared:
            most = max(document_counts[word] for word in counts)
            raise ConfigurationError(
                f"corpus {name!r}: no word outside the English stop words is in {min_df} of its "
                f"{documents} document(s) (at most {most}); lower `min_df` to {most} "
                "or less, or give it more documents"
            )
    logger.info(
        "%s: %d documents, %d words, %d distinct; %s",
        name,
        documents,
        sum(counts.values()),
        len(counts),
        kept,
    )
    return CorpusVocabulary(name, files, documents, sum(counts.values()), len(counts), compared)


def _check_vocabulary_options(
    top_k: Optional[int], min_df: Optional[int], max_documents: Optional[int], sample: Optional[int]
) -> None:
    if (top_k is None) == (min_df is None):
        raise ConfigurationError(
            "give one of `top_k` (the most frequent words) and `min_df` (every word in at least "
            f"that many documents); got top_k={top_k}, min_df={min_df}"
        )
    for key, value in (("top_k", top_k), ("min_df", min_df), ("sample", sample)):
        if value is not None and value <= 0:
            raise ConfigurationError(f"`{key}` must be a positive number; got {value}")
    if max_documents is not None and max_documents <= 0:
        raise ConfigurationError(
            f"`max_documents` must be positive, or unset to read every document; got {max_documents}"
        )
    if max_documents is not None and sample is not None:
        raise ConfigurationError(
            "give one of `max_documents` (the first documents) and `sample` (a random sample of "
            "all of them), not both"
        )


def overlap_matrices(
    vocabularies: Sequence[CorpusVocabulary],
) -> Tuple[List[List[float]], List[List[int]]]:
    """
    Returns, for every ordered pair of corpora, the overlap in percent (|A ∩ B| / |A ∪ B| × 100)
    and the number of shared words |A ∩ B|, as two square matrices in the order given.

    # Parameters

    vocabularies : `Sequence[CorpusVocabulary]`
        The corpora to compare.
    """
    sets = [set(vocabulary.top_words) for vocabulary in vocabularies]
    percent = [[100.0 * len(a & b) / len(a | b) for b in sets] for a in sets]
    shared = [[len(a & b) for b in sets] for a in sets]
    return percent, shared


def plot_overlap(
    names: Sequence[str], percent: Sequence[Sequence[float]], path: str, compared: str
) -> None:
    """
    Draws the overlap matrix as an annotated heatmap and saves it as a PNG.

    # Parameters

    names : `Sequence[str]`
        Corpus names, the labels of both axes.
    percent : `Sequence[Sequence[float]]`
        The overlap matrix from `overlap_matrices`.
    path : `str`
        Where to write the PNG.
    compared : `str`
        The words compared, for the title (`_compared_words`).
    """
    size = len(names)
    longest = max(len(name) for name in names)
    side = 1.5 + 0.9 * size + 0.08 * longest
    figure = Figure(figsize=(side + 1.2, side), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    axes.set_xticks(range(size), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(size), labels=names)
    for row in range(size):
        for column in range(size):
            value = percent[row][column]
            axes.text(
                column,
                row,
                f"{value:.1f}",
                ha="center",
                va="center",
                color="white" if value > 60 else "black",
            )
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="vocabulary overlap (%)")
    axes.set_title(f"Overlap of {compared}\n(stop words excluded)")
    figure.tight_layout()
    figure.savefig(path, format="png")


def _compared_words(top_k: Optional[int], min_df: Optional[int]) -> str:
    if min_df is None:
        return f"the top {top_k} words"
    return f"the words in at least {min_df} documents"


def vocab_overlap(
    corpora: Dict[str, PathSpec],
    output_dir: str,
    top_k: Optional[int] = 10000,
    max_documents: Optional[int] = None,
    text_key: str = "text",
    sample: Optional[int] = None,
    seed: int = 0,
    min_df: Optional[int] = None,
) -> Tuple[str, str]:
    """
    Compares the vocabularies of named corpora and writes `vocab_overlap.json` (sizes, the words
    compared, overlap and shared-word matrices) and `vocab_overlap.png` (the heatmap) into
    `output_dir`. Returns the two paths. Every input path and option is checked before any corpus
    is read, and the outputs appear only once both are complete.

    # Parameters

    corpora : `Dict[str, PathSpec]`
        Corpus name -> its files, in the order of the matrix rows (at least one corpus).
    output_dir : `str`
        Directory for the outputs; created if missing.
    top_k : `int`, optional (default = `10000`)
        Number of most frequent words compared per corpus (the paper's 10K); `None` with `min_df`.
    max_documents : `int`, optional (default = `None`)
        Reads only the first this many documents of each corpus; `None` reads all of them.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in JSON-lines files.
    sample : `int`, optional (default = `None`)
        Counts a random sample of this many documents of each corpus (see `corpus_vocabulary`).
    seed : `int`, optional (default = `0`)
        Seed of `sample`.
    min_df : `int`, optional (default = `None`)
        Compares every word found in at least this many documents instead of the `top_k` (the
        paper's released script: 3).
    """
    if not corpora:
        raise ConfigurationError("give at least one corpus as NAME=PATH")
    _check_vocabulary_options(top_k, min_df, max_documents, sample)
    check_writable_path(output_dir, "directory")
    inputs = []
    for name, paths in corpora.items():
        if not name.strip():
            raise ConfigurationError(f"corpus {paths!r} has an empty name; give it as NAME=PATH")
        inputs += [(f"a file of corpus {name}", path) for path in expand_paths(paths)]
    for output in (JSON_NAME, PNG_NAME):  # what it writes in `output_dir`
        check_not_an_input(os.path.join(output_dir, output), "the output", inputs)
    vocabularies = [
        corpus_vocabulary(name, paths, top_k, max_documents, text_key, sample, seed, min_df)
        for name, paths in corpora.items()
    ]
    percent, shared = overlap_matrices(vocabularies)
    names = [vocabulary.name for vocabulary in vocabularies]
    compared = _compared_words(top_k, min_df)
    result = {
        "top_k": top_k,
        "min_df": min_df,
        "max_documents": max_documents,
        "sample": sample,
        "seed": seed if sample is not None else None,
        "measure": "overlap_percent[i][j] = |top_i ∩ top_j| / |top_i ∪ top_j| * 100, where top_i "
        f"is the set of {compared} of corpus i, English stop words excluded",
        "names": names,
        "overlap_percent": percent,
        "shared_words": shared,
        "corpora": [
            {
                "name": vocabulary.name,
                "paths": vocabulary.paths,
                "documents": vocabulary.documents,
                "words": vocabulary.words,
                "distinct_words": vocabulary.distinct_words,
                "top_words": vocabulary.top_words,
            }
            for vocabulary in vocabularies
        ],
    }
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, JSON_NAME)
    png_path = os.path.join(output_dir, PNG_NAME)
    # both are written completely before either takes its name, the JSON (flushed to disk) first:
    # a failure while writing either leaves neither, nor a temporary file
    with atomic_path(png_path) as png_temporary, atomic_file(json_path) as handle:
        plot_overlap(names, percent, png_temporary, compared)
        json.dump(result, handle, indent=2, ensure_ascii=False)
    logger.info("vocabulary overlap written to %s and %s", json_path, png_path)
    return json_path, png_path
