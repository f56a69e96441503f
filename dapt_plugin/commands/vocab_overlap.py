"""
`allennlp vocab-overlap`: how similar named corpora are, by the overlap of their most frequent
words (the paper's Figure 2). The work is done by `dapt_plugin.overlap.vocab_overlap`.

    allennlp vocab-overlap PT=pt_sample.txt BioMed=s2orc_bio.txt.gz Task=task/train.jsonl \\
        --output-dir overlap/ [--sample 50000 --seed 0] [--min-df 3]
"""

import argparse
import sys
from typing import Dict, List

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError

from dapt_plugin.common.console import with_option_names
from dapt_plugin.data.text_files import DataError


@Subcommand.register("vocab-overlap")
class VocabOverlap(Subcommand):
    """
    Registered as a `Subcommand` with name "vocab-overlap".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Compare corpora by the overlap (percent) of their most frequent words, "
            "English stop words excluded; writes vocab_overlap.json and a heatmap "
            "vocab_overlap.png."
        )
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "corpora",
            nargs="+",
            metavar="NAME=PATH",
            help="a corpus and the name it has in the outputs, e.g. BioMed=data/biomed.txt.gz; "
            "PATH may be a glob or a comma-separated list; txt (one document per line) or "
            "jsonl (a 'text' field), optionally gzipped",
        )
        subparser.add_argument(
            "--output-dir",
            required=True,
            help="directory for vocab_overlap.json and vocab_overlap.png",
        )
        subparser.add_argument(
            "--top-k",
            type=int,
            default=None,
            help="most frequent words compared per corpus (default 10000, as in the paper)",
        )
        subparser.add_argument(
            "--min-df",
            type=int,
            default=None,
            help="compare every word found in at least N documents, with no top-k cut: the "
            "paper's released script (scripts/vocab_overlap.py) used 3",
        )
        subparser.add_argument(
            "--sample",
            type=int,
            default=None,
            help="count a random sample of N documents of each corpus (default: all)",
        )
        subparser.add_argument("--seed", type=int, default=0, help="seed of --sample")
        subparser.add_argument(
            "--max-documents",
            type=int,
            default=None,
            help="read only the first N documents of each corpus (default: all)",
        )
        subparser.add_argument(
            "--text-key", default="text", help="field holding the text in jsonl files"
        )
        subparser.set_defaults(func=vocab_overlap_from_args)
        return subparser


def parse_corpora(specs: List[str]) -> Dict[str, str]:
    """Turns `NAME=PATH` arguments into an ordered name -> path mapping."""
    corpora: Dict[str, str] = {}
    for spec in specs:
        name, separator, path = spec.partition("=")
        name = name.strip()
        if not separator or not name or not path.strip():
            raise ConfigurationError(
                f"corpus argument {spec!r} is not NAME=PATH; name every "
                "corpus, e.g. BioMed=data/biomed.txt"
            )
        if name in corpora:
            raise ConfigurationError(f"corpus name {name!r} is given twice; names must be unique")
        corpora[name] = path
    return corpora


def vocab_overlap_from_args(args: argparse.Namespace) -> None:
    try:
        # Imported here: matplotlib is optional, and `import dapt_plugin` should not need it.
        from dapt_plugin.overlap.vocab_overlap import vocab_overlap
    except ImportError as error:
        sys.exit(f"allennlp vocab-overlap: error: {error}")
    try:
        json_path, png_path = vocab_overlap(
            parse_corpora(args.corpora),
            args.output_dir,
            # the paper's 10K most frequent words, unless the released script's `--min-df` is given
            top_k=10000 if args.top_k is None and args.min_df is None else args.top_k,
            max_documents=args.max_documents,
            text_key=args.text_key,
            sample=args.sample,
            seed=args.seed,
            min_df=args.min_df,
        )
    except (ConfigurationError, DataError) as error:
        sys.exit(f"allennlp vocab-overlap: error: {with_option_names(str(error), vars(args))}")
    print(f"Vocabulary overlap written to {json_path} and {png_path}")
