"""Uniform random samples of streams too large to hold in memory."""

import random
from typing import Iterable, List, Tuple, TypeVar

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
