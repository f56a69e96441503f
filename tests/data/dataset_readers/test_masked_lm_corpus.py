"""The masked-LM reader on good and bad input: every documented error, with its message."""

import gzip
import logging
import os
import re
import shutil

import pytest
from allennlp.common.checks import ConfigurationError
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from dapt_plugin.data.text_files import DataError
from tests.conftest import CONFIGS, DATA, add_custom_code, allennlp, mlm_env

CLEAN = (
    "the compound inhibits the receptor in liver cells .\nwe found that it blocks the channel .\n"
)


def _reader(model, **kwargs):
    return MaskedLmCorpusReader(str(model), **{"max_length": 32, **kwargs})


def _ids(reader, path):
    corpus = reader.corpus(str(path))
    return [corpus[i].tolist() for i in range(len(corpus))]


def test_instances_hold_input_ids_for_any_data_loader(tiny_model):
    reader = _reader(tiny_model)
    instances = list(reader.read(str(DATA / "domain_heldout.txt")))
    corpus = reader.corpus(str(DATA / "domain_heldout.txt"))
    assert (
        len(instances) == len(corpus) > 40
    )  # the windows of 40 lines, some longer than max_length
    assert [i["input_ids"].tensor.tolist() for i in instances] == [
        corpus[n].tolist() for n in range(len(corpus))
    ]


def test_bom_crlf_and_blank_lines_read_like_a_clean_file(tiny_model, tmp_path):
    clean, messy = tmp_path / "clean.txt", tmp_path / "messy.txt"
    clean.write_text(CLEAN)
    messy.write_bytes(b"\xef\xbb\xbf" + CLEAN.replace("\n", "\r\n\r\n").encode("utf-8"))
    reader = _reader(tiny_model)
    assert _ids(reader, messy) == _ids(reader, clean)


def test_several_files_a_glob_and_gzip(tiny_model, tmp_path):
    (tmp_path / "a.txt").write_text(CLEAN)
    with gzip.open(tmp_path / "b.txt.gz", "wt") as handle:
        handle.write(CLEAN)
    reader = _reader(tiny_model)
    one = _ids(reader, tmp_path / "a.txt")
    assert _ids(reader, tmp_path / "*.txt*") == one + one
    assert _ids(reader, f"{tmp_path / 'a.txt'},{tmp_path / 'b.txt.gz'}") == one + one


def test_a_single_10_mb_line_is_read_windowed_packed_or_truncated(tiny_model, tmp_path):
    big = tmp_path / "big.txt"
    words = ("the compound inhibits the receptor . " * 300_000)[: 10 * 1024 * 1024]
    big.write_text(words + "\n" + CLEAN)
    line_by_line = _ids(_reader(tiny_model, mode="line_by_line"), big)
    assert len(line_by_line) == 3 and len(line_by_line[0]) == 32
    packed = _reader(tiny_model, mode="packed").corpus(str(big))
    assert len(packed) > 10_000 and all(len(packed[i]) == 32 for i in (0, len(packed) - 1))
    windows = _reader(tiny_model).corpus(str(big))
    long_document = windows.files[0].document(0)
    assert len(windows) == -(-(len(long_document) - 2) // 30) + 2 and windows.covered_share == 1.0


def test_the_three_modes_read_one_cache_entry_tokenized_once(tiny_model, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    readers = {
        mode: _reader(tiny_model, mode=mode, cache_directory=str(cache))
        for mode in ("document_windows", "packed", "line_by_line")
    }
    first = readers.pop("document_windows").corpus(str(DATA / "domain.txt"))
    entries = sorted(os.listdir(cache))

    def tokenize(*args, **kwargs):
        raise AssertionError("the tokenizer was called again")

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", tokenize)
    for reader in readers.values():
        corpus = reader.corpus(str(DATA / "domain.txt"))
        assert corpus.files[0].directory == first.files[0].directory
    assert sorted(os.listdir(cache)) == entries


def test_each_read_logs_the_share_it_covers_and_warns_when_over_5_percent_is_left_out(
    tiny_model, tmp_path, caplog
):
    lines = (DATA / "domain.txt").read_text().splitlines()
    long = tmp_path / "long.txt"
    long.write_text(" ".join(lines[:20]) + "\n" + " ".join(lines[20:40]) + "\n")
    logger = "dapt_plugin.data.dataset_readers.masked_lm_corpus"
    with caplog.at_level(logging.INFO, logger=logger):
        truncated = _reader(tiny_model, mode="line_by_line").corpus(str(long))
        windows = _reader(tiny_model).corpus(str(long))
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == logger]
    share = truncated.covered_share
    assert share < 0.2
    assert messages == [
        (
            logging.INFO,
            f"{long}: 2 line_by_line examples of up to 32 tokens; one pass covers {100 * share:.1f}% of "
            f"its {truncated.num_content_tokens} tokens (special tokens not counted)",
        ),
        (
            logging.WARNING,
            f"MLM_MODE=line_by_line (the reader's `mode`) leaves {1 - share:.1%} of the tokens of "
            f"{long} out of every pass: 2 of its 2 documents are longer than max_length=32 and only "
            "their first 30 tokens are used. Set MLM_MODE=document_windows to use every token of every "
            "document",
        ),
        (
            logging.INFO,
            f"{long}: {len(windows)} document_windows examples of up to 32 tokens; one pass covers 100.0% "
            f"of its {truncated.num_content_tokens} tokens (special tokens not counted)",
        ),
    ]


def test_a_corpus_of_many_empty_files_is_named_in_a_line_of_a_few(tiny_model, tmp_path):
    for number in range(5):
        (tmp_path / f"shard{number}.txt").write_text("\n")
    with pytest.raises(DataError) as error:
        _reader(tiny_model).corpus(str(tmp_path / "*.txt"))
    assert str(error.value).startswith(
        f"{tmp_path / 'shard0.txt'}, {tmp_path / 'shard1.txt'}, {tmp_path / 'shard2.txt'} and 2 "
        "more: the corpus has no non-blank documents"
    )


def test_a_file_named_twice_is_said_to_be_trained_on_twice(tiny_model, tmp_path, caplog):
    corpus = tmp_path / "a.txt"
    corpus.write_text((DATA / "domain.txt").read_text())
    (tmp_path / "link.txt").symlink_to(corpus)
    spec = f"{corpus},{tmp_path}/*.txt"  # a.txt, then a.txt and link.txt again
    logger = "dapt_plugin.data.dataset_readers.masked_lm_corpus"
    with caplog.at_level(logging.WARNING, logger=logger):
        _reader(tiny_model).corpus(spec)
    assert [r.getMessage() for r in caplog.records if r.name == logger] == [
        f"{spec} names {corpus}, {tmp_path / 'link.txt'} more than once (as a path, a pattern or "
        "a link): each copy is trained on in every pass, and a document held out of it (for the "
        "held-out loss, without HELDOUT_PATH) is trained on through another copy"
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"fine line\n\xff\xfe broken\n",
            r"bad.txt:2: not valid UTF-8 \(byte 0 of the line\); re-encode the file as UTF-8",
        ),
        (
            b"fine line\nnul \x00 byte\n",
            r"bad.txt:2: contains NUL bytes; is it a binary file\? Give a UTF-8 text file",
        ),
        (b"\n  \n\n", r"bad.txt: the corpus has no non-blank documents"),
    ],
)
def test_bad_text_files_stop_with_file_and_line(tiny_model, tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=message):
        _reader(tiny_model).corpus(str(bad))


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": 42}', r"bad.jsonl:2: 'text' is an integer, not a string"),
        ('{"label": "x"}', r"bad.jsonl:2: no 'text' field"),
        ("{not json", r"bad.jsonl:2: not valid JSON"),
    ],
)
def test_bad_jsonl_lines_stop_with_file_and_line(tiny_model, tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        _reader(tiny_model).corpus(str(bad))


def test_a_corpus_shorter_than_one_packed_block(tiny_model, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("a few words .\n")
    with pytest.raises(
        DataError, match=r"less than one packed block of max_length=32; give more text"
    ):
        _reader(tiny_model, mode="packed").corpus(str(short))


def test_missing_and_unreadable_files(tiny_model, tmp_path):
    with pytest.raises(DataError, match=r"nowhere.txt: no such file; check the path"):
        _reader(tiny_model).corpus(str(tmp_path / "nowhere.txt"))
    with pytest.raises(DataError, match=r"\*.none: the pattern matches no file"):
        _reader(tiny_model).corpus(str(tmp_path / "*.none"))
    corrupt = tmp_path / "corrupt.txt.gz"
    corrupt.write_bytes(b"this is not gzip data")
    with pytest.raises(
        DataError, match=r"corrupt.txt.gz:1: cannot be read .*the file may be truncated or not gzip"
    ):
        _reader(tiny_model).corpus(str(corrupt))


def test_configuration_errors(tiny_model, tmp_path):
    with pytest.raises(
        ConfigurationError,
        match=r"`max_length` \(MAX_LENGTH in the configs\) must be between 3 and the model's position limit 512; got 600",
    ):
        _reader(tiny_model, max_length=600)
    with pytest.raises(
        ConfigurationError,
        match=r"`mode` must be one of \['document_windows', 'packed', 'line_by_line'\]; got 'blocks'",
    ):
        _reader(tiny_model, mode="blocks")
    no_mask = tmp_path / "no_mask"
    shutil.copytree(tiny_model, no_mask)
    backend = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    for name in ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        (no_mask / name).unlink()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    ).save_pretrained(str(no_mask))
    with pytest.raises(
        ConfigurationError, match="has no mask token, so it cannot be used for masked-LM training"
    ):
        _reader(no_mask)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"MLM_PROBABILITY": "1.5"},
            r"environment variable MLM_PROBABILITY must be a number above 0 and below 1; got 1.5",
        ),
        (
            {"MAX_LENGTH": "4096"},
            r"`max_length` \(MAX_LENGTH in the configs\) must be between 3 and the model's position limit 512; got 4096",
        ),
        ({"USE_AMP": "true", "CUDA_DEVICES": "-1"}, r"`use_amp` \(USE_AMP=true\) needs a CUDA GPU"),
        ({"BF16": "true", "CUDA_DEVICES": "-1"}, r"`bf16` autocast needs a CUDA GPU"),
        (
            {"APEX_FUSED_ADAM": "true"},
            r"`apex_fused_adam` needs NVIDIA apex, which is not installed",
        ),
    ],
)
def test_bad_settings_fail_with_a_clear_message(tiny_model, tmp_path, overrides, message):
    process = allennlp(
        ["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(tmp_path / "run")],
        env=mlm_env(tiny_model, **overrides),
        check=False,
    )
    assert process.returncode != 0
    assert re.search(message, process.stderr), process.stderr[-2000:]


def test_a_model_directory_with_its_own_code_is_refused_unless_trusted(tiny_model, tmp_path):
    custom = tmp_path / "custom"
    shutil.copytree(tiny_model, custom)
    marker = tmp_path / "code_ran"
    add_custom_code(custom, marker)
    with pytest.raises(
        ConfigurationError,
        match=r"brings its own Python code \(`auto_map` in config.json\), "
        r"which loading it would run; set TRUST_REMOTE_CODE=true",
    ):
        _reader(custom)
    assert not marker.exists()
