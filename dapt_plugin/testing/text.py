"""
Made-up text for the tests, the benchmarks and the demo (no third-party text): `pseudo_words`, the
one generator of made-up words behind the demo's compound names, the topical text of the
selection tests (`topics.py`) and the benchmarks' corpora; and writing text and JSON-lines files.
"""

import json
import random
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np


def pseudo_words(
    count: int,
    syllables: Sequence[str],
    rng: Union[random.Random, np.random.Generator],
    syllables_per_word: Tuple[int, int] = (1, 4),
    reserved: Iterable[str] = (),
) -> List[str]:
    """
    Returns `count` distinct made-up words: first the `reserved` ones, then words of
    `syllables_per_word` (the fewest and the most, drawn uniformly for each word; always that many
    when both are equal) syllables drawn uniformly from `syllables`, in the order they are drawn,
    each kept the first time it comes up. The same `rng` state gives the same words.

    # Parameters

    count : `int`
        Words returned, the reserved ones included.
    syllables : `Sequence[str]`
        What words are made of.
    rng : `random.Random` or `numpy.random.Generator`
        The source of randomness, advanced by the draws.
    syllables_per_word : `Tuple[int, int]`, optional (default = `(1, 4)`)
        The fewest and the most syllables of a word.
    reserved : `Iterable[str]`, optional (default = `()`)
        Words that come first and are never drawn again (e.g. punctuation and function words).
    """
    fewest, most = syllables_per_word
    words = list(reserved)
    seen = set(words)
    while len(words) < count:
        if isinstance(rng, random.Random):
            length = fewest if fewest == most else rng.randint(fewest, most)
            picks: Iterable[int] = [rng.randrange(len(syllables)) for _ in range(length)]
        else:
            length = fewest if fewest == most else int(rng.integers(fewest, most + 1))
            picks = rng.integers(len(syllables), size=length)
        word = "".join(syllables[i] for i in picks)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def write_lines(path: Union[str, Path], lines: Sequence[str]) -> None:
    """Writes `lines`, each ending with a newline, creating the directory if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_jsonl(path: Union[str, Path], rows: Sequence[Dict]) -> None:
    """Writes one JSON object per line."""
    write_lines(path, [json.dumps(row) for row in rows])
