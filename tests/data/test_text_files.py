import os

import pytest

from dapt_plugin.data.text_files import DataError, expand_paths, iter_lines


def test_a_directory_is_refused_with_the_fix(tmp_path):
    (tmp_path / "corpus").mkdir()
    for spec in (str(tmp_path / "corpus"), str(tmp_path / "*")):
        with pytest.raises(DataError) as error:
            expand_paths(spec)
        assert str(error.value) == (
            f"{tmp_path / 'corpus'}: is a directory; give the files in it, e.g. "
            f"{tmp_path / 'corpus' / '*.txt'}"
        )


def test_a_file_whose_name_has_a_comma_is_one_path(tmp_path):
    comma = tmp_path / "notes, 2020.txt"
    comma.write_text("text\n")
    (tmp_path / "other.txt").write_text("text\n")
    assert expand_paths(str(comma)) == [str(comma)]
    pattern = str(tmp_path / "notes? 2020.txt")
    assert expand_paths(f"{pattern},{tmp_path / 'other.txt'}") == [
        str(comma),
        str(tmp_path / "other.txt"),
    ]


def test_a_list_split_inside_a_file_name_says_so(tmp_path):
    (tmp_path / "notes, 2020.txt").write_text("text\n")
    (tmp_path / "other.txt").write_text("text\n")
    spec = f"{tmp_path / 'notes, 2020.txt'},{tmp_path / 'other.txt'}"
    with pytest.raises(DataError) as error:
        expand_paths(spec)
    parts = [str(tmp_path / "notes"), "2020.txt", str(tmp_path / "other.txt")]
    assert str(error.value) == (
        f"{tmp_path / 'notes'}: no such file; check the path (relative paths are resolved from the "
        f"directory `allennlp` runs in); {spec!r} was split at its commas into {parts}: match a file "
        "whose name has a comma with `?` in its place"
    )


def test_paths_globs_and_lists(tmp_path):
    for name in ("b.txt", "a.txt", "c.jsonl"):
        (tmp_path / name).write_text("text\n")
    assert expand_paths(str(tmp_path / "*.txt")) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
    ]
    assert expand_paths(f"{tmp_path / 'c.jsonl'}, {tmp_path / 'a.txt'}") == [
        str(tmp_path / "c.jsonl"),
        str(tmp_path / "a.txt"),
    ]
    assert expand_paths([tmp_path / "a.txt"]) == [os.fspath(tmp_path / "a.txt")]


@pytest.mark.parametrize(
    "content",
    [
        b"one\ntwo\r\n\nfour\r\rsix\n",  # LF, CRLF and lone CRs mixed
        b"\xef\xbb\xbfone\rtwo\r\rfour\r\rsix\r",  # classic Mac OS, with a byte-order mark
    ],
)
def test_lines_end_at_lf_crlf_or_a_lone_cr_numbered_as_python_text_mode_does(tmp_path, content):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with open(path, encoding="utf-8-sig") as handle:  # universal newlines
        expected = [(number, line.rstrip("\r\n")) for number, line in enumerate(handle, 1)]
    assert list(iter_lines(str(path))) == expected
    assert [text for _, text in expected] == ["one", "two", "", "four", "", "six"]


def test_a_bad_byte_after_a_lone_cr_is_named_by_its_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"one\rtwo\r\xffthree\r")
    with pytest.raises(DataError, match=r"corpus.txt:3: not valid UTF-8 \(byte 0 of the line\)"):
        list(iter_lines(str(path)))


def test_a_path_with_spaces_around_it_is_named_in_quotes():
    assert str(DataError(" ", 0, "cannot be read")) == '" ": cannot be read'
    assert str(DataError("a.txt ", 2, "bad")) == '"a.txt ":2: bad'
    assert str(DataError("data/a b.txt", 3, "bad")) == "data/a b.txt:3: bad"


@pytest.mark.parametrize(
    "spec, shown", [("", '""'), (" ", '" "'), (",", ","), (" , ", '" , "'), ([], "[]")]
)
def test_a_spec_that_names_no_path_is_refused(spec, shown):
    with pytest.raises(DataError) as error:
        expand_paths(spec)
    assert str(error.value) == (
        f"{shown}: names no file; give a path, a glob pattern or a comma-separated list of them"
    )
