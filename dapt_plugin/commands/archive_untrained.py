"""
`allennlp archive-untrained`: archives the model a training config starts from, without training,
so that `allennlp evaluate` can measure it. The paper's comparison of masked-LM loss on
held-out domain text before and after DAPT is then:

    MODEL_NAME=roberta-base CORPUS_PATH=... allennlp archive-untrained training_config/dapt.jsonnet -s runs/base
    allennlp evaluate runs/base/model.tar.gz heldout.txt
    allennlp evaluate runs/dapt/model.tar.gz heldout.txt
"""

import argparse
import logging
import os

import torch
from allennlp.commands.subcommand import Subcommand
from allennlp.common.checks import ConfigurationError
from allennlp.common.meta import META_NAME, Meta
from allennlp.common.params import Params
from allennlp.common.util import prepare_environment
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.models.archival import CONFIG_NAME, archive_model

from dapt_plugin.common.atomic import check_writable_path

logger = logging.getLogger(__name__)


@Subcommand.register("archive-untrained")
class ArchiveUntrained(Subcommand):
    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Archive the model of a training config as it is before training (e.g. the "
            "base model of dapt.jsonnet), for `allennlp evaluate`."
        )
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "param_path", help="training config, e.g. training_config/dapt.jsonnet"
        )
        subparser.add_argument(
            "-s",
            "--serialization-dir",
            required=True,
            help="new directory for the archive (model.tar.gz)",
        )
        subparser.add_argument("-o", "--overrides", default="", help="JSON overrides of the config")
        subparser.set_defaults(func=archive_untrained_from_args)
        return subparser


def archive_untrained_from_args(args: argparse.Namespace) -> str:
    return archive_untrained(args.param_path, args.serialization_dir, args.overrides)


def archive_untrained(param_path: str, serialization_dir: str, overrides: str = "") -> str:
    """Writes `<serialization_dir>/model.tar.gz` holding the config's untrained model; returns its path."""
    check_writable_path(serialization_dir, "directory")
    if os.path.exists(serialization_dir) and os.listdir(serialization_dir):
        raise ConfigurationError(
            f"serialization directory {serialization_dir} is not empty; give a new one"
        )
    params = Params.from_file(param_path, overrides)
    if params.get("vocabulary", {}).get("type") != "empty":
        raise ConfigurationError(
            f"{param_path}: archive-untrained needs a config whose model uses no vocabulary built from "
            'data (`"vocabulary": {"type": "empty"}`, as dapt.jsonnet and tapt.jsonnet); a classifier '
            "has no meaning before training"
        )
    prepare_environment(params)
    vocabulary = Vocabulary.empty()
    model = Model.from_params(vocab=vocabulary, params=params.get("model").duplicate())
    # nothing is written before the model is built, so a bad config leaves no directory behind
    os.makedirs(serialization_dir, exist_ok=True)
    params.to_file(os.path.join(serialization_dir, CONFIG_NAME))
    Meta.new().to_file(os.path.join(serialization_dir, META_NAME))  # as `allennlp train` writes
    vocabulary.save_to_files(os.path.join(serialization_dir, "vocabulary"))
    torch.save(model.state_dict(), os.path.join(serialization_dir, "best.th"))
    archive_model(serialization_dir)
    path = os.path.join(serialization_dir, "model.tar.gz")
    logger.info("Archived the untrained model of %s to %s", param_path, path)
    return path
