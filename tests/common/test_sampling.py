import random
from collections import Counter

from dapt_plugin.common.sampling import distinct_sample, reservoir_sample


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


def test_a_distinct_sample_holds_each_text_once_and_is_seeded():
    items = [(f"text {i % 50}", i) for i in range(500)]  # 50 distinct texts, each ten times
    seen, sample, kept = distinct_sample(items, 20, seed=0, keep_texts=5)
    assert seen == 500 and len(sample) == 20
    assert len({value % 50 for _, value in sample}) == 20  # twenty distinct texts
    assert [key for key, _ in sample] == sorted(key for key, _ in sample)
    # the kept texts are those of the smallest keys, in the order of their values
    assert [value for value, _ in kept] == sorted(value for _, value in sample[:5])
    assert all(text == f"text {value % 50}" for value, text in kept)
    assert distinct_sample(items, 20, seed=0, keep_texts=5) == (seen, sample, kept)
    assert distinct_sample(items, 20, seed=1)[1] != sample
    assert len(distinct_sample(items, 100, seed=0)[1]) == 50  # all of them when fewer


def test_a_text_however_frequent_is_drawn_as_often_as_any_other():
    # text 0 occurs 20 times, the others once; 4,000 samples of 5 of 10 distinct texts: each is
    # drawn 2,000 times on average (sd ~32); 6 sd of slack
    items = [("text 0", 0)] * 20 + [(f"text {i}", i) for i in range(1, 10)]
    counts = Counter(
        value for seed in range(4000) for _, value in distinct_sample(items, 5, seed)[1]
    )
    assert all(abs(counts[value] - 2000) < 190 for value in range(10)), counts


def test_the_texts_kept_are_of_the_sample_even_when_more_are_asked_than_it_holds():
    items = [(f"text {i}", i) for i in range(200)]
    _, sample, kept = distinct_sample(items, 10, seed=3, keep_texts=50)
    assert sorted(value for value, _ in kept) == sorted(value for _, value in sample)
    assert all(text == f"text {value}" for value, text in kept)
