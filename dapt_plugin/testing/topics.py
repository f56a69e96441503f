"""
Synthetic topical text for testing and benchmarking data selection (no third-party text): every
topic has its own vocabulary of made-up words, and all topics share a common vocabulary, each
drawn with Zipfian frequencies as words in real text are. A document is written on one topic: a
`topic_share` fraction of its words comes from that topic's vocabulary, the rest from the shared
one. `topic_of` tells the topic of any generated text back from its words. `write_topic_mix` writes
the task and domain corpus of the selection tests; `write_sentence_mix` a domain whose documents
mix sentences of both topics.
"""

import json
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from dapt_plugin.testing.text import pseudo_words

_SYLLABLES = [
    "ba",
    "ko",
    "ri",
    "sen",
    "tu",
    "va",
    "mel",
    "do",
    "pi",
    "ran",
    "ze",
    "lo",
    "qua",
    "fi",
    "nor",
    "gu",
    "he",
    "ist",
    "ma",
    "cro",
    "ly",
    "pe",
    "san",
    "wo",
    "dri",
    "ex",
    "ul",
    "jo",
    "tem",
    "vi",
]


class TopicalTextGenerator:
    """
    Writes documents on numbered topics with disjoint topic vocabularies.

    # Parameters

    num_topics : `int`, optional (default = `2`)
        Number of topics.
    topic_vocabulary : `int`, optional (default = `200`)
        Words per topic.
    shared_vocabulary : `int`, optional (default = `2000`)
        Words common to all topics.
    topic_share : `float`, optional (default = `0.3`)
        Expected fraction of a document's words drawn from its topic's vocabulary.
    seed : `int`, optional (default = `0`)
        Seed of the vocabularies and of the documents.
    """

    def __init__(
        self,
        num_topics: int = 2,
        topic_vocabulary: int = 200,
        shared_vocabulary: int = 2000,
        topic_share: float = 0.3,
        seed: int = 0,
    ) -> None:
        self._rng = np.random.default_rng(seed)
        words = pseudo_words(
            num_topics * topic_vocabulary + shared_vocabulary,
            _SYLLABLES,
            self._rng,
            syllables_per_word=(2, 4),
        )
        self._topic_words = np.array(words[: num_topics * topic_vocabulary]).reshape(
            num_topics, topic_vocabulary
        )
        self._shared_words = np.array(words[num_topics * topic_vocabulary :])
        self._topic_of_word: Dict[str, int] = {
            word: topic for topic in range(num_topics) for word in self._topic_words[topic]
        }
        self._topic_share = topic_share
        self._topic_weights = _zipf(topic_vocabulary)
        self._shared_weights = _zipf(shared_vocabulary)

    def documents(
        self,
        topics: Sequence[int],
        min_length: int = 30,
        max_length: int = 60,
        lengths: Optional[Sequence[int]] = None,
    ) -> List[str]:
        """
        Returns one document per entry of `topics`, on that topic.

        # Parameters

        topics : `Sequence[int]`
            The topic of each document.
        min_length : `int`, optional (default = `30`)
            Fewest words in a document (when `lengths` is not given).
        max_length : `int`, optional (default = `60`)
            Most words in a document (when `lengths` is not given).
        lengths : `Sequence[int]`, optional (default = `None`)
            The number of words of each document; `None` draws each uniformly from
            `[min_length, max_length]`.
        """
        topics = np.asarray(topics)
        if lengths is None:
            lengths = self._rng.integers(min_length, max_length + 1, size=len(topics))
        elif len(lengths) != len(topics):
            raise ValueError(f"{len(lengths)} lengths for {len(topics)} documents")
        lengths = np.asarray(lengths, dtype=np.int64)
        word_topics = np.repeat(topics, lengths)
        from_topic = self._rng.random(len(word_topics)) < self._topic_share
        topic_ranks = self._rng.choice(
            len(self._topic_weights), size=len(word_topics), p=self._topic_weights
        )
        shared_ranks = self._rng.choice(
            len(self._shared_weights), size=len(word_topics), p=self._shared_weights
        )
        words = np.where(
            from_topic,
            self._topic_words[word_topics, topic_ranks],
            self._shared_words[shared_ranks],
        )
        ends = np.cumsum(lengths)
        return [
            " ".join(words[end - length : end])
            for end, length in zip(ends.tolist(), lengths.tolist())
        ]

    def topic_of(self, text: str) -> int:
        """The topic whose vocabulary has the most words in `text` (-1 if none)."""
        counts: Dict[int, int] = {}
        for word in text.split():
            topic = self._topic_of_word.get(word.strip(".!?").lower())
            if topic is not None:
                counts[topic] = counts.get(topic, 0) + 1
        return max(counts, key=counts.__getitem__) if counts else -1


def _zipf(size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1)
    return weights / weights.sum()


class TopicMix(NamedTuple):
    """A task on one topic and a domain corpus on two, as `write_topic_mix` writes them."""

    generator: TopicalTextGenerator
    task: Path  # 40 examples on topic 0 (`train.jsonl`)
    domain: Path  # `domain.txt`: 800 documents of topics 0 and 1 alternating, or 200 of both
    domain_texts: List[str]


def write_topic_mix(directory: Path, seed: int = 0) -> TopicMix:
    """Writes `train.jsonl` (40 labelled examples on topic 0) and `domain.txt` into `directory`."""
    generator = TopicalTextGenerator(num_topics=2, seed=seed)
    domain_texts = generator.documents(np.arange(800) % 2)
    return _write_mix(directory, generator, domain_texts)


def write_sentence_mix(directory: Path, seed: int = 0) -> TopicMix:
    """
    Writes `train.jsonl` (40 labelled examples on topic 0) and `domain.txt` into `directory`: 200
    documents of four sentences (capitalised, ending in "."), two on topic 0 and two on topic 1
    in random order, so that a document is on neither topic and a sentence on one.
    """
    generator = TopicalTextGenerator(num_topics=2, seed=seed)
    order = np.random.default_rng(seed).permuted(np.tile([0, 0, 1, 1], (200, 1)), axis=1)
    sentences = [
        text[0].upper() + text[1:] + "." for text in generator.documents(order.ravel(), 8, 16)
    ]
    domain_texts = [" ".join(sentences[start : start + 4]) for start in range(0, 800, 4)]
    return _write_mix(directory, generator, domain_texts)


def _write_mix(
    directory: Path, generator: "TopicalTextGenerator", domain_texts: List[str]
) -> TopicMix:
    """Writes the task (40 labelled examples on topic 0) and `domain_texts` into `directory`."""
    task = directory / "train.jsonl"
    task.write_text(
        "".join(
            json.dumps({"text": text, "label": "a"}) + "\n"
            for text in generator.documents([0] * 40, 10, 20)
        )
    )
    domain = directory / "domain.txt"
    domain.write_text("".join(text + "\n" for text in domain_texts))
    return TopicMix(generator, task, domain, domain_texts)


def on_topic(mix: TopicMix, texts: Sequence[str]) -> float:
    """The share of `texts` on the task's topic (0)."""
    return float(np.mean([mix.generator.topic_of(text) == 0 for text in texts]))
