"""
`allennlp adapt EXPERIMENT -s OUTPUT_DIR`: the paper's experiment (Table 5: the classifier
fine-tuned from the base model, after DAPT, after TAPT and after DAPT+TAPT, over several seeds;
optionally Table 8's kNN-TAPT and RAND-TAPT) in one resumable command. The experiment and every
phase's config are checked before the first phase starts; a re-run reuses the phases whose
fingerprint is unchanged. See `dapt_plugin/experiment/runner.py` and
`training_config/experiments/example.jsonnet`.
"""

import argparse
import signal
import sys

from allennlp.commands.subcommand import Subcommand
from allennlp.common.util import SigTermReceived

from dapt_plugin.experiment.runner import run_experiment
from dapt_plugin.experiment.spec import load_experiment


@Subcommand.register("adapt")
class Adapt(Subcommand):
    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Run Don't Stop Pretraining's experiment: DAPT, TAPT and fine-tuning for every "
            "variant and seed of an experiment file, resumably, with a results table. "
            "Everything is checked before the first phase; a re-run reuses the phases "
            "whose config, inputs and upstream phases are unchanged."
        )
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "experiment",
            help="experiment file (jsonnet), e.g. training_config/experiments/example.jsonnet",
        )
        subparser.add_argument(
            "-s",
            "--output-dir",
            required=True,
            help="directory for every run and the results; re-run the same command to "
            "resume, or after changing the experiment to redo only what changed",
        )
        subparser.add_argument(
            "-j",
            "--jobs",
            type=int,
            default=1,
            help="how many phases may run at once: each starts once the phases it "
            "starts from are complete, and they share the CPU cores; phases distributed over "
            "several devices need 1",
        )
        subparser.set_defaults(func=_adapt)
        return subparser


def _adapt(args: argparse.Namespace) -> None:
    """
    Runs the experiment. Stopped by Ctrl-C or SIGTERM (after stopping the phases it runs), it
    says so in one line, how to go on, and exits as a process killed by that signal reports it
    (130, 143), not with a traceback.
    """
    try:
        run_experiment(load_experiment(args.experiment), args.output_dir, args.jobs)
    except (KeyboardInterrupt, SigTermReceived) as interruption:
        number = signal.SIGTERM if isinstance(interruption, SigTermReceived) else signal.SIGINT
        message = (
            f"allennlp adapt stopped on {number.name}, and so did any phase it was running; "
            "run the same command again to go on from where it stopped"
        )
        sys.stderr.write(f"{message}\n")
        sys.exit(128 + number)
