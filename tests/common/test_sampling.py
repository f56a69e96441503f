import random
from collections import Counter

from dapt_plugin.common.sampling import reservoir_sample


def test_a_sample_counts_every_item_and_keeps_all_of_a_short_stream():
    assert reservoir_sample(iter("abc"), 5, random.Random(0)) == (3, ["a", "b", "c"])
    seen, sample = reservoir_sample(range(1000), 10, random.Random(0))
    assert seen == 1000 and len(set(sample)) == 10
    assert reservoir_sample(range(1000), 10, random.Random(0)) == (
        seen,
        sample,
    )  # same seed, same sample


def test_every_item_is_drawn_with_the_same_probability():
    # 20,000 samples of 5 of 20 items: each is drawn 5,000 times on average (sd ~61); 6 sd of slack
    counts = Counter(
        item
        for seed in range(20000)
        for item in reservoir_sample(range(20), 5, random.Random(seed))[1]
    )
    assert all(abs(counts[item] - 5000) < 370 for item in range(20)), counts
