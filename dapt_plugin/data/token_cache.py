"""
The on-disk tokenization cache of masked-LM corpora.

Each corpus file is tokenized once, in batches, by the fast tokenizer, and stored as two flat
arrays: the token ids of every document with its special tokens (`<s> ... </s>` for RoBERTa),
one after the other (`ids.bin`, uint16 when the vocabulary fits, else uint32), and the offset
where each document starts (`offsets.bin`, int64, one more entry than documents). Later epochs
and later runs memory-map these arrays and never call the tokenizer; an example is a slice.

A cache entry is keyed by the SHA-256 of the file's bytes, the tokenizer (its full serialised
definition) and how text is taken from the file, so editing the corpus or changing the tokenizer
builds a new entry. Entries are written to a temporary directory and renamed into place, under
a file lock, so concurrent workers build an entry once and a killed build leaves nothing that
could be mistaken for a complete entry; the temporary directory a killed build leaves is removed
by the next run that reads the cache (never one whose build is still running: its builder holds
the lock). An entry is checked against its `meta.json` when opened: the sizes of its files, its
offsets, and, for a file whose modification time is not the one it was built with (written over
since, or copied without its times), the SHA-256 of its content; a damaged one is rebuilt, with
a warning.
"""

import contextlib
import errno
import hashlib
import itertools
import json
import logging
import os
import shutil
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from allennlp.common.checks import ConfigurationError
from allennlp.common.tqdm import Tqdm
from filelock import FileLock, Timeout
from more_itertools import chunked
from transformers import PreTrainedTokenizerFast

from dapt_plugin.common.atomic import atomic_directory, atomic_file, target_name
from dapt_plugin.data.documents import check_not_a_table, is_json_lines, iter_file_documents

logger = logging.getLogger(__name__)

_LOG_CHECKING_ABOVE = 1 << 30  # bytes; checking a larger file's content takes long enough to say so

# Part of every entry's key: raised whenever what an entry holds for the same file, tokenizer and
# text field changes, so that no entry built by the earlier rules is reused. 2: `.JSONL`,
# `.NDJSON` and `.json` names in any case are JSON lines, a plain-text file whose first line is a
# JSON object with the text field is refused, and so is a lone surrogate escape; a lone CR ends
# a line.
CACHE_FORMAT_VERSION = 2
DEFAULT_CACHE_DIRECTORY = os.path.join("~", ".cache", "dapt_plugin", "tokenized")


def default_cache_directory() -> str:
    """`$DAPT_PLUGIN_CACHE` if set, else `~/.cache/dapt_plugin/tokenized`."""
    return os.path.expanduser(os.environ.get("DAPT_PLUGIN_CACHE", DEFAULT_CACHE_DIRECTORY))


_SHA256_OF: Dict[Tuple[str, int, int, int], str] = {}


def file_sha256(path: str) -> str:
    """
    The SHA-256 of the file's bytes, computed once per process unless its size, modification time
    or status-change time change (the last catches a file written anew with its old times put
    back, which `cp -p` or `rsync -a` do).
    """
    stat = os.stat(path)
    memo = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if memo not in _SHA256_OF:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _SHA256_OF[memo] = digest.hexdigest()
    return _SHA256_OF[memo]


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerFast) -> str:
    definition = tokenizer.backend_tokenizer.to_str()
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{definition}".encode("utf-8")).hexdigest()


class DamagedEntry(Exception):
    """A cache entry whose files do not agree with its `meta.json`; the message says how."""


class TokenizedFile:
    """
    A memory-mapped cache entry: `num_documents` documents whose ids (with special tokens) are
    `ids[offsets[i]:offsets[i + 1]]`. Raises `DamagedEntry` when the files do not agree with
    `meta.json`: file sizes, the number of offsets, their first and last values and their order,
    and the content of a file whose modification time changed since it was built (`written`).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        try:
            with open(os.path.join(directory, "meta.json")) as handle:
                self.meta = json.load(handle)
            num_documents, num_tokens = (
                int(self.meta["num_documents"]),
                int(self.meta["num_tokens"]),
            )
            dtype = np.dtype(self.meta["dtype"])
            offsets_bytes = os.path.getsize(os.path.join(directory, "offsets.bin"))
            ids_bytes = os.path.getsize(os.path.join(directory, "ids.bin"))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DamagedEntry(
                f"{directory}: meta.json, offsets.bin or ids.bin is missing or unreadable ({error})"
            ) from None
        if offsets_bytes != (num_documents + 1) * 8:
            raise DamagedEntry(
                f"{directory}: offsets.bin has {offsets_bytes} bytes ({offsets_bytes // 8} "
                f"offsets); meta.json says {num_documents} documents, so {num_documents + 1} "
                "offsets"
            )
        if ids_bytes != num_tokens * dtype.itemsize:
            raise DamagedEntry(
                f"{directory}: ids.bin has {ids_bytes} bytes; meta.json says {num_tokens} "
                f"{dtype.name} tokens, so {num_tokens * dtype.itemsize}"
            )
        # Plain ndarray views of the memory maps (which they keep open): slicing an `np.memmap`
        # costs far more Python per slice, a large share of the time of building a batch
        # (`benchmarks/RESULTS.md`).
        self.offsets = np.memmap(
            os.path.join(directory, "offsets.bin"), dtype=np.int64, mode="r"
        ).view(np.ndarray)
        if self.offsets[0] != 0 or self.offsets[-1] != num_tokens:
            raise DamagedEntry(
                f"{directory}: offsets.bin runs from {self.offsets[0]} to {self.offsets[-1]}; "
                f"meta.json says from 0 to {num_tokens} tokens"
            )
        for start in range(
            0, num_documents, 1 << 24
        ):  # in blocks: the offsets may not fit in memory twice
            block = self.offsets[start : start + (1 << 24) + 1]
            if (block[1:] < block[:-1]).any():
                raise DamagedEntry(
                    f"{directory}: offsets.bin decreases after entry "
                    f"{start + int(np.argmax(block[1:] < block[:-1]))}"
                )
        self.ids = (
            np.memmap(
                os.path.join(directory, "ids.bin"), dtype=dtype, mode="r", shape=(num_tokens,)
            ).view(np.ndarray)
            if num_tokens
            else np.zeros(0, dtype=dtype)
        )
        # (entries built before `written` was recorded have their structure checked only)
        checked = False
        for name, written in self.meta.get("written", {}).items():
            path = os.path.join(directory, name)
            stat = os.stat(path)
            if stat.st_mtime_ns == written["mtime_ns"]:
                continue
            if stat.st_size > _LOG_CHECKING_ABOVE:
                logger.info("Checking %s, whose modification time changed since it was built", path)
            if file_sha256(path) != written["sha256"]:
                raise DamagedEntry(
                    f"{directory}: {name} was written over after it was built (its SHA-256 is not "
                    "the one meta.json holds)"
                )
            written["mtime_ns"] = stat.st_mtime_ns
            checked = True
        if checked:  # a copy without its times: checked once, not at every open
            with contextlib.suppress(OSError):  # a cache this user cannot write: at every open
                with atomic_file(os.path.join(directory, "meta.json")) as handle:
                    json.dump(self.meta, handle, indent=2)

    @property
    def num_documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    def document(self, index: int) -> np.ndarray:
        return self.ids[self.offsets[index] : self.offsets[index + 1]]


# what writing the cache fails with when its directory cannot take an entry
_CANNOT_WRITE = (
    None,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EEXIST,
    errno.ENOTDIR,
)
# the most characters of a document given to the tokenizer at once (see `TokenCache._encode`)
PIECE_CHARACTERS = 1 << 20


def _pieces(text: str) -> Iterator[str]:
    """
    `text` in pieces of at most `PIECE_CHARACTERS` characters, each after the first starting
    where a run of whitespace starts, at a space if there is one (where pre-tokenization splits
    words anyway, and where SentencePiece's `▁` for the space needs no mark of its own); a
    piece of a text without whitespace over that length is cut where it must be.
    """
    start = 0
    while len(text) - start > PIECE_CHARACTERS:
        end = start + PIECE_CHARACTERS
        cut = _cut(text, start, end, " ") or _cut(text, start, end, " \t\n\r\f\v") or end
        yield text[start:cut]
        start = cut
    yield text[start:]


def _cut(text: str, start: int, end: int, spaces: str) -> Optional[int]:
    """The last position in `(start, end)` of one of `spaces` after a character other than
    whitespace (where a run of whitespace starts), if any."""
    cut = max(text.rfind(space, start + 1, end) for space in spaces)
    while cut > start and text[cut - 1].isspace():
        cut = max(text.rfind(space, start + 1, cut) for space in spaces)
    return cut if cut > start else None


def special_token_counts(tokenizer: PreTrainedTokenizerFast) -> Tuple[int, int]:
    """How many special tokens `tokenizer` puts before and after a document (RoBERTa: 1 and 1)."""
    # through the tokenizer's own call, which turns off any padding or truncation that a
    # tokenizer.json carries (sentence-transformers' pads to 128 tokens)
    mask = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)[
        "special_tokens_mask"
    ]
    before = next(i for i, special in enumerate(mask) if not special)
    after = next(i for i, special in enumerate(reversed(mask)) if not special)
    return before, after


class TokenCache:
    """
    Finds or builds the cache entry of a corpus file for one tokenizer.

    # Parameters

    tokenizer : `PreTrainedTokenizerFast`
        The fast tokenizer of the model; its definition is part of the cache key.
    cache_directory : `str`, optional (default = `$DAPT_PLUGIN_CACHE` or `~/.cache/dapt_plugin/tokenized`)
        Where entries live. Safe to delete; entries are rebuilt when missing.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in jsonl files.
    batch_size : `int`, optional (default = `1000`)
        Documents per tokenizer call when building an entry.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        cache_directory: Optional[str] = None,
        text_key: str = "text",
        batch_size: int = 1000,
    ) -> None:
        self.tokenizer = tokenizer
        self.cache_directory = os.path.expanduser(cache_directory or default_cache_directory())
        self.text_key = text_key
        self.batch_size = batch_size
        self._tokenizer_fingerprint = tokenizer_fingerprint(tokenizer)
        self._dtype = "uint16" if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else "uint32"
        self._leftovers_removed = False  # once per cache object: a corpus may have many files

    def key(self, path: str) -> str:
        """The entry's name; the file is hashed once per process unless it changes."""
        parts = [
            f"v{CACHE_FORMAT_VERSION}",
            file_sha256(path),
            self._tokenizer_fingerprint,
            f"jsonl:{self.text_key}" if is_json_lines(path) else "text",
        ]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]

    def load(self, path: str) -> TokenizedFile:
        """The entry of `path`, built first if there is none or it is damaged."""
        check_not_a_table(path, self.text_key)  # by its name, which the entry's key leaves out
        directory = os.path.join(self.cache_directory, self.key(path))
        if not self._leftovers_removed:
            self._remove_leftovers()
            self._leftovers_removed = True
        if os.path.isdir(directory):
            try:
                entry = TokenizedFile(directory)
            except DamagedEntry as error:
                logger.warning("Damaged tokenization cache entry %s; rebuilding it", error)
            else:
                logger.info("Tokenization cache hit for %s: %s", path, directory)
                return entry
        try:
            os.makedirs(self.cache_directory, exist_ok=True)
            with FileLock(directory + ".lock"):
                if os.path.isdir(directory):
                    try:
                        # built by another process while this one waited
                        return TokenizedFile(directory)
                    except DamagedEntry:
                        shutil.rmtree(directory)
                self._build(path, directory)
        except OSError as error:
            # a full disk (numpy's short write has no errno), a read-only or another user's
            # directory, or a path of the cache's own that is a file; the rest is not the cache's
            inside = [
                os.path.abspath(name).startswith(os.path.abspath(self.cache_directory))
                for name in (error.filename, error.filename2)
                if isinstance(name, str)
            ]
            if error.errno not in _CANNOT_WRITE and not any(inside):
                raise
            raise ConfigurationError(
                f"building the tokenization cache entry of {path} in {self.cache_directory} "
                f"failed: {error}; where the cache's directory is full or not writable, free "
                f"space there or set DAPT_PLUGIN_CACHE to another directory (each corpus file "
                f"is tokenized into it once, then read)"
            ) from error
        return TokenizedFile(directory)

    def _remove_leftovers(self) -> None:
        """
        Removes the temporary directories of builds that were killed. A build holds the lock of
        its entry until its temporary directory is renamed into place, so a temporary directory
        whose lock can be taken belongs to a dead process; one whose lock is held is left alone,
        and so is one in a cache this user cannot write (whose lock it cannot create).
        """
        if not os.path.isdir(self.cache_directory):
            return
        for name in sorted(os.listdir(self.cache_directory)):
            key = target_name(name)
            if key is None:
                continue
            leftover = os.path.join(self.cache_directory, name)
            try:
                with FileLock(os.path.join(self.cache_directory, key + ".lock"), timeout=0):
                    if os.path.isdir(leftover):  # not renamed into place since it was listed
                        shutil.rmtree(leftover, ignore_errors=True)
                        logger.info("Removed %s, left by a killed tokenization", leftover)
            except Timeout:
                pass  # its build is running
            except OSError:
                pass  # a cache this user can read but not write: its entries are still read

    def _build(self, path: str, directory: str) -> None:
        logger.info("Tokenizing %s into the cache at %s", path, directory)
        # atomic_directory creates it as `mkdir` does (not private, as tempfile.mkdtemp would): the
        # cache is shared
        with atomic_directory(directory) as tmp:
            num_documents = 0
            num_tokens = 0
            digests = {"ids.bin": hashlib.sha256(), "offsets.bin": hashlib.sha256()}
            with (
                open(os.path.join(tmp, "ids.bin"), "wb") as ids_file,
                open(os.path.join(tmp, "offsets.bin"), "wb") as offsets_file,
            ):
                first = np.zeros(1, dtype=np.int64)
                first.tofile(offsets_file)
                digests["offsets.bin"].update(first)
                for batch in self._batches(path):
                    encoded = self._encode(batch)
                    lengths = np.fromiter(
                        (len(ids) for ids in encoded), dtype=np.int64, count=len(encoded)
                    )
                    flat = np.fromiter(
                        itertools.chain.from_iterable(encoded),
                        dtype=self._dtype,
                        count=int(lengths.sum()),
                    )
                    offsets = num_tokens + np.cumsum(lengths)
                    flat.tofile(ids_file)
                    offsets.tofile(offsets_file)
                    digests["ids.bin"].update(flat)
                    digests["offsets.bin"].update(offsets)
                    num_documents += len(encoded)
                    num_tokens += int(lengths.sum())
            meta = {
                "source": os.path.abspath(path),
                "num_documents": num_documents,
                "num_tokens": num_tokens,
                "dtype": self._dtype,
                "tokenizer": type(self.tokenizer).__name__,
                "format_version": CACHE_FORMAT_VERSION,
                # what each file held when it was written, and when (see `TokenizedFile`)
                "written": {
                    name: {
                        "sha256": digest.hexdigest(),
                        "mtime_ns": os.stat(os.path.join(tmp, name)).st_mtime_ns,
                    }
                    for name, digest in digests.items()
                },
            }
            with open(os.path.join(tmp, "meta.json"), "w") as handle:
                json.dump(meta, handle, indent=2)
        logger.info("Cached %d documents, %d tokens of %s", num_documents, num_tokens, path)

    def _encode(self, texts: List[str]) -> List[Sequence[int]]:
        """
        The token ids of each of `texts`, with its special tokens. A text of more than
        `PIECE_CHARACTERS` characters is tokenized in pieces cut before a whitespace, which the
        tokenizer splits words at anyway (the same tokens), so that memory stays bounded: the
        tokenizer holds about a hundred bytes per character of a text it is given whole, and a
        file of one line of a few hundred MB was killed for memory, without a word.
        """
        long = {i for i, text in enumerate(texts) if len(text) > PIECE_CHARACTERS}
        encoded: List[Sequence[int]] = self._tokenize(
            ["" if i in long else text for i, text in enumerate(texts)]
        )
        if long:
            before = special_token_counts(self.tokenizer)[0]
            around = np.asarray(encoded[min(long)], dtype=self._dtype)  # those of an empty text
            for i in long:
                # a piece at a time, its ids kept as an array: a list of Python ints (or the
                # tokenizer's output for every piece at once) would take as much memory again
                pieces = (
                    np.asarray(self._tokenize([piece], add_special_tokens=False)[0], self._dtype)
                    for piece in _pieces(texts[i])
                )
                encoded[i] = np.concatenate([around[:before], *pieces, around[before:]])
        return encoded

    def _tokenize(self, texts: List[str], add_special_tokens: bool = True) -> List[List[int]]:
        return self.tokenizer(
            texts,
            add_special_tokens=add_special_tokens,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]

    def _batches(self, path: str) -> Iterator[List[str]]:
        progress = Tqdm.tqdm(
            iter_file_documents(path, self.text_key),
            desc=f"tokenizing {os.path.basename(path)}",
            unit=" docs",
        )
        return chunked((document.text for document in progress), self.batch_size)
