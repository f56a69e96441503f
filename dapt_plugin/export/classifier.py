"""
Exports a trained classifier (`basic_classifier_with_f1`, as `training_config/classifier.jsonnet`
trains it) to a plain Hugging Face directory: `AutoModelForSequenceClassification` and
`pipeline("text-classification")` load it, with the label names in `id2label`/`label2id` and the
tokenizer of training beside it.

The paper's classifier is the encoder, then the vector of the first token, dropout, a tanh layer
as wide as the encoder, and a linear layer to the labels (`CLASSIFIER_HEAD=bert`: no dropout
before the tanh layer, one after it). At inference, where dropout is off, that is exactly the
head of `RobertaForSequenceClassification` (and of the XLM-RoBERTa, CamemBERT, Data2VecText and
RoBERTa-PreLayerNorm models), whose `classifier.dense` and `classifier.out_proj` receive the two
layers. `BertForSequenceClassification` computes the same function (BERT's pooler is the first
token's vector through a tanh layer; dropout only acts in training), so for BERT the tanh layer
becomes the pooler's. Other encoders, and classifiers built otherwise (a `seq2seq_encoder`,
another pooler or feed-forward), have no such class and are refused.
"""

import copy
import logging
import os
import re
from typing import List, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import DatasetReader
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.models.archival import load_archive
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dapt_plugin.common.atomic import atomic_directory, check_output_directory
from dapt_plugin.models.basic_classifier_with_f1 import BasicClassifierWithF1, head_problems

logger = logging.getLogger(__name__)

# encoders whose *ForSequenceClassification head is `classifier.dense` (tanh) and `classifier.out_proj`
ROBERTA_HEAD_MODEL_TYPES = (
    "roberta",
    "xlm-roberta",
    "camembert",
    "data2vec-text",
    "roberta-prelayernorm",
)
# encoders whose *ForSequenceClassification is the pooler (first token, dense, tanh) and `classifier`
POOLER_HEAD_MODEL_TYPES = ("bert",)
# a text run through both models after the export, whose logits must agree
_PROBE = "A short text to check that the exported model computes what the classifier computes."


def export_classifier(archive_file: str, output_dir: str, force: bool = False) -> str:
    """
    Writes the classifier of `archive_file` (a `model.tar.gz`) to `output_dir` as a Hugging Face
    `*ForSequenceClassification` model with its tokenizer, atomically: `output_dir` appears
    complete or not at all. An `output_dir` that holds anything is replaced only with `force`.
    Returns `output_dir`.
    """
    check_output_directory(output_dir, force, [archive_file])
    archive = load_archive(archive_file)
    model = archive.model.eval()
    exported = to_sequence_classification(model).eval()
    reader = archive.validation_dataset_reader
    tokenizer = reader_tokenizer(reader)
    _check_same_logits(model, reader, exported, tokenizer)
    # what the tokenizer saves as its own: none of the truncation or padding its last call set
    # (tokenizer.json would cut every text there for the `tokenizers` library), and the
    # reader's cut as its limit, so that `truncation=True` cuts a text where the classifier did;
    # on a copy: the reader's is allennlp's, shared in the process
    tokenizer = copy.deepcopy(tokenizer)
    if tokenizer.is_fast:
        tokenizer.backend_tokenizer.no_truncation()
        tokenizer.backend_tokenizer.no_padding()
    if getattr(reader, "max_sequence_length", None) is not None:
        tokenizer.model_max_length = reader.max_sequence_length
    os.makedirs(os.path.dirname(os.path.abspath(output_dir)), exist_ok=True)
    with atomic_directory(output_dir) as directory:
        exported.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    logger.info(
        "Exported the classifier of %s (%s) to %s",
        archive_file,
        type(exported).__name__,
        output_dir,
    )
    return output_dir


def reader_tokenizer(reader: DatasetReader) -> PreTrainedTokenizerBase:
    """The Hugging Face tokenizer that `reader` tokenizes texts with."""
    tokenizer = getattr(reader, "tokenizer", None)
    if not isinstance(tokenizer, PretrainedTransformerTokenizer):
        raise ConfigurationError(
            f"the dataset reader ({type(reader).__name__}) does not tokenize with a `pretrained_transformer` "
            "tokenizer, so there is no Hugging Face tokenizer to export with the model; use the reader "
            "of training_config/classifier.jsonnet"
        )
    return tokenizer.tokenizer


def to_sequence_classification(model: BasicClassifierWithF1) -> PreTrainedModel:
    """
    The Hugging Face `*ForSequenceClassification` model computing what `model` computes, with
    `model`'s weights and label names. Raises `ConfigurationError` for a classifier that no
    such class computes.
    """
    encoder, dense, output = _parts(model)
    config = copy.deepcopy(encoder.config)
    model_type = config.model_type
    if model_type not in ROBERTA_HEAD_MODEL_TYPES + POOLER_HEAD_MODEL_TYPES:
        raise ConfigurationError(
            f"cannot export an encoder of type {model_type!r}: its *ForSequenceClassification head differs from "
            "the classifier's (first token, dense, tanh, linear); supported: "
            f"{', '.join(ROBERTA_HEAD_MODEL_TYPES + POOLER_HEAD_MODEL_TYPES)}"
        )
    order = export_order(model.label_names)
    labels = [model.label_names[index] for index in order]
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: index for index, label in enumerate(labels)}
    config.problem_type = "single_label_classification"
    exported = AutoModelForSequenceClassification.from_config(config)
    prefix = exported.base_model_prefix
    if model_type in ROBERTA_HEAD_MODEL_TYPES:
        dense_name, output_name = "classifier.dense", "classifier.out_proj"
    else:
        dense_name, output_name = f"{prefix}.pooler.dense", "classifier"
    state = {f"{prefix}.{name}": tensor for name, tensor in encoder.state_dict().items()}
    state.update({f"{dense_name}.{key}": tensor for key, tensor in dense.state_dict().items()})
    # the output layer's rows in the export's order of labels
    state.update(
        {f"{output_name}.{key}": tensor[order] for key, tensor in output.state_dict().items()}
    )
    wanted = exported.state_dict()
    # the encoder's own pooler is unused by the classifier (and absent from RoBERTa's class)
    exported.load_state_dict(
        {name: tensor for name, tensor in state.items() if name in wanted}, strict=True
    )
    exported.config.architectures = [type(exported).__name__]
    return exported


def export_order(labels: List[str]) -> List[int]:
    """
    The classifier's label indices in the export's order of ids. The classifier's own order is
    by frequency in training; when every label is a whole number written plainly (`"0"`, `"1"`,
    `"4"`), ids go up with the number, so that id i is label i where the labels are 0 to n-1, as
    a user of integer labels expects of `logits.argmax()`. Other labels keep the classifier's
    order (`id2label` names them).
    """
    if all(re.fullmatch(r"0|-?[1-9][0-9]*", label) for label in labels):
        return sorted(range(len(labels)), key=lambda index: int(labels[index]))
    return list(range(len(labels)))


def _parts(
    model: BasicClassifierWithF1,
) -> Tuple[PreTrainedModel, torch.nn.Linear, torch.nn.Linear]:
    """The encoder, the tanh layer and the output layer of `model`, after checking its structure."""
    if not isinstance(model, BasicClassifierWithF1):
        raise ConfigurationError(
            f"can only export a basic_classifier_with_f1 model; got {type(model).__name__}"
        )
    problems = head_problems(model)
    if problems:
        raise ConfigurationError(
            f"cannot export this classifier: {'; '.join(problems)}. Only the paper's classifier "
            "(training_config/classifier.jsonnet: encoder, first token, tanh layer, linear, dropout in "
            "training only) has a Hugging Face *ForSequenceClassification equivalent"
        )
    return (
        model.encoder(),
        model._feedforward._linear_layers[0],
        model._classification_layer,
    )


def _check_same_logits(
    model: BasicClassifierWithF1,
    reader,
    exported: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
) -> None:
    instance = reader.text_to_instance(_PROBE)
    reader.apply_token_indexers(instance)
    expected = torch.tensor(model.forward_on_instance(instance)["logits"])
    expected = expected[export_order(model.label_names)]
    # as many tokens as the reader kept: a MAX_LENGTH shorter than the probe cuts it there
    kept = len(instance["tokens"])
    with torch.no_grad():
        encoded = tokenizer(_PROBE, truncation=True, max_length=kept, return_tensors="pt")
        logits = exported(**encoded).logits[0]
    if not torch.allclose(logits, expected, atol=1e-4):
        raise RuntimeError(
            f"the exported model's logits {logits.tolist()} differ from the classifier's "
            f"{expected.tolist()}; please report this with the model's config.json"
        )
