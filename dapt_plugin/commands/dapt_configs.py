"""
`allennlp dapt-configs`: the directory of the plugin's training configs, or a copy of it to run
and edit where you work. A clone has them in `training_config/`; after `pip install`, they are
inside the installed package, and this is the way to them.

    allennlp dapt-configs                       # prints the directory
    allennlp dapt-configs -o training_config    # copies it: allennlp train training_config/...
"""

import argparse

from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError

from dapt_plugin.common.configs import config_dir, copy_configs
from dapt_plugin.version import VERSION


@Subcommand.register("dapt-configs")
class DaptConfigs(Subcommand):
    """
    Registered as a `Subcommand` with name "dapt-configs".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Print the directory of the plugin's training configs (dapt.jsonnet, "
            "tapt.jsonnet, classifier.jsonnet, lib/, experiments/), or copy them with -o."
        )
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "-o",
            "--output-dir",
            help="copy the configs to this directory, e.g. training_config; "
            "written completely or not at all",
        )
        subparser.add_argument(
            "--force",
            action="store_true",
            help="with -o: replace OUTPUT_DIR when it exists and is not empty",
        )
        subparser.set_defaults(func=dapt_configs_from_args)
        return subparser


def dapt_configs_from_args(args: argparse.Namespace) -> None:
    if args.output_dir is None:
        if args.force:
            raise ConfigurationError("--force replaces the directory of -o; give -o DIR")
        print(config_dir())
        return
    source = copy_configs(args.output_dir, args.force)
    print(f"Copied the configs of dapt_plugin {VERSION} from {source} to {args.output_dir}")
