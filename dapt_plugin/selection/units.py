"""
The units kNN-TAPT and RAND-TAPT select: whole documents, or sentences (the paper embedded the
sentences of a domain sample, and selected sentences).

Sentences are found by a dependency-free rule, fast enough for billions of words (no model, no
download): a sentence ends at a run of `.`, `!` or `?` (closing quotes and brackets may follow),
followed by whitespace, where

- `!` and `?` always end a sentence;
- a `.` standing alone (pre-tokenized text, "the channel . we found") always ends one;
- a `.` ending a word ends one when the next word begins with an uppercase letter, a digit, or an
  opening quote or bracket, unless the word is a single letter (initials, "J. Smith") or one of a
  few common abbreviations (`ABBREVIATIONS`: "e.g.", "Fig.", "et al." ...);

and a blank line always ends one. So "e.g. the cells" and "et al. found" stay whole, while a
sentence that begins in lowercase after a `.` attached to a word ("... in vivo. mRNA levels")
stays joined to the one before. Each sentence is stripped of surrounding whitespace; empty ones
are dropped.
"""

import re
from typing import Iterator, List, Literal, Tuple

from dapt_plugin.data.documents import iter_documents

Unit = Literal["sentence", "document"]
UNITS = ("sentence", "document")

ABBREVIATIONS = frozenset(
    "al approx ca cf dr eq eqs etc e.g fig figs i.e jr mr mrs ms no nos prof ref refs sr st "
    "vs viz".split()
)

_BLANK_LINE = re.compile(r"\n\s*\n")
# the end of a sentence candidate: final punctuation, closing quotes/brackets, whitespace
_BOUNDARY = re.compile(r"([.!?]+)([\"')\]]*)\s+")
_SENTENCE_START = re.compile(r"[\"'(\[]?[A-Z0-9]")
_WORD_BEFORE = re.compile(r"(\S*)$")


def split_sentences(text: str) -> List[str]:
    """
    The sentences of `text` by the module's rule, in order, stripped, none empty.

    # Parameters

    text : `str`
        A document.
    """
    sentences = []
    for paragraph in _BLANK_LINE.split(text):
        start = 0
        for boundary in _BOUNDARY.finditer(paragraph):
            if _ends_sentence(paragraph, start, boundary):
                sentences.append(paragraph[start : boundary.end()].strip())
                start = boundary.end()
        sentences.append(paragraph[start:].strip())
    return [sentence for sentence in sentences if sentence]


def _ends_sentence(paragraph: str, start: int, boundary: "re.Match[str]") -> bool:
    if "!" in boundary.group(1) or "?" in boundary.group(1):
        return True
    word = _WORD_BEFORE.search(paragraph, start, boundary.start()).group(1)
    if not word:
        return True  # a full stop standing alone
    if not _SENTENCE_START.match(paragraph, boundary.end()):
        return False
    bare = word.lower().lstrip("\"'([")
    return not (len(bare) == 1 and bare.isalpha()) and bare not in ABBREVIATIONS


def iter_units(paths: List[str], text_key: str, unit: Unit) -> Iterator[Tuple[str, int]]:
    """
    `(text, position)` of each unit of a corpus, in corpus order: its documents, or the sentences
    of its documents; `position` numbers the units from 0. The same corpus gives the same units
    and positions every time it is read.

    # Parameters

    paths : `List[str]`
        The corpus's files (txt or jsonl, optionally `.gz`).
    text_key : `str`
        Field holding the text in JSON-lines files.
    unit : `str`
        `"document"` or `"sentence"`.
    """
    position = 0
    for document in iter_documents(paths, text_key):
        for text in split_sentences(document.text) if unit == "sentence" else [document.text]:
            yield text, position
            position += 1
