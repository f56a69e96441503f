import logging
import multiprocessing
from collections import Counter

import numpy as np
import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.data.data_loaders.masked_lm_batches import (
    EpochOrder,
    MaskedLmBatches,
    token_balanced_bounds,
)
from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from tests.conftest import DATA


def _loader(model, mode="packed", max_length=32, data_path=DATA / "domain.txt", **kwargs):
    reader = MaskedLmCorpusReader(str(model), mode=mode, max_length=max_length)
    return MaskedLmBatches(reader, str(data_path), **{"batch_size": 8, "seed": 3, **kwargs})


def _rows(batch):
    return [tuple(row.tolist()) for row in batch["input_ids"]]


def _example_rows(loader):
    """Each example of the corpus, as a batch row shows it once its padding is stripped."""
    return Counter(tuple(loader.corpus[i].tolist()) for i in range(len(loader.corpus)))


def _strip(row, pad_id):
    row = list(row)
    while row and row[-1] == pad_id:
        row.pop()
    return tuple(row)


def _uneven_lines(directory, num_lines=300, seed=0):
    """A corpus of `num_lines` lines of 2 to 60 words (skewed to short, as a task's sentences
    are), made of the words of the domain fixture."""
    words = (DATA / "domain.txt").read_text().split()
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(12), 0.7, num_lines).round(), 2, 60).astype(int)
    path = directory / "uneven.txt"
    path.write_text("".join(" ".join(rng.choice(words, n)) + "\n" for n in lengths))
    return str(path)


@pytest.mark.parametrize(
    "mode, grouped", [("packed", False), ("line_by_line", False), ("line_by_line", True)]
)
def test_every_example_appears_once_per_epoch_across_two_loader_workers(tiny_model, mode, grouped):
    kwargs = {"mode": mode, "shuffle": True, "group_by_length": grouped}
    loader = _loader(tiny_model, num_workers=2, **kwargs)
    pad = loader.reader.pad_token_id
    single = _loader(tiny_model, num_workers=0, **kwargs)
    expected = _example_rows(loader)
    epochs = []
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader)
        seen = Counter(_strip(row, pad) for batch in batches for row in _rows(batch))
        assert seen == expected
        epochs.append([row for batch in batches for row in _rows(batch)])
        # workers build whole batches and return them in order: same stream as without workers
        assert epochs[-1] == [row for batch in single for row in _rows(batch)]
    assert epochs[0] != epochs[1], "each pass is shuffled anew"


def _worker_rows(model, monkeypatch, rank, kwargs):
    """The rows that distributed worker `rank` of 2 reads (the real two-process run is
    tests/training_config/test_mlm_pipeline.py's two-worker DAPT)."""
    from dapt_plugin.data.data_loaders import masked_lm_batches

    monkeypatch.setattr(masked_lm_batches, "rank", lambda: rank)
    monkeypatch.setattr(masked_lm_batches, "world_size", lambda: 2)
    loader = _loader(model, **kwargs)
    return {"rows": [row for batch in loader for row in _rows(batch)], "length": len(loader)}


@pytest.mark.process  # data-loader workers started by `spawn`
def test_data_loader_workers_of_a_distributed_worker_build_its_own_part(tiny_model, monkeypatch):
    """
    A distributed worker's children are started by `spawn` (so its data-loader workers are),
    outside the process group, where `rank()` and `world_size()` read 0 of 1: each worker built
    the batches of worker 0 of 1, and both trained on the same examples.
    """
    from dapt_plugin.data.data_loaders import masked_lm_batches

    kwargs = {"shuffle": True, "batch_size": 5, "mode": "line_by_line"}
    monkeypatch.setattr(masked_lm_batches, "rank", lambda: 1)
    monkeypatch.setattr(masked_lm_batches, "world_size", lambda: 2)
    expected = [row for batch in _loader(tiny_model, **kwargs) for row in _rows(batch)]
    start_method = multiprocessing.get_start_method()
    multiprocessing.set_start_method("spawn", force=True)
    try:
        loader = _loader(tiny_model, num_workers=2, **kwargs)
        assert [row for batch in loader for row in _rows(batch)] == expected
    finally:
        multiprocessing.set_start_method(start_method, force=True)


@pytest.mark.parametrize(
    "mode, lines, grouped",
    [("packed", None, False), ("line_by_line", 21, False), ("line_by_line", 21, True)],
)
def test_distributed_workers_see_disjoint_parts_and_together_all(
    tiny_model, tmp_path, monkeypatch, mode, lines, grouped
):
    data_path = DATA / "domain.txt"
    if lines:  # 21 lines in global batches of 2 x 5: the last holds one example, for rank 0 only
        data_path = tmp_path / "odd.txt"
        data_path.write_text(
            "".join((DATA / "domain.txt").read_text().splitlines(keepends=True)[:lines])
        )
    kwargs = {"shuffle": True, "batch_size": 5, "mode": mode, "data_path": str(data_path)}
    if grouped:
        kwargs.update(group_by_length=True, length_group_size=2)
    ranks = [_worker_rows(tiny_model, monkeypatch, rank, kwargs) for rank in range(2)]
    monkeypatch.undo()
    single = _loader(tiny_model, **kwargs)
    pad = single.reader.pad_token_id
    assert ranks[0]["length"] == ranks[1]["length"], "equal batch counts keep the workers in step"
    seen = [Counter(_strip(row, pad) for row in rank["rows"]) for rank in ranks]
    special_row = tuple(single.reader.tokenizer.build_inputs_with_special_tokens([]))
    assert seen[1].pop(special_row, 0) == (1 if lines else 0), (
        "a worker with no example left steps on a row that is never masked"
    )
    assert not set(seen[0]) & set(seen[1])
    assert seen[0] + seen[1] == _example_rows(single)


@pytest.mark.parametrize("kwargs", [{}, {"mode": "line_by_line", "group_by_length": True}])
def test_batches_per_epoch_continues_across_epochs_and_passes(tiny_model, kwargs):
    whole = _loader(tiny_model, shuffle=True, **kwargs)
    stream = [row for _ in range(3) for batch in whole for row in _rows(batch)]  # three passes
    chunked = _loader(tiny_model, shuffle=True, batches_per_epoch=5, **kwargs)
    assert len(chunked) == 5
    rows = [row for _ in range(len(stream) // 40 + 1) for batch in chunked for row in _rows(batch)]
    assert rows[: len(stream)] == stream


def test_same_seed_same_order_and_padding_to_a_multiple_of_8(tiny_model):
    first = [
        _rows(b) for b in _loader(tiny_model, mode="line_by_line", max_length=60, shuffle=True)
    ]
    again = [
        _rows(b) for b in _loader(tiny_model, mode="line_by_line", max_length=60, shuffle=True)
    ]
    other = [
        _rows(b)
        for b in _loader(tiny_model, mode="line_by_line", max_length=60, shuffle=True, seed=4)
    ]
    assert first == again and first != other
    for batch in _loader(tiny_model, mode="line_by_line", max_length=60):
        width = batch["input_ids"].shape[1]
        assert width % 8 == 0 or width == 60


@pytest.mark.parametrize("num_examples, window", [(1003, 100), (300_007, 10_000), (50, 100)])
def test_epoch_order_is_a_permutation_with_bounded_windows(num_examples, window):
    order = EpochOrder(num_examples, shuffle=True, seed=1, epoch=0, window=window)
    taken = order.take(np.arange(num_examples))
    assert sorted(taken.tolist()) == list(range(num_examples))
    assert not np.array_equal(taken, np.arange(num_examples))
    again = EpochOrder(num_examples, True, 1, 1, window).take(np.arange(num_examples))
    assert not np.array_equal(taken, again)
    assert np.array_equal(EpochOrder(10, False, 1, 0, 100).take(np.arange(10)), np.arange(10))
    assert len(order._window(0)) <= window  # what is held at once
    assert len(EpochOrder(0, True, 1, 0, window).take(np.arange(0))) == 0


def test_every_window_of_a_corpus_larger_than_the_shuffle_window_mixes_all_of_it():
    """Windows were stretches of consecutive examples: hundreds of steps on one part of the
    corpus's files (at 15M examples and windows of 1M, ~500 steps of 2,048)."""
    order = EpochOrder(300_007, shuffle=True, seed=1, epoch=0, window=10_000)
    for position in range(0, 290_000, 10_000):
        batch = order.take(np.arange(position, position + 64))
        # 64 consecutive examples of the pass fall in most of the corpus's 30 stretches of 10,000
        assert len(set((batch // 10_000).tolist())) > 20


def _padding_share(loader):
    batches = list(loader)
    pad = loader.reader.pad_token_id
    return sum(int((b["input_ids"] == pad).sum()) for b in batches) / sum(
        b["input_ids"].numel() for b in batches
    )


def test_length_grouped_batches_are_equal_in_tokens_and_little_padded(tiny_model, tmp_path):
    kwargs = {
        "mode": "line_by_line",
        "max_length": 64,
        "data_path": _uneven_lines(tmp_path),
        "shuffle": True,
        "pad_to_multiple_of": 1,  # padding of the batches' lengths alone
    }

    def grouped_loader():
        return _loader(tiny_model, group_by_length=True, length_group_size=10, **kwargs)

    grouped, plain = grouped_loader(), _loader(tiny_model, **kwargs)
    assert len(grouped) == len(plain) == 38  # 300 lines in batches of 8: the same steps
    for group in range(3):  # each full group of 10 batches: equal tokens, within its longest line
        batches = [grouped.batch_indices(n) for n in range(group * 10, group * 10 + 10)]
        lengths = [[len(grouped.corpus[int(i)]) for i in batch] for batch in batches]
        tokens = [sum(batch) for batch in lengths]
        assert max(tokens) - min(tokens) <= max(max(batch) for batch in lengths)
    counts = [len(grouped.batch_indices(n)) for n in range(30)]
    assert min(counts) < 8 < max(counts), "short lines fill a batch with more examples"
    assert _padding_share(plain) > 0.4 and _padding_share(grouped) < _padding_share(plain) / 3
    loader = grouped_loader()
    first, second = [[_rows(batch) for batch in loader] for _ in range(2)]
    assert first == [_rows(batch) for batch in grouped_loader()] and first != second


def _pairs_batched_together_again(loader):
    """Of the pairs of examples that share a batch in the first pass, the share that share one in
    the second too."""
    pairs = []
    for first in (0, loader.batches_per_pass):
        pairs.append(set())
        for number in range(first, first + loader.batches_per_pass):
            batch = sorted(loader.batch_indices(number).tolist())
            pairs[-1] |= {(a, b) for i, a in enumerate(batch) for b in batch[i + 1 :]}
    return len(pairs[0] & pairs[1]) / len(pairs[0])


def test_a_text_of_one_length_group_is_batched_anew_in_every_pass(tiny_model, tmp_path):
    """All lines fit in one group: sorted by their exact lengths, each pass would put most of the
    same lines together again (all but lines of equal length); the noise in the sort mixes them."""
    kwargs = {"mode": "line_by_line", "data_path": _uneven_lines(tmp_path), "shuffle": True}
    noisy = _loader(tiny_model, group_by_length=True, **kwargs)
    exact = _loader(tiny_model, group_by_length=True, padding_noise=0, **kwargs)
    assert noisy.batches_per_pass < noisy.length_group_size
    assert _pairs_batched_together_again(noisy) < 0.7 * _pairs_batched_together_again(exact)
    assert (
        _padding_share(exact)
        < _padding_share(noisy)
        < _padding_share(_loader(tiny_model, **kwargs)) / 2
    )


@pytest.mark.parametrize("world", [2, 4])
def test_grouped_batches_give_every_distributed_worker_lines_of_equal_tokens(
    tiny_model, tmp_path, monkeypatch, world
):
    """One line per worker and step on average: a global batch of long lines is no fewer lines
    than workers (a worker without one would step on nothing)."""
    from dapt_plugin.data.data_loaders import masked_lm_batches

    worker = {"rank": 0}
    monkeypatch.setattr(masked_lm_batches, "rank", lambda: worker["rank"])
    monkeypatch.setattr(masked_lm_batches, "world_size", lambda: world)
    loader = _loader(
        tiny_model,
        mode="line_by_line",
        data_path=_uneven_lines(tmp_path),
        shuffle=True,
        batch_size=1,
        group_by_length=True,
        length_group_size=10,
    )
    parts = []  # parts[number][rank]: the lines of each worker in each global batch
    for number in range(loader.batches_per_pass):
        parts.append([])
        for worker["rank"] in range(world):
            parts[-1].append(loader.batch_indices(number).tolist())
    seen = [i for batch in parts for part in batch for i in part]
    assert sorted(seen) == list(range(len(loader.corpus)))
    special = loader.corpus.num_before + loader.corpus.num_after
    for batch in parts[: loader.batches_per_pass // 10 * 10]:  # the full groups
        assert all(batch), "every worker has a line"
        lengths = [[len(loader.corpus[i]) - special for i in part] for part in batch]
        tokens = [sum(part) for part in lengths]
        assert max(tokens) - min(tokens) <= max(max(part) for part in lengths)


def test_token_balanced_bounds_give_every_batch_an_example():
    lengths = np.array([1, 1, 1, 1, 2, 2, 3, 10, 10])
    bounds = token_balanced_bounds(lengths, 3)
    assert bounds.tolist() == [0, 7, 8, 9]  # 11, 10 and 10 tokens
    assert token_balanced_bounds(np.array([1, 1, 100]), 3).tolist() == [0, 1, 2, 3]
    assert token_balanced_bounds(np.full(6, 5), 3).tolist() == [0, 2, 4, 6]


def test_configuration_errors_name_the_key(tiny_model):
    reader = MaskedLmCorpusReader(str(tiny_model), max_length=32)
    packed = MaskedLmCorpusReader(str(tiny_model), mode="packed", max_length=32)
    with pytest.raises(ConfigurationError, match="set GROUP_BY_LENGTH=false .* or MLM_MODE="):
        MaskedLmBatches(packed, str(DATA / "domain.txt"), batch_size=8, group_by_length=True)
    with pytest.raises(ConfigurationError, match="`length_group_size` must be at least 1; got 0"):
        MaskedLmBatches(reader, str(DATA / "domain.txt"), batch_size=8, length_group_size=0)
    with pytest.raises(ConfigurationError, match=r"`padding_noise` must be in \[0, 1\); got 1"):
        MaskedLmBatches(reader, str(DATA / "domain.txt"), batch_size=8, padding_noise=1)
    with pytest.raises(ConfigurationError, match="`batch_size` must be at least 1; got 0"):
        MaskedLmBatches(reader, str(DATA / "domain.txt"), batch_size=0)
    with pytest.raises(ConfigurationError, match="`shuffle_window` must be at least 1; got 0"):
        MaskedLmBatches(reader, str(DATA / "domain.txt"), batch_size=8, shuffle_window=0)
    with pytest.raises(ConfigurationError, match="needs the `masked_lm_corpus` dataset reader"):
        MaskedLmBatches(object(), str(DATA / "domain.txt"), batch_size=8)


@pytest.mark.parametrize("grouped", [False, True])
def test_held_out_examples_are_never_trained_on_and_spread_over_the_corpus(tiny_model, grouped):
    training = _loader(
        tiny_model, mode="line_by_line", shuffle=True, hold_out="exclude", group_by_length=grouped
    )
    held_out = training.held_out_loader()
    trained = np.concatenate([training.batch_indices(n) for n in range(training.batches_per_pass)])
    kept = np.concatenate([held_out.batch_indices(n) for n in range(held_out.batches_per_pass)])
    assert len(training.corpus) == 400
    assert sorted(kept.tolist()) == list(range(99, 400, 100))  # 1%, evenly spread
    assert sorted(trained.tolist()) == sorted(set(range(400)) - set(kept.tolist()))
    assert training.num_examples == 396 and held_out.num_examples == 4


def test_windows_of_a_held_out_document_are_all_held_out(tiny_model):
    training = _loader(tiny_model, mode="document_windows", max_length=8, hold_out="exclude")
    corpus = training.corpus
    held_out = training.held_out_loader().held_out_examples
    assert len(corpus) > corpus.num_documents  # documents of several windows
    documents = set(range(99, corpus.num_documents, 100))
    assert held_out.tolist() == corpus.examples_of_documents(np.array(sorted(documents))).tolist()
    window_document = np.repeat(np.arange(corpus.num_documents), np.diff(corpus._window_starts[0]))
    assert set(window_document[held_out].tolist()) == documents
    trained = np.concatenate([training.batch_indices(n) for n in range(training.batches_per_pass)])
    assert not set(window_document[trained].tolist()) & documents
    assert len(trained) + len(held_out) == len(corpus)


@pytest.mark.parametrize("mode", ["line_by_line", "document_windows", "packed"])
def test_the_covered_share_leaves_out_the_held_out_documents(tiny_model, mode, caplog):
    whole = _loader(tiny_model, mode=mode, max_length=16)
    training = _loader(tiny_model, mode=mode, max_length=16, hold_out="exclude")
    with caplog.at_level(logging.INFO):
        training.index_with(None)
    # the log says the share one pass trains on, as metrics.json does, not the corpus's
    assert caplog.records[-1].getMessage() == (
        f"{training.data_path}: {len(training.held_out_examples)} examples held out to measure "
        f"the held-out loss; one pass trains on {100 * training.covered_share:.1f}% of its tokens"
    )
    corpus = training.corpus
    held_out = corpus.content_tokens(training.held_out_examples)
    assert 0 < held_out < 0.05 * corpus.num_content_tokens
    assert whole.covered_share == corpus.covered_share
    assert training.covered_share == pytest.approx(
        (corpus.num_covered_tokens - held_out) / corpus.num_content_tokens
    )
    assert training.covered_share + training.held_out_loader().covered_share == pytest.approx(
        corpus.covered_share
    )


def test_a_large_corpus_holds_out_at_most_max_held_out_examples(tiny_model):
    loader = _loader(tiny_model, mode="line_by_line", hold_out="only", max_held_out=3)
    indices = np.concatenate([loader.batch_indices(n) for n in range(loader.batches_per_pass)])
    assert indices.tolist() == [133, 267]  # every 134th of 400: at most 3
    packed = _loader(tiny_model, mode="packed", hold_out="only", hold_out_every=10)
    assert packed.held_out_examples.tolist() == list(range(9, len(packed.corpus), 10))
    with pytest.raises(ConfigurationError, match="`hold_out` must be"):
        _loader(tiny_model, hold_out="some")
