import gzip
import json

import numpy as np
import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from dapt_plugin.data.token_cache import TokenCache
from tests.conftest import DATA, TASK


@pytest.fixture
def tokenizer_calls(monkeypatch):
    """Counts every batch the fast tokenizer encodes, whoever calls it."""
    calls = []
    original = PreTrainedTokenizerFast._batch_encode_plus

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerFast, "_batch_encode_plus", counting)
    return calls


def test_cached_ids_equal_the_tokenizer_output(tiny_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    entry = TokenCache(tokenizer, str(tmp_path), batch_size=7).load(str(DATA / "domain_heldout.txt"))
    lines = [line for line in (DATA / "domain_heldout.txt").read_text().splitlines() if line.strip()]
    assert entry.num_documents == len(lines)
    for index in (0, 6, 7, len(lines) - 1):
        assert entry.document(index).tolist() == tokenizer(lines[index])["input_ids"]


def test_jsonl_and_gzip_give_the_same_documents_as_text(tiny_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    lines = [json.loads(line)["text"] for line in (TASK / "train.jsonl").read_text().splitlines()]
    text = tmp_path / "train.txt"
    text.write_text("\n\n".join(lines) + "\n")  # blank lines between documents are skipped
    packed = tmp_path / "train.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write((TASK / "train.jsonl").read_text())
    cache = TokenCache(tokenizer, str(tmp_path / "cache"))
    from_jsonl = cache.load(str(TASK / "train.jsonl"))
    for other in (cache.load(str(text)), cache.load(str(packed))):
        assert np.array_equal(other.ids, from_jsonl.ids)
        assert np.array_equal(other.offsets, from_jsonl.offsets)


def test_second_load_and_later_runs_do_no_tokenization(tiny_model, tmp_path, tokenizer_calls):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    corpus = str(DATA / "domain.txt")
    first = TokenCache(tokenizer, str(tmp_path)).load(corpus)
    assert len(tokenizer_calls) > 0
    tokenizer_calls.clear()
    # a new cache object (a later epoch, or a later run in a new process) reads the same entry
    again = TokenCache(tokenizer, str(tmp_path)).load(corpus)
    assert tokenizer_calls == []
    assert again.directory == first.directory
    assert np.array_equal(again.ids, first.ids)


def test_editing_the_corpus_or_changing_the_tokenizer_invalidates_the_entry(tiny_model, tmp_path, tokenizer_calls):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the compound inhibits the receptor .\n")
    cache = TokenCache(tokenizer, str(tmp_path / "cache"))
    before = cache.load(str(corpus))
    corpus.write_text("the compound inhibits the receptor .\nand a second document .\n")
    tokenizer_calls.clear()
    after = cache.load(str(corpus))
    assert len(tokenizer_calls) > 0
    assert after.directory != before.directory
    assert (before.num_documents, after.num_documents) == (1, 2)
    other_tokenizer = AutoTokenizer.from_pretrained(str(tiny_model), do_lower_case=False)
    other_tokenizer.add_tokens(["receptor"])
    assert TokenCache(other_tokenizer, str(tmp_path / "cache")).key(str(corpus)) != cache.key(str(corpus))


def test_an_interrupted_build_leaves_no_entry(tiny_model, tmp_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "fine"}\n{"text": 3}\n')
    cache = TokenCache(tokenizer, str(tmp_path / "cache"), batch_size=1)
    with pytest.raises(ValueError, match=r"corpus.jsonl:2: 'text' is a int, not a string"):
        cache.load(str(corpus))
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_epochs_of_training_batches_and_a_new_run_do_no_tokenization(tiny_model, tokenizer_calls):
    from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
    from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

    def loader():
        reader = MaskedLmCorpusReader(str(tiny_model), max_length=32)
        return MaskedLmBatches(reader, str(TASK / "train.jsonl"), batch_size=8, shuffle=True, seed=1)

    first = loader()
    batches = list(first)  # first epoch: builds the cache if no earlier test did
    tokenizer_calls.clear()
    assert len(list(first)) == len(batches)  # second epoch
    assert len(list(loader())) == len(batches)  # a new reader and loader, as in a new run
    assert tokenizer_calls == []
