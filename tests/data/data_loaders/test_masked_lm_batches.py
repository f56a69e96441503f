from collections import Counter

import numpy as np
import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.data.data_loaders.masked_lm_batches import EpochOrder, MaskedLmBatches
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


@pytest.mark.parametrize("mode", ["packed", "line_by_line"])
def test_every_example_appears_once_per_epoch_across_two_loader_workers(tiny_model, mode):
    loader = _loader(tiny_model, mode=mode, shuffle=True, num_workers=2)
    pad = loader.reader.pad_token_id
    single = _loader(tiny_model, mode=mode, shuffle=True, num_workers=0)
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


@pytest.mark.parametrize("mode, lines", [("packed", None), ("line_by_line", 21)])
def test_distributed_workers_see_disjoint_parts_and_together_all(
    tiny_model, tmp_path, monkeypatch, mode, lines
):
    data_path = DATA / "domain.txt"
    if lines:  # 21 lines in global batches of 2 x 5: the last holds one example, for rank 0 only
        data_path = tmp_path / "odd.txt"
        data_path.write_text(
            "".join((DATA / "domain.txt").read_text().splitlines(keepends=True)[:lines])
        )
    kwargs = {"shuffle": True, "batch_size": 5, "mode": mode, "data_path": str(data_path)}
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


def test_batches_per_epoch_continues_across_epochs_and_passes(tiny_model):
    whole = _loader(tiny_model, shuffle=True)
    stream = [row for _ in range(3) for batch in whole for row in _rows(batch)]  # three passes
    chunked = _loader(tiny_model, shuffle=True, batches_per_epoch=5)
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


def test_epoch_order_is_a_permutation_with_bounded_windows():
    order = EpochOrder(1003, shuffle=True, seed=1, epoch=0, window=100)
    taken = order.take(np.arange(1003))
    assert sorted(taken.tolist()) == list(range(1003))
    assert not np.array_equal(taken, np.arange(1003))
    assert not np.array_equal(taken, EpochOrder(1003, True, 1, 1, 100).take(np.arange(1003)))
    assert np.array_equal(EpochOrder(10, False, 1, 0, 100).take(np.arange(10)), np.arange(10))


def test_configuration_errors_name_the_key(tiny_model):
    reader = MaskedLmCorpusReader(str(tiny_model), max_length=32)
    with pytest.raises(ConfigurationError, match="`batch_size` must be at least 1; got 0"):
        MaskedLmBatches(reader, str(DATA / "domain.txt"), batch_size=0)
    with pytest.raises(ConfigurationError, match="needs the `masked_lm_corpus` dataset reader"):
        MaskedLmBatches(object(), str(DATA / "domain.txt"), batch_size=8)


def test_held_out_examples_are_never_trained_on_and_spread_over_the_corpus(tiny_model):
    training = _loader(tiny_model, mode="line_by_line", shuffle=True, hold_out="exclude")
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


def test_a_large_corpus_holds_out_at_most_max_held_out_examples(tiny_model):
    loader = _loader(tiny_model, mode="line_by_line", hold_out="only", max_held_out=3)
    indices = np.concatenate([loader.batch_indices(n) for n in range(loader.batches_per_pass)])
    assert indices.tolist() == [133, 267]  # every 134th of 400: at most 3
    packed = _loader(tiny_model, mode="packed", hold_out="only", hold_out_every=10)
    assert packed.held_out_examples.tolist() == list(range(9, len(packed.corpus), 10))
    with pytest.raises(ConfigurationError, match="`hold_out` must be"):
        _loader(tiny_model, hold_out="some")
