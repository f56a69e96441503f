import gzip
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from allennlp.common.checks import ConfigurationError
from filelock import FileLock
from transformers import AutoTokenizer, BertConfig, PreTrainedTokenizerFast

from dapt_plugin.data import token_cache
from dapt_plugin.data.text_files import DataError
from dapt_plugin.data.token_cache import TokenCache
from tests.conftest import DATA, SMALL, TASK, tiny_encoder


@pytest.fixture
def tokenizer_calls(monkeypatch):
    """Records the size of every batch of texts the fast tokenizer encodes, whoever calls it."""
    calls = []
    original = PreTrainedTokenizerFast._batch_encode_plus

    def counting(self, batch_text_or_text_pairs, *args, **kwargs):
        calls.append(len(batch_text_or_text_pairs))
        return original(self, batch_text_or_text_pairs, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerFast, "_batch_encode_plus", counting)
    return calls


def test_cached_ids_equal_the_tokenizer_output(tiny_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    entry = TokenCache(tokenizer, str(tmp_path), batch_size=7).load(
        str(DATA / "domain_heldout.txt")
    )
    lines = [
        line for line in (DATA / "domain_heldout.txt").read_text().splitlines() if line.strip()
    ]
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


def test_editing_the_corpus_or_changing_the_tokenizer_invalidates_the_entry(
    tiny_model, tmp_path, tokenizer_calls
):
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
    assert TokenCache(other_tokenizer, str(tmp_path / "cache")).key(str(corpus)) != cache.key(
        str(corpus)
    )


def test_an_interrupted_build_leaves_no_entry(tiny_model, tmp_path, monkeypatch):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "fine"}\n{"text": 3}\n')
    cache = TokenCache(tokenizer, str(tmp_path / "cache"), batch_size=1)
    with pytest.raises(ValueError, match=r"corpus.jsonl:2: 'text' is an integer, not a string"):
        cache.load(str(corpus))
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_epochs_of_training_batches_and_a_new_run_do_no_tokenization(tiny_model, tokenizer_calls):
    from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
    from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

    def loader():
        reader = MaskedLmCorpusReader(str(tiny_model), max_length=32)
        return MaskedLmBatches(
            reader, str(TASK / "train.jsonl"), batch_size=8, shuffle=True, seed=1
        )

    first = loader()
    batches = list(first)  # first epoch: builds the cache if no earlier test did
    tokenizer_calls.clear()
    assert len(list(first)) == len(batches)  # second epoch
    assert len(list(loader())) == len(batches)  # a new reader and loader, as in a new run
    # only the new reader's one-word probe of the tokenizer's special tokens; no corpus text
    assert tokenizer_calls == [1]


# Damaged entries and leftovers


def _truncate(path, size):
    with open(path, "r+b") as handle:
        handle.truncate(size)


def _overwrite(path, position, values):
    with open(path, "r+b") as handle:
        handle.seek(position * 8)
        handle.write(np.asarray(values, dtype=np.int64).tobytes())


def _write_over(path):
    with open(path, "r+b") as handle:
        handle.write(b"\x07\x00" * (os.path.getsize(path) // 2))


def test_an_entry_whose_files_have_new_times_but_their_content_is_used_as_it_is(
    tiny_model, tmp_path, caplog, tokenizer_calls
):
    """A cache copied without its files' times: checked by content, and used."""
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    cache = TokenCache(tokenizer, str(tmp_path / "cache"))
    entry = cache.load(str(DATA / "domain_heldout.txt"))
    for name in ("ids.bin", "offsets.bin"):
        os.utime(os.path.join(entry.directory, name), ns=(10**18, 10**18))
    calls = len(tokenizer_calls)
    with caplog.at_level(logging.WARNING):
        again = cache.load(str(DATA / "domain_heldout.txt"))
    assert np.array_equal(again.ids, entry.ids) and len(tokenizer_calls) == calls
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    # checked once: its new times are recorded, and the next open reads no content
    meta = json.loads((Path(entry.directory) / "meta.json").read_text())
    assert {written["mtime_ns"] for written in meta["written"].values()} == {10**18}


def test_an_entry_cut_short_is_rebuilt_with_a_warning(tiny_model, tmp_path, caplog):
    from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"document number {i} of the corpus .\n" for i in range(3000)))
    cache = str(tmp_path / "cache")
    entry = (
        MaskedLmCorpusReader(str(tiny_model), max_length=32, cache_directory=cache)
        .corpus(str(corpus))
        .files[0]
    )
    _truncate(os.path.join(entry.directory, "offsets.bin"), 1001 * 8)
    with caplog.at_level(logging.WARNING):
        again = MaskedLmCorpusReader(str(tiny_model), max_length=32, cache_directory=cache).corpus(
            str(corpus)
        )
    assert len(again) == 3000
    assert [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ] == [
        f"Damaged tokenization cache entry {entry.directory}: offsets.bin has 8008 bytes (1001 offsets); "
        "meta.json says 3000 documents, so 3001 offsets; rebuilding it"
    ]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (
            lambda d: _truncate(os.path.join(d, "ids.bin"), 10),
            "ids.bin has 10 bytes; meta.json says {tokens} uint16 tokens, so {bytes}",
        ),
        (
            lambda d: _overwrite(os.path.join(d, "offsets.bin"), 0, [3]),
            "offsets.bin runs from 3 to {tokens}; meta.json says from 0 to {tokens} tokens",
        ),
        (
            lambda d: _overwrite(os.path.join(d, "offsets.bin"), 5, [0]),
            "offsets.bin decreases after entry 4",
        ),
        (
            lambda d: os.remove(os.path.join(d, "meta.json")),
            "meta.json, offsets.bin or ids.bin is missing or unreadable",
        ),
        (  # its size and its offsets as they were: only its content tells
            lambda d: _write_over(os.path.join(d, "ids.bin")),
            "ids.bin was written over after it was built (its SHA-256 is not the one meta.json "
            "holds)",
        ),
    ],
    ids=["ids_cut", "offsets_start", "offsets_order", "no_meta", "ids_written_over"],
)
def test_a_damaged_entry_is_named_and_rebuilt(tiny_model, tmp_path, caplog, damage, reason):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    cache = TokenCache(tokenizer, str(tmp_path / "cache"))
    entry = cache.load(str(DATA / "domain_heldout.txt"))
    ids, offsets = entry.ids.copy(), entry.offsets.copy()
    damage(entry.directory)
    with caplog.at_level(logging.WARNING):
        rebuilt = cache.load(str(DATA / "domain_heldout.txt"))
    assert np.array_equal(rebuilt.ids, ids) and np.array_equal(rebuilt.offsets, offsets)
    warning = next(
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    )
    assert warning.startswith(
        f"Damaged tokenization cache entry {entry.directory}: "
        + reason.format(tokens=len(ids), bytes=2 * len(ids))
    )


def test_leftovers_of_killed_builds_are_removed_but_not_those_of_live_ones(tiny_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    directory = tmp_path / "cache"
    cache = TokenCache(tokenizer, str(directory))
    corpus = str(DATA / "domain_heldout.txt")
    directory.mkdir()
    killed = [
        directory / f".{cache.key(corpus)}.tmp-0badf00d",
        directory / f".{'0' * 32}.tmp-0badf00d",
    ]
    live = directory / f".{'1' * 32}.tmp-1a2b3c4d"
    for leftover in killed + [live]:
        leftover.mkdir()
        (leftover / "ids.bin").write_bytes(b"partial")
    with FileLock(
        str(directory / f"{'1' * 32}.lock")
    ):  # the build of another process, still running
        cache.load(corpus)
        assert [path.exists() for path in killed + [live]] == [False, False, True]
    # a later run, after that build ended without renaming its directory
    TokenCache(tokenizer, str(directory)).load(corpus)
    assert not live.exists()


def test_leftovers_are_looked_for_once_not_for_every_file(tiny_model, tmp_path, monkeypatch):
    """A corpus of thousands of files listed the whole cache once per file."""
    cache = TokenCache(AutoTokenizer.from_pretrained(str(tiny_model)), str(tmp_path / "cache"))
    looked = []
    remove_leftovers = TokenCache._remove_leftovers
    monkeypatch.setattr(
        TokenCache, "_remove_leftovers", lambda self: looked.append(remove_leftovers(self))
    )
    for name in ("domain.txt", "domain_heldout.txt", "general.txt"):
        cache.load(str(DATA / name))
    assert len(looked) == 1


class _ReadOnlyLock:
    """`FileLock` in a directory this user cannot write: the lock file cannot be created."""

    def __init__(self, path, timeout=-1):
        self.path = path

    def __enter__(self):
        raise OSError(30, "Read-only file system", self.path)

    def __exit__(self, *exc_info):
        pass


def test_a_read_only_cache_gives_its_entries_and_names_itself_for_a_missing_one(
    tiny_model, tmp_path, monkeypatch
):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    directory = tmp_path / "cache"
    cache = TokenCache(tokenizer, str(directory))
    expected = cache.load(str(DATA / "domain.txt")).ids.tolist()
    # a build killed earlier left its temporary directory, which nobody can remove now
    (directory / f".{'0' * 32}.tmp-0badf00d").mkdir()
    monkeypatch.setattr(token_cache, "FileLock", _ReadOnlyLock)
    read_only = TokenCache(tokenizer, str(directory))
    assert read_only.load(str(DATA / "domain.txt")).ids.tolist() == expected
    with pytest.raises(ConfigurationError) as error:
        read_only.load(str(DATA / "general.txt"))
    assert str(error.value) == (
        f"building the tokenization cache entry of {DATA / 'general.txt'} in {directory} failed: "
        f"[Errno 30] Read-only file system: '{directory / read_only.key(str(DATA / 'general.txt'))}"
        ".lock'; where the cache's directory is full or not writable, free space there or set "
        "DAPT_PLUGIN_CACHE to another directory (each corpus file is tokenized into it once, then "
        "read)"
    )


def test_cache_entries_honour_the_umask_so_that_a_shared_cache_is_readable(tiny_model, tmp_path):
    import stat

    previous = os.umask(0o022)
    try:
        cache = TokenCache(AutoTokenizer.from_pretrained(str(tiny_model)), str(tmp_path / "cache"))
        entry = cache.load(str(DATA / "domain.txt")).directory
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(entry, "ids.bin")).st_mode) == 0o644


def test_an_entry_built_by_earlier_reading_rules_is_not_reused(tiny_model, tmp_path, monkeypatch):
    from dapt_plugin.data import documents, token_cache
    from dapt_plugin.data.text_files import iter_lines

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text('{"text": "the compound inhibits the receptor ."}\n')
    cache = TokenCache(tokenizer, str(tmp_path / "cache"))
    with monkeypatch.context() as earlier:
        # cache format 1 read this file as plain text: one document, JSON and all
        earlier.setattr(token_cache, "CACHE_FORMAT_VERSION", 1)
        earlier.setattr(documents, "_plain_text_lines", lambda path, key: iter_lines(path))
        assert cache.load(str(corpus)).num_documents == 1
    with pytest.raises(DataError, match="corpus.txt:1: a JSON object with a 'text' field"):
        cache.load(str(corpus))


def _sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """A Unigram tokenizer with SentencePiece's normalizer and `▁` pre-tokenizer (XLM-R's kind)."""
    from tokenizers import SentencePieceUnigramTokenizer

    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(
        (DATA / "domain.txt").read_text().splitlines(),
        vocab_size=400,
        special_tokens=["<pad>", "<unk>"],
        unk_token="<unk>",
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=unigram._tokenizer, unk_token="<unk>", pad_token="<pad>"
    )


@pytest.mark.parametrize("kind", ["roberta", "bert", "sentencepiece"])
def test_a_document_longer_than_a_piece_is_tokenized_in_pieces_to_the_same_ids(
    tiny_model, tmp_path, monkeypatch, kind
):
    """A file of one line of a few hundred MB was tokenized whole, and killed for memory."""
    if kind == "sentencepiece":
        tokenizer = _sentencepiece_tokenizer()
    else:
        bert = kind == "bert"
        model = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL)) if bert else tiny_model
        tokenizer = AutoTokenizer.from_pretrained(str(model))
    text = (DATA / "domain.txt").read_text()
    # runs of several whitespace characters, a tab, a no-break space, punctuation at the cuts
    document = " ".join(text.split("\n")).replace(". ", ".  \t ").replace(", ", ",\u00a0")
    document = document.replace(" the ", "\tthe ")  # a tab alone between two words
    # and a stretch with no space at all, words between tabs only
    document += "\t".join(text.split()[:40])
    corpus = tmp_path / "one_line.txt"
    corpus.write_text("a short document\n" + document + "\n")
    monkeypatch.setattr(token_cache, "PIECE_CHARACTERS", 50)
    assert len(list(token_cache._pieces(document))) > 100
    given = []  # the lengths of the texts the tokenizer is given
    tokenize = TokenCache._tokenize
    monkeypatch.setattr(
        TokenCache,
        "_tokenize",
        lambda self, texts, **kwargs: (
            given.extend(map(len, texts)) or tokenize(self, texts, **kwargs)
        ),
    )
    entry = TokenCache(tokenizer, str(tmp_path / "cache")).load(str(corpus))
    assert max(given) <= 50
    assert [entry.document(i).tolist() for i in range(2)] == tokenizer(
        ["a short document", document]
    )["input_ids"]


def test_a_table_is_refused_also_when_the_cache_holds_its_bytes(tiny_model, tmp_path):
    """The entry's key is the file's content, not its name: a `.csv` of a cached text was read."""
    cache = TokenCache(AutoTokenizer.from_pretrained(str(tiny_model)), str(tmp_path / "cache"))
    text = tmp_path / "corpus.txt"
    text.write_text("text,label\nsome text,1\n")
    cache.load(str(text))
    table = tmp_path / "corpus.csv"
    table.write_bytes(text.read_bytes())
    with pytest.raises(DataError, match="corpus.csv: a table"):
        cache.load(str(table))


@pytest.mark.parametrize("where", ["a file", "a path through a file"])
def test_a_cache_directory_that_cannot_be_one_names_itself(tiny_model, tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    directory = blocker if where == "a file" else blocker / "cache"
    cache = TokenCache(AutoTokenizer.from_pretrained(str(tiny_model)), str(directory))
    with pytest.raises(ConfigurationError) as error:
        cache.load(str(DATA / "domain.txt"))
    assert str(error.value).startswith(
        f"building the tokenization cache entry of {DATA / 'domain.txt'} in {directory} failed: "
    )
