import itertools

import numpy as np
import pytest
from transformers import AutoTokenizer

from dapt_plugin.data.text_files import DataError
from dapt_plugin.data.token_cache import TokenCache, special_token_counts
from dapt_plugin.data.tokenized_corpus import TokenizedCorpus
from tests.conftest import DATA, TASK


def _corpus(
    tiny_model, tmp_path, mode, max_length, paths=(DATA / "domain.txt", DATA / "domain_heldout.txt")
):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    cache = TokenCache(tokenizer, str(tmp_path))
    files = [cache.load(str(p)) for p in paths]
    corpus = TokenizedCorpus(
        files, [str(p) for p in paths], mode, max_length, special_token_counts(tokenizer)
    )
    return corpus, files, tokenizer


def _document_of(tokenizer, num_tokens):
    """A text of fixture words that the tokenizer makes exactly `num_tokens` tokens (special tokens not counted)."""
    words, count = [], 0
    for word in itertools.cycle((DATA / "domain.txt").read_text().split()):
        size = len(tokenizer(" " + word if words else word, add_special_tokens=False)["input_ids"])
        if count + size <= num_tokens:  # byte-level BPE tokenizes each " word" on its own
            words.append(word)
            count += size
        if count == num_tokens:
            text = " ".join(words)
            assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == num_tokens
            return text


def _examples(corpus):
    return [corpus[i] for i in range(len(corpus))]


def test_special_token_counts_are_those_around_a_roberta_document(tiny_model):
    assert special_token_counts(AutoTokenizer.from_pretrained(str(tiny_model))) == (1, 1)


def test_document_windows_train_on_each_token_of_a_3000_token_document_exactly_once(
    tiny_model, tmp_path
):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    corpus_file = tmp_path / "long.txt"
    corpus_file.write_text(
        f"a short document .\n{_document_of(tokenizer, 3000)}\nanother short one .\n"
    )
    corpus, (file,), _ = _corpus(
        tiny_model, tmp_path / "cache", "document_windows", 64, paths=(corpus_file,)
    )
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    documents = [file.document(i) for i in range(3)]
    assert [len(d) - 2 for d in documents][1] == 3000
    windows = _examples(corpus)
    # 1 window, 3000 / 62 -> 48 full windows and a last one of 24 content tokens, 1 window
    assert [len(w) for w in windows] == [len(documents[0])] + [64] * 48 + [26] + [len(documents[2])]
    assert all(
        w[0] == bos and w[-1] == eos and bos not in w[1:-1] and eos not in w[1:-1] for w in windows
    )
    # in order, each window's content is the next stretch of one document's content: concatenated,
    # the long document's 49 windows give back its content, each position once
    long_windows = windows[1:50]
    assert np.array_equal(np.concatenate([w[1:-1] for w in long_windows]), documents[1][1:-1])
    assert np.array_equal(windows[0], documents[0]) and np.array_equal(windows[-1], documents[2])
    assert (
        corpus.num_content_tokens == corpus.num_covered_tokens == sum(len(d) - 2 for d in documents)
    )
    assert corpus.covered_share == 1.0 and corpus.coverage_warning() is None
    with pytest.raises(IndexError):
        corpus[len(corpus)]


def test_no_window_spans_two_documents_or_files(tiny_model, tmp_path):
    corpus, files, _ = _corpus(
        tiny_model,
        tmp_path,
        "document_windows",
        16,
        paths=(DATA / "domain.txt", TASK / "train.jsonl"),
    )
    expected = []  # built from the definition: each document's content in slices of 14, its own <s> and </s> around
    for f in files:
        for i in range(f.num_documents):
            document = f.document(i)
            content = document[1:-1]
            expected += [
                np.concatenate([document[:1], content[k : k + 14], document[-1:]])
                for k in range(0, len(content), 14)
            ]
    windows = _examples(corpus)
    assert len(windows) == len(expected) > sum(f.num_documents for f in files)
    assert all(np.array_equal(w, e) for w, e in zip(windows, expected))
    assert max(len(w) for w in windows) == 16


def test_documents_shorter_than_one_window_are_the_line_by_line_examples(tiny_model, tmp_path):
    windows, files, _ = _corpus(tiny_model, tmp_path, "document_windows", 128)
    lines, _, _ = _corpus(tiny_model, tmp_path, "line_by_line", 128)
    assert max(len(f.document(i)) for f in files for i in range(f.num_documents)) <= 128
    assert len(windows) == len(lines) == sum(f.num_documents for f in files)
    assert all(np.array_equal(w, e) for w, e in zip(_examples(windows), _examples(lines)))
    # a whole document is a slice of the memory-mapped cache, not a copy
    assert np.shares_memory(windows[0], files[0].ids)


def test_packed_mode_yields_only_full_blocks_of_the_concatenated_stream(tiny_model, tmp_path):
    corpus, files, tokenizer = _corpus(tiny_model, tmp_path, "packed", 64)
    stream = np.concatenate([f.ids for f in files])
    assert len(corpus) == len(stream) // 64
    blocks = _examples(corpus)
    assert all(len(block) == 64 for block in blocks)
    # blocks tile the stream in order, across the file boundary, dropping only the final remainder
    assert np.array_equal(np.concatenate(blocks), stream[: len(corpus) * 64])
    assert (stream == tokenizer.bos_token_id).sum() == files[0].num_documents + files[
        1
    ].num_documents
    with pytest.raises(IndexError):
        corpus[len(corpus)]


def test_line_by_line_mode_truncates_each_line_keeping_its_end_token(tiny_model, tmp_path):
    corpus, files, tokenizer = _corpus(
        tiny_model, tmp_path, "line_by_line", 28, paths=(DATA / "domain.txt", TASK / "train.jsonl")
    )
    documents = [f.document(i) for f in files for i in range(f.num_documents)]
    assert len(corpus) == len(documents)
    truncated = 0
    for index, document in enumerate(documents):  # in file order, across both files
        example = corpus[index]
        if len(document) > 28:
            truncated += 1
            assert len(example) == 28
            assert (
                np.array_equal(example[:27], document[:27])
                and example[-1] == tokenizer.eos_token_id
            )
        else:
            assert np.array_equal(example, document)
    assert 0 < truncated == corpus.num_truncated_documents < len(documents)


@pytest.mark.parametrize("mode", ["document_windows", "packed", "line_by_line"])
def test_the_covered_share_counts_the_content_tokens_the_examples_hold(tiny_model, tmp_path, mode):
    corpus, files, tokenizer = _corpus(tiny_model, tmp_path, mode, 40)
    special = {tokenizer.bos_token_id, tokenizer.eos_token_id}
    content = sum(int(np.isin(f.ids, list(special), invert=True).sum()) for f in files)
    covered = sum(int(np.isin(e, list(special), invert=True).sum()) for e in _examples(corpus))
    assert (corpus.num_content_tokens, corpus.num_covered_tokens) == (content, covered)
    assert corpus.covered_share == pytest.approx(covered / content)
    some = np.arange(1, len(corpus), 7)
    assert corpus.content_tokens(some) == sum(
        int(np.isin(corpus[i], list(special), invert=True).sum()) for i in some
    )
    assert corpus.content_tokens(np.arange(len(corpus))) == covered
    assert {
        "document_windows": covered == content,
        "packed": content - 40 < covered < content,
        "line_by_line": covered < content,
    }[mode]


def test_the_warning_names_the_mode_the_share_left_out_and_the_fix(tiny_model, tmp_path):
    corpus, files, _ = _corpus(
        tiny_model, tmp_path, "line_by_line", 28, paths=(DATA / "domain.txt",)
    )
    left_out = 1 - corpus.covered_share
    assert left_out > 0.05
    assert corpus.coverage_warning() == (
        f"MLM_MODE=line_by_line (the reader's `mode`) leaves {left_out:.1%} of the tokens of {DATA / 'domain.txt'} "
        f"out of every pass: {corpus.num_truncated_documents} of its 400 documents are longer than max_length=28 "
        "and only their first 26 tokens are used. Set MLM_MODE=document_windows to use every token of every "
        "document"
    )
    small, _, _ = _corpus(tiny_model, tmp_path, "packed", 512, paths=(DATA / "domain_heldout.txt",))
    assert small.coverage_warning().startswith("MLM_MODE=packed (the reader's `mode`) leaves ")
    assert (
        "less than one block of max_length=512, are dropped. Set MLM_MODE=document_windows"
        in small.coverage_warning()
    )
    assert _corpus(tiny_model, tmp_path, "line_by_line", 128)[0].coverage_warning() is None


def test_a_corpus_shorter_than_one_block_is_an_error_naming_it(tiny_model, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("just a few words .\n")
    with pytest.raises(
        DataError,
        match=r"short.txt: the corpus has only \d+ tokens, less than one packed block "
        r"of max_length=64; give more text, or use mode document_windows or a smaller max_length",
    ):
        _corpus(tiny_model, tmp_path / "cache", "packed", 64, paths=(short,))
    assert (
        len(_corpus(tiny_model, tmp_path / "cache", "document_windows", 64, paths=(short,))[0]) == 1
    )


def test_special_tokens_are_counted_even_when_the_tokenizer_file_pads(tiny_model):
    # sentence-transformers save tokenizer.json with padding and truncation to 128 tokens on
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    tokenizer.backend_tokenizer.enable_padding(length=128, pad_id=tokenizer.pad_token_id)
    tokenizer.backend_tokenizer.enable_truncation(max_length=128)
    assert special_token_counts(tokenizer) == (1, 1)
