import numpy as np
import pytest
from transformers import AutoTokenizer

from dapt_plugin.data.text_files import DataError
from dapt_plugin.data.token_cache import TokenCache
from dapt_plugin.data.tokenized_corpus import TokenizedCorpus
from tests.conftest import DATA, TASK


def _corpus(tiny_model, tmp_path, mode, max_length, paths=(DATA / "domain.txt", DATA / "domain_heldout.txt")):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    cache = TokenCache(tokenizer, str(tmp_path))
    files = [cache.load(str(p)) for p in paths]
    return TokenizedCorpus(files, [str(p) for p in paths], mode, max_length, tokenizer.eos_token_id), files, tokenizer


def test_packed_mode_yields_only_full_blocks_of_the_concatenated_stream(tiny_model, tmp_path):
    corpus, files, tokenizer = _corpus(tiny_model, tmp_path, "packed", 64)
    stream = np.concatenate([f.ids for f in files])
    assert len(corpus) == len(stream) // 64
    blocks = [corpus[i] for i in range(len(corpus))]
    assert all(len(block) == 64 for block in blocks)
    # blocks tile the stream in order, across the file boundary, dropping only the final remainder
    assert np.array_equal(np.concatenate(blocks), stream[: len(corpus) * 64])
    assert (stream == tokenizer.bos_token_id).sum() == files[0].num_documents + files[1].num_documents
    with pytest.raises(IndexError):
        corpus[len(corpus)]


def test_line_by_line_mode_truncates_each_line_keeping_its_end_token(tiny_model, tmp_path):
    corpus, files, tokenizer = _corpus(tiny_model, tmp_path, "line_by_line", 28,
                                       paths=(DATA / "domain.txt", TASK / "train.jsonl"))
    documents = [f.document(i) for f in files for i in range(f.num_documents)]
    assert len(corpus) == len(documents)
    truncated = 0
    for index, document in enumerate(documents):  # in file order, across both files
        example = corpus[index]
        if len(document) > 28:
            truncated += 1
            assert len(example) == 28
            assert np.array_equal(example[:27], document[:27]) and example[-1] == tokenizer.eos_token_id
        else:
            assert np.array_equal(example, document)
    assert 0 < truncated < len(documents)


def test_a_corpus_shorter_than_one_block_is_an_error_naming_it(tiny_model, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("just a few words .\n")
    with pytest.raises(DataError, match=r"short.txt: the corpus has only \d+ tokens, less than one packed block of max_length=64"):
        _corpus(tiny_model, tmp_path / "cache", "packed", 64, paths=(short,))
