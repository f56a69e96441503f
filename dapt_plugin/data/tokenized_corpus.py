"""
Masked-LM training examples over cached, memory-mapped token ids (see `token_cache.py`).

Two ways to cut a corpus into examples:

- `line_by_line`: one example per document (line), with its special tokens, truncated to
  `max_length` (the end-of-sequence token is kept). Examples have different lengths and are padded
  per batch. This is the recipe of the paper's GPU runs.
- `packed`: the documents of all files, each with its special tokens (`<s> doc </s>`), are
  concatenated into one stream that is cut into blocks of exactly `max_length` tokens, as
  RoBERTa's FULL-SENTENCES and Hugging Face's `run_mlm.py` do; no padding is needed. The final
  remainder shorter than one block is dropped, so every example is a full block.

An example is fetched by index as a numpy array (a slice of the memory map); nothing is held per
token or per document beyond the offsets array of the cache.
"""
from typing import List

import numpy as np

from dapt_plugin.data.text_files import DataError
from dapt_plugin.data.token_cache import TokenizedFile

MODES = ("line_by_line", "packed")


class TokenizedCorpus:
    """
    # Parameters

    files : `List[TokenizedFile]`
        The cache entries of the corpus files, in order.
    paths : `List[str]`
        The corpus files, for messages.
    mode : `str`
        `"line_by_line"` or `"packed"`.
    max_length : `int`
        Tokens per example, special tokens included.
    eos_token_id : `int`
        Kept as the last token of a truncated line.
    """

    def __init__(self, files: List[TokenizedFile], paths: List[str], mode: str, max_length: int,
                 eos_token_id: int) -> None:
        self.files = files
        self.mode = mode
        self.max_length = max_length
        self.eos_token_id = eos_token_id
        if mode == "line_by_line":
            counts = [f.num_documents for f in files]
        else:
            counts = [f.num_tokens for f in files]
        self._starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        total = int(self._starts[-1])
        self._length = total if mode == "line_by_line" else total // max_length
        if self._length == 0:
            what = "no non-blank documents" if mode == "line_by_line" or total == 0 else (
                f"only {total} tokens, less than one packed block of max_length={max_length}"
            )
            raise DataError(", ".join(paths), 0, f"the corpus has {what}; give more text, or use "
                            "mode line_by_line / a smaller max_length")

    def __len__(self) -> int:
        return self._length

    @property
    def num_tokens(self) -> int:
        """Tokens the examples hold, special tokens included."""
        if self.mode == "packed":
            return self._length * self.max_length
        return int(sum(np.minimum(np.diff(f.offsets), self.max_length).sum() for f in self.files))

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self._length:
            raise IndexError(index)
        if self.mode == "line_by_line":
            file_index = int(self._starts.searchsorted(index, side="right")) - 1 if len(self.files) > 1 else 0
            ids = self.files[file_index].document(index - int(self._starts[file_index]))
            if len(ids) > self.max_length:
                ids = np.append(ids[: self.max_length - 1], np.asarray(self.eos_token_id, dtype=ids.dtype))
            return ids
        start, end = index * self.max_length, (index + 1) * self.max_length
        pieces = []
        file_index = int(self._starts.searchsorted(start, side="right")) - 1 if len(self.files) > 1 else 0
        while start < end:
            file_start = int(self._starts[file_index])
            file_end = int(self._starts[file_index + 1])
            stop = min(end, file_end)
            pieces.append(self.files[file_index].ids[start - file_start : stop - file_start])
            start = stop
            file_index += 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
