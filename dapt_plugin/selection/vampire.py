"""
An embedder close to the paper's VAMPIRE (Gururangan et al. 2019), the bag-of-words variational
autoencoder whose vectors the paper searched for kNN-TAPT, written here in plain torch and trained
in the selection run itself, on CPU:

- the vocabulary: the `vocabulary_size` (30K) most frequent words of the training texts, words as
  VAMPIRE's preprocessing sees them (lowercased, 3 to 30 letters, no digits), English stop words
  removed; a text is the vector of its word counts;
- the encoder: two softplus layers of `hidden_dim` over log(1 + counts), then the mean and log
  variance of a diagonal Gaussian over `dimension` latent variables;
- the decoder: theta = softmax(dropout(z)) for a reparameterised sample z, and the word
  distribution softmax(theta B + b), where b is the fixed background log-frequency of each word,
  so that the topics B model how a text departs from the corpus as a whole;
- the loss: the negative log-likelihood of the counts plus the KL divergence from the standard
  normal, its weight annealed linearly from 0 to 1 over the first half of training (VAMPIRE's
  linear KL annealing), with Adam;
- the embedding: the encoder's mean, L2-normalised (VAMPIRE's released scripts also mix in its
  hidden layers).

Differences from VAMPIRE: no early stopping on a development set (the word logits are batch
normalised, as VAMPIRE's are; a last batch of one text is left out of its epoch); a budget of
2,000 optimizer steps by default (minutes on CPU, whatever the sample size), and log counts
into the encoder. Seeded:
the same texts, settings and seed give the same vectors (on the same machine and thread count).
"""

import logging
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.tqdm import Tqdm
from sklearn.feature_extraction.text import CountVectorizer

logger = logging.getLogger(__name__)

_TOKEN_PATTERN = r"(?u)\b[^\d\W]{3,30}\b"  # VAMPIRE's preprocessing
_DEFAULT_STEPS = 2000
_MAX_EPOCHS = 50  # VAMPIRE's
_EMBED_ROWS = 1024  # texts embedded at once (see `VampireEmbedder.embed`)


class _BagOfWordsVae(torch.nn.Module):
    def __init__(
        self, background: torch.Tensor, hidden_dim: int, dimension: int, dropout: float
    ) -> None:
        super().__init__()
        vocabulary_size = len(background)
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(vocabulary_size, hidden_dim),
            torch.nn.Softplus(),
            torch.nn.Linear(hidden_dim, hidden_dim),
            torch.nn.Softplus(),
        )
        self.mean = torch.nn.Linear(hidden_dim, dimension)
        self.log_variance = torch.nn.Linear(hidden_dim, dimension)
        self.dropout = torch.nn.Dropout(dropout)
        self.decoder = torch.nn.Linear(dimension, vocabulary_size, bias=False)
        # batch normalisation of the word logits, as VAMPIRE (and ProdLDA) do: without it the
        # background frequencies explain the words and the latent variables go unused
        self.logit_norm = torch.nn.BatchNorm1d(vocabulary_size, affine=False)
        self.register_buffer("background", background)

    def encode(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(inputs)
        return self.mean(hidden), self.log_variance(hidden)

    def forward(
        self, inputs: torch.Tensor, counts: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean negative log-likelihood of `counts` and mean KL divergence of the batch."""
        mean, log_variance = self.encode(inputs)
        z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        theta = torch.softmax(self.dropout(z), dim=-1)
        log_probabilities = torch.log_softmax(
            self.logit_norm(self.decoder(theta) + self.background), dim=-1
        )
        nll = -(counts * log_probabilities).sum(-1)
        kl = 0.5 * (torch.exp(log_variance) + mean**2 - 1.0 - log_variance).sum(-1)
        return nll.mean(), kl.mean()


class VampireEmbedder:
    """
    Embeds texts with a bag-of-words variational autoencoder trained on `texts` when constructed
    (see the module docstring): the encoder's mean, unit length, float32.

    # Parameters

    texts : `Sequence[str]`
        Training texts: a uniform random sample of the units to be searched, plus the task
        examples. Memory: their count vectors (sparse) and the model,
        2 x `vocabulary_size` x (`hidden_dim` + `dimension`) x 4 bytes for weights and Adam state
        (about 50 MB at the defaults) besides its gradients.
    dimension : `int`, optional (default = `64`)
        Latent variables, the size of the embeddings.
    vocabulary_size : `int`, optional (default = `30000`)
        Words modelled: the most frequent of `texts` (VAMPIRE's preprocessing default is 30K).
    hidden_dim : `int`, optional (default = `64`)
        Width of the encoder's two layers.
    epochs : `int`, optional (default = `None`)
        Passes over `texts`. `None`: as many as make at least 2,000 optimizer steps, a budget
        that does not grow with the sample (on the benchmark's topical data, topics emerge
        between 500 and 1,500 steps), but at most 50 (VAMPIRE's limit; it stops earlier when
        its development loss stops falling).
    batch_size : `int`, optional (default = `128`)
        Texts per optimizer step.
    learning_rate : `float`, optional (default = `0.002`)
        Adam's learning rate.
    dropout : `float`, optional (default = `0.2`)
        Dropout on the latent sample before the softmax (VAMPIRE's `z_dropout`).
    seed : `int`, optional (default = `0`)
        Seed of the initialisation, the batch order, the samples and the dropout.
    """

    def __init__(
        self,
        texts: Sequence[str],
        dimension: int = 64,
        vocabulary_size: int = 30000,
        hidden_dim: int = 64,
        epochs: Optional[int] = None,
        batch_size: int = 128,
        learning_rate: float = 0.002,
        dropout: float = 0.2,
        seed: int = 0,
    ) -> None:
        for name, value in (
            ("dimension", dimension),
            ("vocabulary_size", vocabulary_size),
            ("hidden_dim", hidden_dim),
            ("epochs", 1 if epochs is None else epochs),
            ("batch_size", batch_size),
        ):
            if value <= 0:
                raise ConfigurationError(f"`{name}` must be positive; got {value}")
        if not 0 <= dropout < 1:
            raise ConfigurationError(f"`dropout` must be in [0, 1); got {dropout}")
        self._vectorizer = CountVectorizer(
            stop_words="english",
            token_pattern=_TOKEN_PATTERN,
            max_features=vocabulary_size,
            dtype=np.float32,
        )
        try:
            counts = self._vectorizer.fit_transform(texts).tocsr()
        except ValueError:  # no word at all
            counts = sp.csr_matrix((len(texts), 0), dtype=np.float32)
        counts = counts[counts.getnnz(axis=1) > 0]
        if counts.shape[0] < 2 or counts.shape[1] < 2:
            raise ConfigurationError(
                f"the {len(texts)} training text(s) have {counts.shape[1]} word(s) outside the "
                "English stop words: too little text to train the VAMPIRE embedder; give a larger "
                "domain corpus or use `embedder` 'lsa'"
            )
        self.dimension = dimension
        if epochs is None:
            batches = math.ceil(counts.shape[0] / batch_size)
            epochs = min(_MAX_EPOCHS, math.ceil(_DEFAULT_STEPS / batches))
        frequencies = np.asarray(counts.sum(axis=0)).ravel()
        background = torch.from_numpy(np.log(frequencies / frequencies.sum()).astype(np.float32))
        self.epoch_losses: List[float] = []  # mean negative ELBO (NLL + KL) per epoch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._model = _BagOfWordsVae(background, hidden_dim, dimension, dropout)
            self._train(counts, epochs, batch_size, learning_rate)
        self._model.eval()
        logger.info(
            "VAMPIRE embedding: %d dimensions over %d words, trained on %d texts for %d "
            "epochs; negative ELBO per epoch %s",
            dimension,
            counts.shape[1],
            counts.shape[0],
            epochs,
            ", ".join(f"{loss:.1f}" for loss in self.epoch_losses),
        )

    def _train(
        self, counts: sp.csr_matrix, epochs: int, batch_size: int, learning_rate: float
    ) -> None:
        model = self._model
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        batches_per_epoch = math.ceil(counts.shape[0] / batch_size)
        annealing_steps = max(1, epochs * batches_per_epoch // 2)
        step = 0
        model.train()
        progress = Tqdm.tqdm(
            total=epochs * batches_per_epoch, desc="training the VAMPIRE embedder", unit=" steps"
        )
        for _ in range(epochs):
            order = torch.randperm(counts.shape[0]).numpy()
            total = 0.0
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                if len(rows) == 1 and len(order) > 1:
                    continue  # batch normalisation has no statistics of one row: left out
                batch = torch.from_numpy(counts[rows].toarray())
                nll, kl = model(torch.log1p(batch), batch)
                loss = nll + min(1.0, step / annealing_steps) * kl
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += (nll + kl).item() * len(batch)
                step += 1
                progress.update(1)
            self.epoch_losses.append(total / counts.shape[0])
        progress.close()

    def embed(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """
        Returns the embeddings of `texts` (float32, `len(texts)` x `dimension`, unit length) and a
        boolean mask of the texts that have one (the others, without any word of the
        vocabulary, are rows of zeros).

        # Parameters

        texts : `Sequence[str]`
            The texts to embed.
        """
        counts = self._vectorizer.transform(texts).tocsr()
        embedded = counts.getnnz(axis=1) > 0
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        rows = np.flatnonzero(embedded)
        # dense counts of _EMBED_ROWS texts at a time: of a whole chunk (50,000 x a vocabulary of
        # 30,000 words) they took gigabytes
        for start in range(0, len(rows), _EMBED_ROWS):
            part = rows[start : start + _EMBED_ROWS]
            with torch.inference_mode():
                inputs = torch.log1p(torch.from_numpy(counts[part].toarray()))
                mean, _ = self._model.encode(inputs)
            vectors[part] = torch.nn.functional.normalize(mean, dim=-1).numpy()
        return vectors, embedded
