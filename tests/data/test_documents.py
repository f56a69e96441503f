import gzip
import json

import pytest

from dapt_plugin.data.documents import is_json_lines, iter_documents, iter_file_documents
from dapt_plugin.data.text_files import DataError


def test_plain_text_is_one_document_per_non_blank_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("first doc\n\n  \nsecond doc\r\n", encoding="utf-8")
    documents = list(iter_file_documents(str(path)))
    assert [(d.index, d.line_number, d.text) for d in documents] == [
        (0, 1, "first doc"),
        (1, 4, "second doc"),
    ]


def test_json_lines_read_the_text_field_and_skip_empty_texts(tmp_path):
    path = tmp_path / "task.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for text in ["one", "", "two"]:
            handle.write(json.dumps({"text": text, "label": "x"}) + "\n")
    assert is_json_lines(str(path))
    assert [d.text for d in iter_file_documents(str(path))] == ["one", "two"]


def test_documents_are_numbered_across_files(tmp_path):
    (tmp_path / "a.txt").write_text("a1\na2\n")
    (tmp_path / "b.txt").write_text("b1\n")
    documents = list(iter_documents(str(tmp_path / "*.txt")))
    assert [(d.index, d.text) for d in documents] == [(0, "a1"), (1, "a2"), (2, "b1")]


@pytest.mark.parametrize(
    "line, message",
    [
        ("not json", "corpus.jsonl:2: not valid JSON"),
        ('{"body": "x"}', "corpus.jsonl:2: no 'text' field"),
        ('{"text": 3}', "corpus.jsonl:2: 'text' is an integer, not a string"),
        (
            '{"text": "a \\ud800 b"}',
            r"corpus.jsonl:2: 'text' holds a lone surrogate escape \(\\ud800, character 3\)",
        ),
    ],
)
def test_bad_json_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        list(iter_file_documents(str(path)))


@pytest.mark.parametrize("name", ["task.csv", "task.TSV", "task.csv.gz"])
def test_a_table_is_refused_not_trained_on_header_and_all(tmp_path, name):
    path = tmp_path / name
    path.write_text("text,label\nsome text,1\n")
    with pytest.raises(DataError) as error:
        list(iter_file_documents(str(path)))
    assert str(error.value) == (
        f"{path}: a table (by its name), which would be read as plain text, its header and every "
        'column trained on; give the text as JSON lines (`{"text": ...}`, named .jsonl) or one '
        "document per line (.txt)"
    )


def test_a_surrogate_pair_escape_is_one_character(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "a \\ud83d\\ude00 b"}\n')
    assert [d.text for d in iter_file_documents(str(path))] == ["a \U0001f600 b"]


@pytest.mark.parametrize("name", ["TRAIN.JSONL", "train.ndjson", "train.Json.GZ"])
def test_json_lines_are_known_by_their_name_in_any_case(tmp_path, name):
    path = tmp_path / name
    line = json.dumps({"text": "one", "label": "x"}) + "\n"
    if name.lower().endswith(".gz"):
        path.write_bytes(gzip.compress(line.encode()))
    else:
        path.write_text(line)
    assert is_json_lines(str(path))
    assert [d.text for d in iter_file_documents(str(path))] == ["one"]


def test_a_json_lines_file_under_a_plain_text_name_is_refused_not_read_labels_and_all(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("\n" + json.dumps({"text": "one", "label": "x"}) + "\n")
    with pytest.raises(DataError, match=r"train.txt:2: a JSON object with a 'text' field, in a "):
        list(iter_file_documents(str(path)))
    # plain text that merely starts with a brace, or JSON without the text field, is text
    path.write_text('{not json}\n{"body": "x"}\n')
    assert [d.text for d in iter_file_documents(str(path))] == ["{not json}", '{"body": "x"}']
