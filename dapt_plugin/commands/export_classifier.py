"""
`allennlp export-classifier`: writes the classifier of a `model.tar.gz` as a plain Hugging Face
directory (`*ForSequenceClassification` with `id2label`, and its tokenizer), for
`AutoModelForSequenceClassification.from_pretrained` and `pipeline("text-classification")`. The
work is done by `dapt_plugin.export.classifier`.

    allennlp export-classifier runs/clf/model.tar.gz -o runs/clf/hf_classifier
"""

import argparse

from allennlp.commands.subcommand import Subcommand

from dapt_plugin.export.classifier import export_classifier


@Subcommand.register("export-classifier")
class ExportClassifier(Subcommand):
    """
    Registered as a `Subcommand` with name "export-classifier".
    """

    def add_subparser(self, parser: argparse._SubParsersAction) -> argparse.ArgumentParser:
        description = (
            "Export the classifier of a model.tar.gz (training_config/classifier.jsonnet) to "
            "a Hugging Face directory: *ForSequenceClassification with the label names, and "
            "the tokenizer."
        )
        subparser = parser.add_parser(self.name, description=description, help=description)
        subparser.add_argument(
            "archive_file", help="the classifier's archive, e.g. runs/clf/model.tar.gz"
        )
        subparser.add_argument(
            "-o",
            "--output-dir",
            required=True,
            help="directory to write; written completely or not at all",
        )
        subparser.add_argument(
            "--force",
            action="store_true",
            help="replace OUTPUT_DIR when it exists and is not empty",
        )
        subparser.set_defaults(func=export_classifier_from_args)
        return subparser


def export_classifier_from_args(args: argparse.Namespace) -> str:
    return export_classifier(args.archive_file, args.output_dir, args.force)
