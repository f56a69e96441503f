"""
Reading text corpora line by line, shared by every reader of the plugin: plain or gzip-compressed
files, several paths or glob patterns, UTF-8 with or without a byte-order mark, LF or CRLF line
endings. Problems are reported as `DataError`s naming the file and the line.
"""

import glob
import gzip
import json
import os
from typing import IO, Iterator, List, Sequence, Tuple, Union

PathSpec = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]

_BOM = b"\xef\xbb\xbf"


class DataError(ValueError):
    """
    A problem with an input file, always naming the file (and the 1-based line where there is
    one) and what to do about it. The run stops; nothing is written because of the bad input.
    """

    def __init__(self, path: Union[str, os.PathLike], line_number: int, message: str) -> None:
        shown = os.fspath(path)
        if shown.strip() != shown or not shown:  # spaces around it, which would not show
            shown = json.dumps(shown)
        location = f"{shown}:{line_number}" if line_number else shown
        super().__init__(f"{location}: {message}")
        self.message = message
        self.path = os.fspath(path)
        self.line_number = line_number


def expand_paths(spec: PathSpec) -> List[str]:
    """
    Turns one path, a glob pattern, a comma-separated list, or a list of any of these into the
    sorted list of files it names. A string that is itself an existing file, or a pattern that
    matches files, is taken whole even if its name contains commas. A pattern or path that
    matches nothing, a directory, or a spec that names no path at all (`""`, `" "`, `","`) is
    an error.
    """
    split_note = ""
    if isinstance(spec, (str, os.PathLike)):
        whole = os.fspath(spec)
        if os.path.isfile(whole) or (glob.has_magic(whole) and glob.glob(whole)):
            items = [whole]
        else:
            items = [part.strip() for part in whole.split(",") if part.strip()]
            if len(items) > 1:
                split_note = (
                    f"; {whole!r} was split at its commas into {items}: match a file whose "
                    "name has a comma with `?` in its place"
                )
    else:
        items = [os.fspath(item).strip() for item in spec]
    if not items:
        raise DataError(
            os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else "[]",
            0,
            "names no file; give a path, a glob pattern or a comma-separated list of them",
        )
    paths: List[str] = []
    for item in items:
        if glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise DataError(item, 0, f"the pattern matches no file; check the path{split_note}")
        elif not os.path.exists(item):
            raise DataError(
                item,
                0,
                "no such file; check the path (relative paths are resolved "
                f"from the directory `allennlp` runs in){split_note}",
            )
        else:
            matches = [item]
        for path in matches:
            if os.path.isdir(path):
                raise _directory_error(path)
        paths.extend(matches)
    return paths


def _directory_error(path: str) -> DataError:
    return DataError(
        path, 0, f"is a directory; give the files in it, e.g. {os.path.join(path, '*.txt')}"
    )


def open_binary(path: str) -> IO[bytes]:
    """Opens `path` for reading bytes, decompressing it if its name ends in `.gz` (any case)."""
    try:
        if path.lower().endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except IsADirectoryError:
        raise _directory_error(path) from None
    except OSError as error:
        raise DataError(
            path, 0, f"cannot be read ({error.strerror}); check that it exists and its permissions"
        ) from error


def iter_lines(path: str) -> Iterator[Tuple[int, str]]:
    """
    Yields `(line_number, text)` for every line of `path`, without its line ending (LF, CRLF or
    a lone CR, as Python's text mode reads them) and without a leading UTF-8 byte-order mark.
    Invalid UTF-8 or NUL bytes stop with a `DataError` naming the line: both mean the file is not
    the text it was taken for.
    """
    with open_binary(path) as handle:
        yield from decoded_lines(path, handle)


def decoded_lines(path: str, handle: IO[bytes]) -> Iterator[Tuple[int, str]]:
    """`iter_lines` of a file already open for reading bytes, `path` naming it in messages."""
    line_number = 0
    try:
        for raw in handle:
            if line_number == 0 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            raw = raw.rstrip(b"\n")  # a line read from a binary file ends at its only LF
            if b"\r" in raw:
                raw = raw[:-1] if raw.endswith(b"\r") else raw
                # a lone CR ends a line too (classic Mac OS files), as in Python's text mode
                if b"\r" in raw:
                    *earlier, raw = raw.split(b"\r")
                    for piece in earlier:
                        line_number += 1
                        yield line_number, _decoded(path, line_number, piece)
            line_number += 1
            yield line_number, _decoded(path, line_number, raw)
    except (OSError, EOFError) as error:
        raise DataError(
            path,
            line_number + 1,
            f"cannot be read ({error}); the file may be truncated or not gzip",
        ) from error


def _decoded(path: str, line_number: int, raw: bytes) -> str:
    if b"\x00" in raw:
        raise DataError(
            path, line_number, "contains NUL bytes; is it a binary file? Give a UTF-8 text file"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            path,
            line_number,
            f"not valid UTF-8 (byte {error.start} of the line); re-encode the file as UTF-8, "
            "e.g. `iconv -f latin1 -t utf-8`",
        ) from None
