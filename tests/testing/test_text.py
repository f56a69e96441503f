"""`pseudo_words`: the one generator of made-up words of the demo, the selection tests and the benchmarks."""

import random

import numpy as np

from dapt_plugin.testing.text import pseudo_words

SYLLABLES = ["ba", "ko", "ri", "sen"]


def test_words_are_distinct_reserved_first_and_of_the_asked_syllables():
    words = pseudo_words(
        40, SYLLABLES, np.random.default_rng(0), syllables_per_word=(2, 3), reserved=[".", "the"]
    )
    assert words[:2] == [".", "the"] and len(set(words)) == len(words) == 40
    assert all(4 <= len(word) <= 9 for word in words[2:])


def test_the_same_rng_state_gives_the_same_words_with_either_kind_of_rng():
    for make in (random.Random, np.random.default_rng):
        assert pseudo_words(20, SYLLABLES, make(1), (3, 3)) == pseudo_words(
            20, SYLLABLES, make(1), (3, 3)
        )
        assert pseudo_words(20, SYLLABLES, make(1), (3, 3)) != pseudo_words(
            20, SYLLABLES, make(2), (3, 3)
        )
