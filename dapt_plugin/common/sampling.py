"""Uniform random samples of streams too large to hold in memory."""

import hashlib
import heapq
import random
from typing import Iterable, List, Set, Tuple, TypeVar

T = TypeVar("T")


def reservoir_sample(items: Iterable[T], size: int, rng: random.Random) -> Tuple[int, List[T]]:
    """
    Algorithm R in one pass: returns the number of `items` and a uniform random sample of `size`
    of them (all of them when there are fewer), in no particular order. Each item ends up in the
    sample with probability `size / total`, and only `size` items are held in memory. The same
    items and `rng` state give the same sample.
    """
    reservoir: List[T] = []
    seen = 0
    for item in items:
        seen += 1
        if len(reservoir) < size:
            reservoir.append(item)
        else:
            slot = rng.randrange(seen)
            if slot < size:
                reservoir[slot] = item
    return seen, reservoir


def distinct_sample(
    items: Iterable[Tuple[str, T]], size: int, seed: int, keep_texts: int = 0
) -> Tuple[int, List[Tuple[int, T]], List[Tuple[T, str]]]:
    """
    A uniform random sample of `size` distinct texts of a stream, in one pass: each text gets a
    seeded pseudo-random key (its 64-bit keyed BLAKE2b hash), and the `size` texts with the
    smallest keys are kept (a bottom-k sample). Identical texts have identical keys, so each
    distinct text is drawn at most once and with the same probability however often it occurs;
    the same items and seed give the same sample. The `keep_texts` smallest keys, a uniform
    sample of the sample (the whole sample when `keep_texts` is `size` or more), also keep their
    texts.

    Returns the number of items seen, the `(key, value)` pairs of the sample sorted by key, and
    the `(value, text)` pairs of the `keep_texts` smallest keys sorted by value. Memory: about
    300 bytes per sampled item at its peak (measured with 200K), plus the kept texts.

    # Parameters

    items : `Iterable[Tuple[str, T]]`
        `(text, value)` pairs, e.g. a text and its position in a corpus.
    size : `int`
        Distinct texts to draw (all of them when there are fewer).
    seed : `int`
        Seed of the keys.
    keep_texts : `int`, optional (default = `0`)
        How many of the drawn texts (those of the smallest keys) to return with their text.
    """
    keep_texts = min(keep_texts, size)  # texts of the sample only, never of one it dropped
    salt = seed.to_bytes(8, "little", signed=True)
    sample: List[Tuple[int, T]] = []  # max-heap of (-key, value)
    kept: List[Tuple[int, T, str]] = []  # max-heap of (-key, value, text)
    members: Set[int] = set()
    seen = 0
    for text, value in items:
        seen += 1
        key = int.from_bytes(
            hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=salt).digest(), "little"
        )
        if key in members or (len(sample) == size and key > -sample[0][0]):
            continue
        members.add(key)
        if len(sample) < size:
            heapq.heappush(sample, (-key, value))
        else:
            members.discard(-heapq.heappushpop(sample, (-key, value))[0])
        if len(kept) < keep_texts:
            heapq.heappush(kept, (-key, value, text))
        elif keep_texts and key < -kept[0][0]:
            heapq.heappushpop(kept, (-key, value, text))
    by_key = sorted((-negative, value) for negative, value in sample)
    texts = sorted(((value, text) for _, value, text in kept), key=lambda pair: pair[0])
    return seen, by_key, texts
