"""
Documents of a corpus, one per line, from plain text or JSON lines: for the token cache and the
tools that look at whole corpora (vocabulary overlap, TAPT data selection), and the parsing of
JSON lines for every reader of the plugin (`iter_json_lines`).

A file whose name ends in `.jsonl`, `.ndjson` or `.json`, in any case (optionally followed by
`.gz`), holds one JSON object per line and the document is its text field; any other file holds
one document per line. Blank lines, and JSON lines whose text is empty, are skipped (the second
with a warning giving their count); every other problem stops the run with a `DataError` naming
the file and line, and so does a plain-text file whose first line is a JSON object with a text
field (a JSON-lines file under another name, whose labels would otherwise be read as text).
"""

import json
import logging
from typing import Any, Dict, Iterable, Iterator, NamedTuple, Optional, Tuple

from dapt_plugin.data.text_files import DataError, PathSpec, expand_paths, iter_lines

logger = logging.getLogger(__name__)

_JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
_INVALID_FIX = (
    "each line of a .jsonl file must be one JSON object (a file of plain text, one document per "
    "line, must be named otherwise, e.g. .txt)"
)


class JsonLine(NamedTuple):
    """A line of a JSON-lines file with a text: its 1-based number, its object and the text."""

    line_number: int
    item: Dict[str, Any]
    text: str


def invalid_json(
    path: str,
    line_number: int,
    error: json.JSONDecodeError,
    fix: str = "each line must be one JSON object",
) -> DataError:
    """The error for a line of `path` that is not JSON: where, why, and `fix`."""
    return DataError(
        path, line_number, f"not valid JSON ({error.msg}: column {error.colno}); {fix}"
    )


def iter_json_lines(
    path: str,
    lines: Optional[Iterable[Tuple[int, str]]] = None,
    text_key: str = "text",
    example: Optional[str] = None,
    invalid_fix: str = "each line must be one JSON object",
    warn_empty: bool = True,
) -> Iterator[JsonLine]:
    """
    Yields the lines of a JSON-lines file that have a text. Blank lines are passed over; lines whose
    text is empty or whitespace are skipped, with one warning at the end giving their number; any
    other problem (invalid JSON, no text field, a text that is not a string) stops with a
    `DataError` naming the file and line.

    # Parameters

    path : `str`
        The file, for reading and for messages.
    lines : `Iterable[Tuple[int, str]]`, optional (default = every line of `path`)
        `(line_number, line)` pairs to parse, e.g. one worker's share of `iter_lines(path)`.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text.
    example : `str`, optional (default = `{"<text_key>": ...}`)
        What a line must hold, as the message about a line without a text shows it.
    invalid_fix : `str`, optional (default = `"each line must be one JSON object"`)
        What the message about a line that is not JSON says to do.
    warn_empty : `bool`, optional (default = `True`)
        Warn about skipped lines with an empty text.
    """
    example = example or f'{{"{text_key}": ...}}'
    empty = 0
    for line_number, line in iter_lines(path) if lines is None else lines:
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise invalid_json(path, line_number, error, invalid_fix) from None
        if not isinstance(item, dict) or text_key not in item:
            raise DataError(
                path,
                line_number,
                f"no {text_key!r} field; each line needs {example} (or name the text field "
                "with `text_key`)",
            )
        text = item[text_key]
        if not isinstance(text, str):
            raise DataError(
                path,
                line_number,
                f"{text_key!r} is {json_type(text)}, not a string; write the text in quotes",
            )
        if "\\u" in line:  # an escape may be a lone surrogate, which no tokenizer takes
            problem = lone_surrogate(text_key, text)
            if problem is not None:
                raise DataError(path, line_number, problem)
        if not text.strip():
            empty += 1
            continue
        yield JsonLine(line_number, item, text)
    if empty and warn_empty:
        logger.warning("%s: skipped %d line(s) with an empty %r field", path, empty, text_key)


def json_type(value: Any) -> str:
    """What a JSON value is, as its file shows it: "an integer", "an object", "null"..."""
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a decimal number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }[type(value)]


def lone_surrogate(text_key: str, text: str) -> Optional[str]:
    """
    What is wrong with `text`, the `text_key` field of a JSON line, when it holds a lone
    surrogate escape (`"\\ud800"`), which no tokenizer takes; None when it holds none.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return (
            f"{text_key!r} holds a lone surrogate escape "
            f"(\\u{ord(text[error.start]):04x}, character {error.start + 1}), half of a "
            "UTF-16 pair and not a character; remove it or write the whole pair"
        )
    return None


class Document(NamedTuple):
    """One document: its position in the corpus (0-based, counting documents, not lines), file,
    1-based line and text."""

    index: int
    path: str
    line_number: int
    text: str


def is_json_lines(path: str) -> bool:
    """
    Whether `path` is read as JSON lines (by its name: `.jsonl`, `.ndjson` or `.json` in any case,
    optionally followed by `.gz`).
    """
    return _stem(path).endswith(_JSON_SUFFIXES)


def check_not_a_table(path: str, text_key: str = "text") -> None:
    """Raises `DataError` for a file named as a table (`.csv`, `.tsv`), which a reader of plain
    text would read header, label columns and all."""
    if _stem(path).endswith((".csv", ".tsv")):
        raise DataError(
            path,
            0,
            "a table (by its name), which would be read as plain text, its header and every "
            f'column trained on; give the text as JSON lines (`{{"{text_key}": ...}}`, '
            "named .jsonl) or one document per line (.txt)",
        )


def _stem(path: str) -> str:
    """`path` in lower case, less a `.gz` suffix."""
    name = path.lower()
    return name[: -len(".gz")] if name.endswith(".gz") else name


def iter_file_documents(path: str, text_key: str = "text") -> Iterator[Document]:
    """
    Yields the documents of one file, numbered from 0 within the file.

    # Parameters

    path : `str`
        A plain-text or JSON-lines file, optionally gzip-compressed.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in a JSON-lines file; ignored for plain text.
    """
    if is_json_lines(path):
        lines: Iterator[Tuple[int, str]] = (
            (line.line_number, line.text)
            for line in iter_json_lines(path, text_key=text_key, invalid_fix=_INVALID_FIX)
        )
    else:
        check_not_a_table(path, text_key)
        lines = _plain_text_lines(path, text_key)
    for index, (line_number, text) in enumerate(lines):
        yield Document(index, path, line_number, text)


def _plain_text_lines(path: str, text_key: str) -> Iterator[Tuple[int, str]]:
    """The non-blank lines of a plain-text file, the first checked not to be a JSON line."""
    lines = ((line_number, line) for line_number, line in iter_lines(path) if line.strip())
    for line_number, line in lines:
        try:
            item = json.loads(line) if line.lstrip().startswith("{") else None
        except json.JSONDecodeError:
            item = None
        if isinstance(item, dict) and isinstance(item.get(text_key), str):
            raise DataError(
                path,
                line_number,
                f"a JSON object with a {text_key!r} field, in a file read as plain text (one "
                "document per line, JSON and all, by its name); name it .jsonl to read its "
                f"{text_key!r} field",
            )
        yield line_number, line
        break
    yield from lines


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
