"""
Documents of a corpus, one per line, from plain text or JSON lines, for the tools that look at
whole corpora (vocabulary overlap, TAPT data selection).

A file whose name ends in `.jsonl` or `.json` (optionally followed by `.gz`) holds one JSON object
per line and the document is its text field; any other file holds one document per line. Blank
lines, and JSON lines whose text is empty, are skipped (the second with a warning giving their
count); every other problem stops the run with a `DataError` naming the file and line.
"""
import json
import logging
from typing import Iterator, NamedTuple

from dapt_plugin.data.text_files import DataError, PathSpec, expand_paths, iter_lines

logger = logging.getLogger(__name__)

_JSON_SUFFIXES = (".jsonl", ".json")


class Document(NamedTuple):
    """One document: its position in the corpus (0-based, counting documents, not lines), file,
    1-based line and text."""

    index: int
    path: str
    line_number: int
    text: str


def is_json_lines(path: str) -> bool:
    """Whether `path` is read as JSON lines (by its name: `.jsonl`/`.json`, optionally `.gz`)."""
    name = path[: -len(".gz")] if path.endswith(".gz") else path
    return name.endswith(_JSON_SUFFIXES)


def iter_file_documents(path: str, text_key: str = "text") -> Iterator[Document]:
    """
    Yields the documents of one file, numbered from 0 within the file.

    # Parameters

    path : `str`
        A plain-text or JSON-lines file, optionally gzip-compressed.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in a JSON-lines file; ignored for plain text.
    """
    json_lines = is_json_lines(path)
    index = 0
    empty = 0
    for line_number, line in iter_lines(path):
        if not line.strip():
            continue
        if json_lines:
            text = _json_text(path, line_number, line, text_key)
            if not text.strip():
                empty += 1
                continue
        else:
            text = line
        yield Document(index, path, line_number, text)
        index += 1
    if empty:
        logger.warning("%s: skipped %d line(s) with an empty %r field", path, empty, text_key)


def iter_documents(paths: PathSpec, text_key: str = "text") -> Iterator[Document]:
    """
    Yields the documents of every file `paths` names (a path, glob, comma-separated list or a list
    of them; see `expand_paths`), in order, numbered from 0 across all files. A path that names no
    file fails before any document is read.

    # Parameters

    paths : `PathSpec`
        The files of the corpus.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in JSON-lines files.
    """
    files = expand_paths(paths)
    index = 0
    for path in files:
        for document in iter_file_documents(path, text_key):
            yield document._replace(index=index)
            index += 1


def _json_text(path: str, line_number: int, line: str, text_key: str) -> str:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(path, line_number, f"not valid JSON ({error.msg} at column {error.colno}); "
                        "each line of a .jsonl file must be one JSON object (or rename the file "
                        "to .txt to read it as plain text)") from None
    if not isinstance(item, dict) or text_key not in item:
        raise DataError(path, line_number, f"no {text_key!r} field; each line needs "
                        f"{{\"{text_key}\": ...}} (or name the text field with `text_key`)")
    text = item[text_key]
    if not isinstance(text, str):
        raise DataError(path, line_number, f"{text_key!r} is a {type(text).__name__}, not a string")
    return text
