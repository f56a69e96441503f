"""One `allennlp <subcommand>` per module: argument parsing, then a call into its back-end."""

from dapt_plugin.commands.adapt import Adapt
from dapt_plugin.commands.archive_untrained import ArchiveUntrained
from dapt_plugin.commands.dapt_configs import DaptConfigs
from dapt_plugin.commands.export_classifier import ExportClassifier
from dapt_plugin.commands.select_tapt_data import SelectTaptData
from dapt_plugin.commands.vocab_overlap import VocabOverlap

__all__ = [
    "Adapt",
    "ArchiveUntrained",
    "DaptConfigs",
    "ExportClassifier",
    "SelectTaptData",
    "VocabOverlap",
]
