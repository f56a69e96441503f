"""
How much of a corpus of long documents one pass of masked-LM training sees, in each `MLM_MODE`.

A generated corpus (`_common.TextGenerator`'s pseudo-words) of `--documents` documents of about
`--tokens` tokens each (default 400 x 3,000: a BioMed paper averages ~2.8K tokens) is read by the
`masked_lm_corpus` reader in each mode at `--max-length` (512, the paper's), all three from one
token-cache entry, and one pass of the `masked_lm_batches` loader (batch 16) is counted: the
content tokens (not special, not padding) of its batches over the content tokens of the corpus
(counted in the cache). The tokenizer is a byte-level BPE with RoBERTa's special tokens trained on
2 MB of the same kind of text (`--vocab-size`, 8,000), so that a word is about one token, as in
English with roberta-base's; the model is a tiny random RoBERTa (only its tokenizer and position
limit matter here). Takes well under a minute.

    .venv/bin/python benchmarks/corpus_coverage.py [--documents 400] [--tokens 3000] [--max-length 512]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import BATCH_SIZE, TextGenerator, append_results, markdown_table, write_corpus


def write_long_documents(path: Path, tokenizer, num_documents: int, tokens: int, seed: int) -> Path:
    """`num_documents` documents (lines) of about `tokens` tokens each: generated paragraphs joined."""
    generator = TextGenerator(seed)
    with open(path, "w") as handle:
        written = 0
        while written < num_documents:
            paragraphs = generator.chunk(2_000).decode().splitlines()
            lengths = [
                len(ids) for ids in tokenizer(paragraphs, add_special_tokens=False)["input_ids"]
            ]
            document, size = [], 0
            for paragraph, length in zip(paragraphs, lengths):
                document.append(paragraph)
                size += length
                if size >= tokens:
                    handle.write(" ".join(document) + "\n")
                    written += 1
                    document, size = [], 0
                    if written == num_documents:
                        break
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--tokens", type=int, default=3000, help="tokens per document (about)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import dapt_plugin  # noqa: F401
    from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
    from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
    from dapt_plugin.data.tokenized_corpus import MODES
    from dapt_plugin.testing.tiny_model import build_tiny_roberta

    with tempfile.TemporaryDirectory(prefix="dapt_bench_coverage_") as tmp:
        work = Path(tmp)
        model = build_tiny_roberta(
            work / "model",
            [write_corpus(work / "bpe.txt", 2_000_000, seed=99)],
            vocab_size=args.vocab_size,
        )
        readers = {
            mode: MaskedLmCorpusReader(
                str(model),
                mode=mode,
                max_length=args.max_length,
                cache_directory=str(work / "cache"),
            )
            for mode in MODES
        }
        tokenizer = readers["document_windows"].tokenizer
        corpus = write_long_documents(
            work / "corpus.txt", tokenizer, args.documents, args.tokens, args.seed
        )
        special = np.array(tokenizer.all_special_ids)
        start = time.perf_counter()
        entry = readers["document_windows"].corpus(str(corpus)).files[0]
        tokenizing = time.perf_counter() - start
        content = int(np.isin(entry.ids, special, invert=True).sum())
        document_tokens = np.diff(entry.offsets) - sum(readers["document_windows"].special_tokens)
        rows = []
        for mode in MODES:
            loader = MaskedLmBatches(
                readers[mode], str(corpus), BATCH_SIZE, shuffle=True, seed=args.seed
            )
            assert (
                loader.corpus.files[0].directory == entry.directory
            )  # one cache entry for all modes
            seen = lengths = examples = 0
            for batch in loader:  # one pass
                ids = batch["input_ids"].numpy()
                seen += int(np.isin(ids, special, invert=True).sum())
                lengths += int((ids != tokenizer.pad_token_id).sum())
                examples += len(ids)
            assert seen == loader.corpus.num_covered_tokens, (
                mode,
                seen,
                loader.corpus.num_covered_tokens,
            )
            rows.append(
                [
                    f"`{mode}`",
                    f"{examples:,}",
                    f"{lengths / examples:.0f}",
                    f"{seen:,} / {content:,}",
                    f"**{seen / content:.2%}**",
                ]
            )
        print(f"tokenized once in {tokenizing:.1f} s", flush=True)

    table = markdown_table(
        [
            "MLM_MODE",
            "examples per pass",
            "mean tokens per example",
            "content tokens trained per pass / in corpus",
            "share trained per pass",
        ],
        rows,
    )
    notes = (
        f"Corpus: {args.documents} generated documents of {int(document_tokens.mean()):,} tokens on average "
        f"({int(document_tokens.min()):,} to {int(document_tokens.max()):,}; special tokens not counted), "
        f"MAX_LENGTH={args.max_length}, a byte-level BPE of {args.vocab_size:,} tokens; one token-cache entry "
        f"(tokenized once, {tokenizing:.1f} s) serves all three modes. Counted in the batches of one pass of the "
        f"`masked_lm_batches` loader (batch {BATCH_SIZE}, shuffled): tokens that are neither special nor padding; "
        "each figure equals the reader's `covered_share`, which runs record in `metrics.json` as "
        "`corpus_tokens_trained_share`. `document_windows` (the DAPT default) trains on every token of every "
        "document; `packed` drops only the final partial block; `line_by_line` trains on each document's first "
        f"{args.max_length - 2} tokens only."
    )
    append_results("Corpus coverage: share of tokens trained per pass, by MLM_MODE", table, notes)


if __name__ == "__main__":
    main()
