"""
`allennlp select-tapt-data`: picks domain sentences (or documents) to add to a task's TAPT
corpus, the paper's kNN-TAPT (the `k` nearest units of each task example, from a random pool of
the domain) or its RAND-TAPT control (a random sample of the same size). The work is done by
`dapt_plugin.selection.tapt_selection`.

    allennlp select-tapt-data --task task/train.jsonl --domain biomed.txt.gz \\
        --output knn_tapt.jsonl --k 50
    allennlp select-tapt-data --task task/train.jsonl --domain biomed.txt.gz \\
        --output rand_tapt.jsonl --method random --size "$(wc -l < knn_tapt.jsonl)"
"""

import argparse
import sys

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError

from dapt_plugin.common.console import with_option_names
from dapt_plugin.common.optional_dependencies import MissingDependency
from dapt_plugin.data.text_files import DataError
from dapt_plugin.selection.options import POOL_SIZE


@Subcommand.register("select-tapt-data")
class SelectTaptData(Subcommand):
    """
    Registered as a `Subcommand` with name "select-tapt-data".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Select domain sentences (or documents) for task-adaptive pretraining: the k "
            "nearest neighbours of each task example (kNN-TAPT) or a random sample "
            "(RAND-TAPT), from a deduplicated random pool of the domain. Writes JSON lines "
            "with a 'text' field, one unit per line, which the TAPT config reads like a task's "
            "train.jsonl."
        )
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "--task",
            required=True,
            help="the task's examples, e.g. train.jsonl (txt or jsonl, "
            "optionally .gz; a glob or comma-separated list)",
        )
        subparser.add_argument(
            "--domain", required=True, help="the domain corpus to select from (same formats)"
        )
        subparser.add_argument(
            "--output", required=True, help="the selection to write, ending in .jsonl or .jsonl.gz"
        )
        subparser.add_argument(
            "--method", default="knn", help="knn (kNN-TAPT) or random (RAND-TAPT)"
        )
        subparser.add_argument(
            "--k",
            type=int,
            default=50,
            help="neighbours per task example (the paper used 50, 150, 500); "
            "random without --size samples k x task examples",
        )
        subparser.add_argument(
            "--size",
            type=int,
            default=None,
            help="random only: units to sample; pass the line count of a kNN selection to match it",
        )
        subparser.add_argument(
            "--unit",
            default="sentence",
            help="what is selected: sentence (the paper's unit) or document",
        )
        subparser.add_argument(
            "--pool-size",
            type=int,
            default=POOL_SIZE,
            help="distinct units of the domain, drawn at random with --seed, that are searched "
            "or sampled (the paper: 1M sentences); all of them when the domain has fewer",
        )
        subparser.add_argument(
            "--embedder",
            default="lsa",
            help="kNN: lsa (latent semantic analysis, seconds) or vampire (a bag-of-words VAE "
            "as the paper used, minutes on CPU)",
        )
        subparser.add_argument(
            "--text-key", default="text", help="field holding the text in jsonl files"
        )
        subparser.add_argument(
            "--dimension",
            type=int,
            default=None,
            help="embedding dimensions (default: 128 for lsa, 64 for vampire)",
        )
        subparser.add_argument(
            "--chunk-size",
            type=int,
            default=50000,
            help="units embedded and searched at a time; bounds memory",
        )
        subparser.add_argument(
            "--approximate-above",
            type=int,
            default=1000000,
            help="exact search up to this many pooled units, approximate "
            "(IVF) above; 0 always approximates",
        )
        subparser.add_argument(
            "--nlist",
            type=int,
            default=None,
            help="approximate: IVF cells (default: 4 x sqrt(pooled units))",
        )
        subparser.add_argument(
            "--nprobe", type=int, default=128, help="approximate: cells searched per task example"
        )
        subparser.add_argument(
            "--sample-size",
            type=int,
            default=100000,
            help="pooled units sampled to fit the embedder and train the approximate index",
        )
        subparser.add_argument(
            "--seed", type=int, default=0, help="seed of the pool, the sampling and the embedder"
        )
        subparser.set_defaults(func=select_tapt_data_from_args)
        return subparser


def select_tapt_data_from_args(args: argparse.Namespace) -> None:
    # imported when the command runs: `import dapt_plugin` leaves the selection back-end out
    from dapt_plugin.selection.tapt_selection import select_tapt_data

    try:
        result = select_tapt_data(
            args.task,
            args.domain,
            args.output,
            k=args.k,
            method=args.method,
            size=args.size,
            unit=args.unit,
            pool_size=args.pool_size,
            embedder=args.embedder,
            text_key=args.text_key,
            dimension=args.dimension,
            chunk_size=args.chunk_size,
            approximate_above=args.approximate_above,
            nlist=args.nlist,
            nprobe=args.nprobe,
            sample_size=args.sample_size,
            seed=args.seed,
        )
    except (ConfigurationError, DataError, MissingDependency) as error:
        sys.exit(f"allennlp select-tapt-data: error: {with_option_names(str(error), vars(args))}")
    how = f", {result.search} search in a pool of {result.pool:,}" if result.search else ""
    print(
        f"Selected {result.units:,} of {result.domain_units:,} domain {result.unit}s "
        f"({result.method}{how}); written to {result.path}"
    )
