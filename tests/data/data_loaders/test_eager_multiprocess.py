import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import DataLoader, DatasetReader, Vocabulary

from tests.conftest import TASK, read_jsonl


def _loader(**params) -> DataLoader:
    return DataLoader.from_params(
        Params({"type": "eager_multiprocess", **params}),
        reader=DatasetReader.from_params(
            Params(
                {
                    "type": "text_classification_json_with_sampling",
                    "tokenizer": {"type": "whitespace"},
                }
            )
        ),
        data_path=str(TASK / "test.jsonl"),
    )


def _texts(loader: DataLoader):
    vocab = Vocabulary.from_instances(loader.iter_instances())
    loader.index_with(vocab)
    return [
        [" ".join(vocab.get_token_from_index(int(i)) for i in row[row > 0]) for row in ids]
        for ids in (batch["tokens"]["tokens"]["tokens"] for batch in loader)
    ]


@pytest.mark.parametrize("batch_size", [16, 7])  # 7: as `allennlp evaluate --batch-size 7` sets it
def test_sort_by_length_cuts_batches_from_the_texts_sorted_longest_first(batch_size):
    loader = _loader(batch_size=batch_size, sort_by_length=True)
    batches = _texts(loader)
    texts = [row["text"] for row in read_jsonl(TASK / "test.jsonl")]
    assert [len(batch) for batch in batches] == [
        min(batch_size, len(texts) - start) for start in range(0, len(texts), batch_size)
    ]
    assert len(loader) == len(batches)
    flat = [text for batch in batches for text in batch]
    # every text once, longest first; texts of one length in the file's order
    assert flat == sorted(texts, key=lambda text: -len(text.split()))
    assert _texts(loader) == batches  # every pass the same


def test_without_sort_by_length_batches_keep_the_files_order():
    flat = [text for batch in _texts(_loader(batch_size=16)) for text in batch]
    assert flat == [row["text"] for row in read_jsonl(TASK / "test.jsonl")]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"batch_size": 16, "shuffle": True}, "remove `shuffle` or set `sort_by_length: false`"),
        (
            {"batch_size": 16, "drop_last": True},
            "remove `drop_last` or set `sort_by_length: false`",
        ),
        (
            {"batch_sampler": {"type": "seeded_shuffle", "batch_size": 16}},
            "remove `batch_sampler` or set `sort_by_length: false`",
        ),
        ({}, "`sort_by_length` needs `batch_size`"),
    ],
)
def test_sort_by_length_with_a_setting_it_excludes_is_a_configuration_error(params, message):
    with pytest.raises(ConfigurationError, match=message):
        _loader(sort_by_length=True, **params)
