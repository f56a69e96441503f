"""
Masked-LM training examples over cached, memory-mapped token ids (see `token_cache.py`).

The cache stores each document with the special tokens the tokenizer puts around it (`<s> doc
</s>` for RoBERTa); its *content tokens* are those in between. Three ways to cut a corpus into
examples, all from the same cache entry (changing the mode never re-tokenizes):

- `document_windows`: every document is split into consecutive windows of `max_length` tokens,
  special tokens included: each window holds the next `max_length - num_special` content tokens
  with the document's own start and end tokens around them. The last window of a document is
  kept, shorter; no window spans two documents; a document shorter than one window is one
  example, exactly as in `line_by_line`. One pass covers every content token of every document
  exactly once.
- `packed`: the documents of all files, each with its special tokens, are concatenated into one
  stream that is cut into blocks of exactly `max_length` tokens, as RoBERTa's FULL-SENTENCES and
  Hugging Face's `run_mlm.py` do; no padding is needed. The final remainder shorter than one block
  is dropped, so every example is a full block.
- `line_by_line`: one example per document (line), truncated to `max_length` (its end tokens are
  kept). A document longer than `max_length` contributes its opening only. This is the recipe of
  the paper's GPU runs.

Examples of `document_windows` and `line_by_line` have different lengths and are padded per batch.
An example is fetched by index as a numpy array: a slice of the memory map, or, for a window
that needs its document's special tokens around it, a copy of at most `max_length` ids. Nothing
is held per token; `document_windows` holds one int64 per document (where its windows start).

`covered_share` is the share of the corpus's content tokens that one pass over the examples
covers: 1.0 for `document_windows`, 1.0 less the dropped tail for `packed`, less for
`line_by_line` when documents are longer than `max_length`. `coverage_warning` says when more
than 5% is left out, and what to do.
"""

from typing import List, Optional, Tuple

import numpy as np

from dapt_plugin.common.console import some_of
from dapt_plugin.data.text_files import DataError
from dapt_plugin.data.token_cache import TokenizedFile

MODES = ("document_windows", "packed", "line_by_line")
# a corpus whose examples leave out more than this share of its content tokens gets a warning
MAX_UNCOVERED_SHARE = 0.05


class TokenizedCorpus:
    """
    # Parameters

    files : `List[TokenizedFile]`
        The cache entries of the corpus files, in order.
    paths : `List[str]`
        The corpus files, for messages.
    mode : `str`
        `"document_windows"`, `"packed"` or `"line_by_line"` (see the module docstring).
    max_length : `int`
        Tokens per example, special tokens included; more than `sum(special_tokens)`.
    special_tokens : `Tuple[int, int]`
        How many special tokens each cached document starts and ends with (`special_token_counts`).
    """

    def __init__(
        self,
        files: List[TokenizedFile],
        paths: List[str],
        mode: str,
        max_length: int,
        special_tokens: Tuple[int, int],
    ) -> None:
        self.files = files
        self.paths = paths
        self.mode = mode
        self.max_length = max_length
        self.num_before, self.num_after = special_tokens
        # content tokens per example: a window's, or what line_by_line keeps of a document
        self.window_content = max_length - self.num_before - self.num_after
        self.num_documents = sum(f.num_documents for f in files)
        num_special = self.num_documents * (self.num_before + self.num_after)
        self.num_content_tokens = sum(f.num_tokens for f in files) - num_special
        self._window_starts: List[
            np.ndarray
        ] = []  # document_windows: each file's, one per document and one more
        self.num_truncated_documents = 0  # line_by_line: documents cut to their opening
        if mode == "document_windows":
            for f in files:
                windows = -(-self._content_lengths(f) // self.window_content)
                self._window_starts.append(np.concatenate([[0], np.cumsum(windows)]))
            counts = [int(starts[-1]) for starts in self._window_starts]
        elif mode == "line_by_line":
            counts = [f.num_documents for f in files]
        else:
            counts = [f.num_tokens for f in files]
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        total = int(self._starts[-1])
        self._length = total // max_length if mode == "packed" else total
        if self._length == 0:
            if mode == "packed" and total:
                what = (
                    f"only {total} tokens, less than one packed block of max_length={max_length}; give more "
                    "text, or use mode document_windows or a smaller max_length"
                )
            else:
                what = "no non-blank documents; give more text"
            raise DataError(some_of(paths), 0, f"the corpus has {what}")
        if mode == "document_windows":
            self.num_covered_tokens = self.num_content_tokens
        elif mode == "line_by_line":
            self.num_covered_tokens = 0
            for f in files:
                lengths = self._content_lengths(f)
                self.num_covered_tokens += int(np.minimum(lengths, self.window_content).sum())
                self.num_truncated_documents += int((lengths > self.window_content).sum())
        else:
            self.num_covered_tokens = self._packed_content_tokens(self._length * max_length)

    def _content_lengths(self, file: TokenizedFile) -> np.ndarray:
        return np.maximum(np.diff(file.offsets) - (self.num_before + self.num_after), 0)

    def _packed_content_tokens(self, end: int) -> int:
        """The content tokens of the packed stream's first `end` tokens."""
        if end == 0:
            return 0
        file_index = self._file_of(end - 1)
        covered = sum(f.num_tokens for f in self.files[:file_index]) - (
            sum(f.num_documents for f in self.files[:file_index])
            * (self.num_before + self.num_after)
        )
        file, stop = self.files[file_index], end - int(self._starts[file_index])
        document = (
            int(file.offsets.searchsorted(stop, side="right")) - 1
        )  # the document the blocks end in
        covered += int(file.offsets[document]) - document * (self.num_before + self.num_after)
        if document < file.num_documents:
            content = (
                int(file.offsets[document + 1] - file.offsets[document])
                - self.num_before
                - self.num_after
            )
            covered += min(max(stop - int(file.offsets[document]) - self.num_before, 0), content)
        return covered

    def content_tokens(self, examples: np.ndarray) -> int:
        """The content tokens that the examples numbered `examples` hold."""
        if self.mode == "packed":
            return sum(
                self._packed_content_tokens((int(index) + 1) * self.max_length)
                - self._packed_content_tokens(int(index) * self.max_length)
                for index in examples
            )
        specials = self.num_before + self.num_after
        return sum(len(self[int(index)]) - specials for index in examples)

    @property
    def covered_share(self) -> float:
        """The share of the corpus's content tokens that one pass over the examples covers."""
        return self.num_covered_tokens / self.num_content_tokens if self.num_content_tokens else 0.0

    def coverage_warning(self) -> Optional[str]:
        """What a user should read when one pass leaves out more than 5% of the content tokens, else `None`."""
        left_out = 1.0 - self.covered_share
        if left_out <= MAX_UNCOVERED_SHARE:
            return None
        if self.mode == "line_by_line":
            why = (
                f"{self.num_truncated_documents:,} of its {self.num_documents:,} documents are longer than "
                f"max_length={self.max_length} and only their first {self.window_content} tokens are used"
            )
        else:
            tail = int(self._starts[-1]) - self._length * self.max_length
            why = f"its final {tail:,} tokens, less than one block of max_length={self.max_length}, are dropped"
        return (
            f"MLM_MODE={self.mode} (the reader's `mode`) leaves {left_out:.1%} of the tokens of "
            f"{some_of(self.paths)} out of every pass: {why}. Set MLM_MODE=document_windows to use every "
            "token of every document"
        )

    def examples_of_documents(self, documents: np.ndarray) -> np.ndarray:
        """
        The (sorted) indices of the examples made from the documents numbered `documents` (sorted,
        counted over all files): one each in `line_by_line`, all of its windows in
        `document_windows`. `packed` blocks span documents, so there they have none of their own.
        """
        if self.mode == "line_by_line":
            return np.asarray(documents, dtype=np.int64)
        if self.mode != "document_windows":
            raise ValueError(f"examples of mode {self.mode!r} do not belong to single documents")
        document_starts = np.cumsum([0] + [f.num_documents for f in self.files])
        examples = []
        for file_index, window_starts in enumerate(self._window_starts):
            local = documents[
                (documents >= document_starts[file_index])
                & (documents < document_starts[file_index + 1])
            ]
            local = local - document_starts[file_index]
            first, last = window_starts[local], window_starts[local + 1]
            ranges = [np.arange(a, b) for a, b in zip(first, last)]
            if ranges:
                examples.append(np.concatenate(ranges) + self._starts[file_index])
        return (
            np.concatenate(examples).astype(np.int64) if examples else np.zeros(0, dtype=np.int64)
        )

    def _file_of(self, index: int) -> int:
        return int(self._starts.searchsorted(index, side="right")) - 1 if len(self.files) > 1 else 0

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self._length:
            raise IndexError(index)
        if self.mode == "packed":
            return self._block(index)
        file_index = self._file_of(index)
        file, local = self.files[file_index], index - int(self._starts[file_index])
        if self.mode == "line_by_line":
            ids = file.document(local)
            if len(ids) > self.max_length:
                ids = np.concatenate(
                    [ids[: self.max_length - self.num_after], ids[len(ids) - self.num_after :]]
                )
            return ids
        window_starts = self._window_starts[file_index]
        document = int(window_starts.searchsorted(local, side="right")) - 1
        start, end = int(file.offsets[document]), int(file.offsets[document + 1])
        first = (
            start + self.num_before + (local - int(window_starts[document])) * self.window_content
        )
        last = min(first + self.window_content, end - self.num_after)
        if first == start + self.num_before and last == end - self.num_after:
            return file.ids[start:end]  # the whole document
        return np.concatenate(
            [
                file.ids[start : start + self.num_before],
                file.ids[first:last],
                file.ids[end - self.num_after : end],
            ]
        )

    def _block(self, index: int) -> np.ndarray:
        start, end = index * self.max_length, (index + 1) * self.max_length
        pieces = []
        file_index = self._file_of(start)
        while start < end:
            file_start = int(self._starts[file_index])
            file_end = int(self._starts[file_index + 1])
            stop = min(end, file_end)
            pieces.append(self.files[file_index].ids[start - file_start : stop - file_start])
            start = stop
            file_index += 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
