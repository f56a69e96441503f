"""
The default embedder of kNN-TAPT: latent semantic analysis (LSA) of hashed TF-IDF bags of words.
`dapt_plugin/selection/tapt_selection.py` says why this embedding and how it is searched.
"""

import logging
from typing import Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from allennlp.common.checks import ConfigurationError
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

_NUM_BUCKETS = 2**20


class LsaEmbedder:
    """
    Embeds texts by latent semantic analysis of hashed TF-IDF bags of words: the projection onto
    the top singular vectors of a TF-IDF sample of the corpus (see the module docstring for each
    step and why), unit length, float32.

    # Parameters

    sample : `Sequence[str]`
        Texts (sentences or documents) on which document frequencies are counted and the
        projection is fitted: a uniform random sample of the units to be searched (all of them
        when few).
    dimension : `int`, optional (default = `128`)
        Size of the embeddings. Fewer dimensions keep broader topics; more keep finer distinctions
        and cost proportionally more search time and index memory. Lowered, with a warning, when
        the sample has fewer texts or words than that.
    max_words : `int`, optional (default = `131072`)
        The projection covers this many of the sample's most document-frequent hashed words (those
        in at least 2 sampled texts); the others are ignored. Memory: `max_words` x
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
                f"the sample of {len(sample)} text(s) has {len(kept)} word(s) in at least two "
                "texts outside the English stop words: too little text to embed; raise "
                "`sample_size`, or give a larger domain corpus"
            )
        if self.dimension < dimension:
            logger.warning(
                "embedding dimension lowered from %d to %d: the sample has only %d "
                "texts and %d words in two or more of them",
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
            "LSA embedding: %d dimensions over %d hashed words, fitted on %d texts "
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
