"""Export of the classifier to a plain Hugging Face `*ForSequenceClassification` directory."""

import json
from pathlib import Path
from typing import List

import numpy
import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data.dataset_readers import TextClassificationJsonReader
from allennlp.data.token_indexers import PretrainedTransformerIndexer
from allennlp.data.tokenizers import PretrainedTransformerTokenizer, WhitespaceTokenizer
from allennlp.models import Model
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    ElectraConfig,
    RobertaConfig,
    pipeline,
)

from dapt_plugin.data.dataset_readers.text_classification_json_with_sampling import (
    TextClassificationJsonWithSamplingReader,
)
from dapt_plugin.export.classifier import (
    export_classifier,
    reader_tokenizer,
    to_sequence_classification,
)
from tests.conftest import CONFIGS, DEV_TEXTS, SMALL, classifier_env, tiny_classifier, tiny_encoder


@pytest.fixture(scope="module")
def exported(trained_classifier, tmp_path_factory) -> Path:
    return Path(
        export_classifier(
            str(trained_classifier / "model.tar.gz"),
            str(tmp_path_factory.mktemp("export") / "hf_classifier"),
        )
    )


def test_transformers_pipeline_gives_the_predictors_labels_and_probabilities(
    exported, trained_classifier
):
    predictor = Predictor.from_archive(load_archive(str(trained_classifier / "model.tar.gz")))
    classify = pipeline("text-classification", model=str(exported), top_k=None)
    for text, scores in zip(DEV_TEXTS, classify(DEV_TEXTS)):
        expected = predictor.predict(text)
        assert max(scores, key=lambda score: score["score"])["label"] == expected["label"]
        assert {score["label"]: score["score"] for score in scores} == pytest.approx(
            expected["probabilities"], abs=1e-5
        )


def test_a_text_longer_than_max_length_is_cut_as_training_did_with_truncation_on(
    exported, trained_classifier
):
    predictor = Predictor.from_archive(load_archive(str(trained_classifier / "model.tar.gz")))
    classify = pipeline("text-classification", model=str(exported), top_k=None)
    text = " ".join(DEV_TEXTS * 10)  # far more than the fixture's MAX_LENGTH of 64 tokens
    # the tokenizer's limit is the reader's cut, <s> and </s> kept (docs/configuration.md)
    assert AutoTokenizer.from_pretrained(str(exported)).model_max_length == 64
    [scores] = classify([text], truncation=True)
    assert {score["label"]: score["score"] for score in scores} == pytest.approx(
        predictor.predict(text)["probabilities"], abs=1e-5
    )


def test_the_exported_tokenizer_json_cuts_and_pads_nothing(exported, trained_classifier):
    """Not the cut of the export's own check: the `tokenizers` library reads it as it is."""
    definition = json.loads((exported / "tokenizer.json").read_text())
    assert (definition["truncation"], definition["padding"]) == (None, None)
    # the archive's own tokenizer, shared in the process, keeps its limit
    reader = load_archive(str(trained_classifier / "model.tar.gz")).validation_dataset_reader
    assert reader_tokenizer(reader).model_max_length == 512


def test_the_export_is_a_complete_hugging_face_directory(exported, trained_classifier, tiny_model):
    config = json.loads((exported / "config.json").read_text())
    labels = load_archive(str(trained_classifier / "model.tar.gz")).model.label_names
    assert config["architectures"] == ["RobertaForSequenceClassification"]
    assert config["id2label"] == {str(index): label for index, label in enumerate(labels)}
    assert config["label2id"] == {label: index for index, label in enumerate(labels)}
    # the tokenizer of training
    assert (
        AutoTokenizer.from_pretrained(str(exported))(DEV_TEXTS)["input_ids"]
        == AutoTokenizer.from_pretrained(str(tiny_model))(DEV_TEXTS)["input_ids"]
    )
    # written atomically: nothing else left beside it
    assert not [path.name for path in exported.parent.iterdir() if path.name != exported.name]


def _logits(model: Model, encoder: Path, texts: List[str]) -> torch.Tensor:
    reader = TextClassificationJsonWithSamplingReader(
        tokenizer=PretrainedTransformerTokenizer(str(encoder)),
        token_indexers={"bert": PretrainedTransformerIndexer(str(encoder))},
    )
    instances = [reader.text_to_instance(text) for text in texts]
    for instance in instances:
        reader.apply_token_indexers(instance)
    return torch.from_numpy(
        numpy.stack([output["logits"] for output in model.forward_on_instances(instances)])
    )


def test_a_bert_classifier_exports_to_bert_for_sequence_classification(tmp_path):
    """BERT's pooler is the first token through a tanh layer: the classifier's own tanh layer takes its place."""
    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    model = tiny_classifier(encoder)
    exported = to_sequence_classification(model).eval()
    assert isinstance(exported, BertForSequenceClassification)
    inputs = AutoTokenizer.from_pretrained(str(encoder))(
        DEV_TEXTS, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.allclose(
            exported(**inputs).logits, _logits(model, encoder, DEV_TEXTS), atol=1e-5
        )
    assert exported.config.id2label == {0: "inhibitor", 1: "activator", 2: "neither"}


@pytest.mark.parametrize("model_type", ["roberta", "bert"])
def test_integer_labels_are_exported_with_id_i_for_label_i(tmp_path, model_type):
    # the classifier's vocabulary orders labels by frequency in training: "1" before "0"
    config = RobertaConfig(**SMALL) if model_type == "roberta" else BertConfig(**SMALL)
    encoder = tiny_encoder(tmp_path / model_type, config)
    model = tiny_classifier(encoder, labels=["1", "10", "0", "2"])
    exported = to_sequence_classification(model).eval()
    assert exported.config.id2label == {0: "0", 1: "1", 2: "2", 3: "10"}
    inputs = AutoTokenizer.from_pretrained(str(encoder))(
        DEV_TEXTS, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        logits = exported(**inputs).logits
    # the classifier's columns "1", "10", "0", "2" in the order 0, 1, 2, 10
    assert torch.allclose(logits, _logits(model, encoder, DEV_TEXTS)[:, [2, 0, 3, 1]], atol=1e-5)


def test_an_encoder_with_another_head_is_refused(tmp_path):
    """ELECTRA's sequence-classification head uses gelu, not tanh."""
    encoder = tiny_encoder(tmp_path / "electra", ElectraConfig(**SMALL, embedding_size=16))
    with pytest.raises(ConfigurationError) as error:
        to_sequence_classification(tiny_classifier(encoder))
    assert str(error.value) == (
        "cannot export an encoder of type 'electra': its *ForSequenceClassification head differs from the classifier's "
        "(first token, dense, tanh, linear); supported: roberta, xlm-roberta, camembert, data2vec-text, "
        "roberta-prelayernorm, bert"
    )


def test_a_classifier_without_the_papers_head_is_refused(tmp_path):
    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    model = tiny_classifier(
        encoder, feedforward=None, seq2vec_encoder={"type": "boe", "embedding_dim": 16}
    )
    with pytest.raises(ConfigurationError) as error:
        to_sequence_classification(model)
    assert str(error.value) == (
        "cannot export this classifier: it does not pool the first token (`cls_pooler`); its `feedforward` is "
        "not one tanh layer. Only the paper's classifier (training_config/classifier.jsonnet: encoder, first "
        "token, tanh layer, linear, dropout in training only) has a Hugging Face *ForSequenceClassification equivalent"
    )


def test_a_reader_without_a_transformer_tokenizer_is_refused():
    with pytest.raises(ConfigurationError) as error:
        reader_tokenizer(TextClassificationJsonReader(tokenizer=WhitespaceTokenizer()))
    assert str(error.value) == (
        "the dataset reader (TextClassificationJsonReader) does not tokenize with a `pretrained_transformer` "
        "tokenizer, so there is no Hugging Face tokenizer to export with the model; use the reader of "
        "training_config/classifier.jsonnet"
    )


def test_a_classifier_with_a_max_length_shorter_than_the_check_text_exports(
    tiny_model, tmp_path, monkeypatch
):
    # the export's check text is cut to MAX_LENGTH, as the classifier's reader cuts it
    from allennlp.commands.train import train_model_from_file

    for name, value in classifier_env(tiny_model, MAX_LENGTH="16", NUM_EPOCHS="1").items():
        monkeypatch.setenv(name, value)
    train_model_from_file(str(CONFIGS / "classifier.jsonnet"), str(tmp_path / "run"))
    exported = export_classifier(str(tmp_path / "run" / "model.tar.gz"), str(tmp_path / "hf"))
    assert (Path(exported) / "config.json").exists()
