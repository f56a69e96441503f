import json
import shutil

import pytest
import torch
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.models.archival import archive_model, load_archive
from allennlp.modules.seq2vec_encoders import ClsPooler
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, DistilBertConfig

from tests.conftest import (
    DEV_TEXTS,
    SMALL,
    TASK,
    allennlp,
    read_jsonl,
    tiny_classifier,
    tiny_classifier_params,
    tiny_encoder,
)


def test_train_then_evaluate_reports_metrics_matching_sklearn(
    trained_classifier, tiny_model, tmp_path
):
    metrics_file = tmp_path / "metrics.json"
    predictions_file = tmp_path / "predictions.jsonl"
    allennlp(
        [
            "evaluate",
            str(trained_classifier / "model.tar.gz"),
            str(TASK / "test.jsonl"),
            "--output-file",
            str(metrics_file),
            "--predictions-output-file",
            str(predictions_file),
        ]
    )
    metrics = json.loads(metrics_file.read_text())
    lines = read_jsonl(predictions_file)  # one per batch
    predicted = [label for batch in lines for label in batch["label"]]
    # the batches come in the evaluation loader's order: the texts sorted by length, longest
    # first (`sort_by_length`), which is the order of the gold labels below
    lengths = [len(tokens) for batch in lines for tokens in batch["tokens"]]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    rows = read_jsonl(TASK / "test.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    text_lengths = [len(tokenizer.tokenize(row["text"])) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: -text_lengths[i])
    gold = [rows[i]["label"] for i in order]
    assert len(predicted) == len(gold)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(gold, predicted), abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, average="macro"), abs=1e-6
    )
    assert metrics["micro_f1"] == pytest.approx(
        f1_score(gold, predicted, average="micro"), abs=1e-6
    )


def test_per_label_f1_is_reported_when_asked(trained_classifier, tmp_path):
    metrics_file = tmp_path / "metrics.json"
    allennlp(
        [
            "evaluate",
            str(trained_classifier / "model.tar.gz"),
            str(TASK / "dev.jsonl"),
            "--output-file",
            str(metrics_file),
            "--overrides",
            json.dumps({"model.report_per_label_f1": True}),
        ]
    )
    metrics = json.loads(metrics_file.read_text())
    assert {"f1_inhibitor", "f1_activator"} <= set(metrics)
    assert (metrics["f1_inhibitor"] + metrics["f1_activator"]) / 2 == pytest.approx(
        metrics["macro_f1"], abs=1e-6
    )


# Widths


def _model(tiny_model, **model_params):
    """The model of `training_config/classifier.jsonnet`'s kind on the 32-wide tiny RoBERTa."""
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["inhibitor", "activator"], "labels")
    params = {
        "type": "basic_classifier_with_f1",
        "text_field_embedder": {
            "token_embedders": {
                "roberta": {"type": "pretrained_transformer", "model_name": str(tiny_model)}
            }
        },
        **model_params,
    }
    return Model.from_params(vocab=vocab, params=Params(params))


def test_the_head_takes_its_width_from_the_encoder(tiny_model):
    model = _model(
        tiny_model,
        feedforward={"num_layers": 1, "activations": "tanh", "dropout": 0.1},
        dropout=0.1,
    )
    assert isinstance(model._seq2vec_encoder, ClsPooler)
    assert (
        model._seq2vec_encoder.get_input_dim(),
        model._feedforward.get_input_dim(),
        model._feedforward.get_output_dim(),
    ) == (32, 32, 32)
    tokens = {
        "roberta": {
            "token_ids": torch.tensor([[0, 5, 6, 2]]),
            "mask": torch.ones(1, 4, dtype=torch.bool),
            "type_ids": torch.zeros(1, 4, dtype=torch.long),
        }
    }
    assert model(tokens, label=torch.tensor([1]))["logits"].shape == (1, 2)


def test_configs_that_give_the_widths_still_work(tiny_model):
    model = _model(
        tiny_model,
        seq2vec_encoder={"type": "cls_pooler", "embedding_dim": 32},
        feedforward={
            "input_dim": 32,
            "num_layers": 2,
            "hidden_dims": [64, 16],
            "activations": "tanh",
        },
    )
    assert (model._feedforward.get_input_dim(), model._feedforward.get_output_dim()) == (32, 16)


# a head for roberta-base's width: the tiny model's encoder is 32 wide
FEEDFORWARD_768 = {"input_dim": 768, "num_layers": 1, "hidden_dims": 768, "activations": "tanh"}


def test_a_pooler_of_another_width_names_both_widths_and_the_fix(tiny_model):
    with pytest.raises(ConfigurationError) as error:
        _model(
            tiny_model,
            seq2vec_encoder={"type": "cls_pooler", "embedding_dim": 768},
            feedforward=FEEDFORWARD_768,
        )
    assert str(error.value) == (
        "`seq2vec_encoder` is 768 wide but the text field embedder (MODEL_NAME's encoder) is 32 wide; "
        "remove `seq2vec_encoder` from the config: the default, a CLS pooler, takes the width of its input"
    )


def test_a_feedforward_of_another_width_names_both_widths_and_the_fix(tiny_model):
    with pytest.raises(ConfigurationError) as error:
        _model(tiny_model, feedforward=FEEDFORWARD_768)
    assert str(error.value) == (
        "`feedforward.input_dim` is 768 but the pooled vector is 32 wide; remove `input_dim` and "
        "`hidden_dims` from `feedforward` in the config: they default to that width"
    )


def _dev_batch(encoder):
    """`DEV_TEXTS` tokenized by `encoder`'s tokenizer, and as the model's `tokens` (key "bert")."""
    inputs = AutoTokenizer.from_pretrained(str(encoder))(
        DEV_TEXTS, padding=True, return_tensors="pt"
    )
    tokens = {
        "bert": {
            "token_ids": inputs["input_ids"],
            "mask": inputs["attention_mask"].bool(),
            "type_ids": inputs["token_type_ids"],
        }
    }
    return inputs, tokens


def test_the_encoders_last_layer_runs_at_the_first_tokens_only(tmp_path):
    """Same logits as the embedder's full forward, with the last layer at one row per text."""
    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**{**SMALL, "num_hidden_layers": 2}))
    inputs, tokens = _dev_batch(encoder)
    logits, seen = [], []
    for at_read_positions in (True, False):  # False: the embedder and pooler of AllenNLP
        model = tiny_classifier(encoder, last_layer_at_read_positions=at_read_positions)
        model.encoder().encoder.layer[-1].intermediate.dense.register_forward_hook(
            lambda module, args, output: seen.append(args[0].shape[:-1].numel())
        )
        with torch.no_grad():
            logits.append(model(tokens)["logits"])
    assert torch.allclose(logits[0], logits[1], atol=1e-5)
    # a model that reads every position (here: their mean) gets the encoder's own forward
    model = tiny_classifier(encoder, seq2vec_encoder={"type": "boe", "embedding_dim": 16})
    model.encoder().encoder.layer[-1].intermediate.dense.register_forward_hook(
        lambda module, args, output: seen.append(args[0].shape[:-1].numel())
    )
    with torch.no_grad():
        model(tokens)
    assert seen == [len(DEV_TEXTS), *[inputs["input_ids"].numel()] * 2]


# The head of BertForSequenceClassification: the encoder's own pooler


def test_feedforward_from_pooler_computes_bert_for_sequence_classification(tmp_path):
    """
    In evaluation, the tanh layer started from the pooler computes BERT's head, pre-trained pooler
    included (where dropout goes in training is the config's: tests/training_config).
    """
    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    model = tiny_classifier(encoder, feedforward_from_pooler=True)
    reference = BertForSequenceClassification.from_pretrained(str(encoder), num_labels=3).eval()
    reference.classifier.load_state_dict(model._classification_layer.state_dict())
    inputs, tokens = _dev_batch(encoder)
    with torch.no_grad():
        logits = model(tokens)["logits"]
        assert torch.allclose(logits, reference(**inputs).logits, atol=1e-5)
    # without the option the tanh layer is new: another function
    other = tiny_classifier(encoder)
    other._classification_layer.load_state_dict(model._classification_layer.state_dict())
    with torch.no_grad():
        assert not torch.allclose(other(tokens)["logits"], logits, atol=1e-3)


def test_feedforward_from_pooler_survives_the_archive(tmp_path):
    """
    The archived tanh layer is the trained one, not the encoder's pooler at loading time (a
    guard: loading must not copy the pooler over what was trained).
    """
    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    model = tiny_classifier(encoder, feedforward_from_pooler=True)
    with torch.no_grad():
        model._feedforward._linear_layers[0].weight.add_(1.0)  # as training would change it
    run = tmp_path / "run"
    run.mkdir()
    config = {
        "dataset_reader": {"type": "text_classification_json", "tokenizer": {"type": "whitespace"}},
        "train_data_path": str(TASK / "train.jsonl"),
        "model": tiny_classifier_params(encoder, feedforward_from_pooler=True),
    }
    (run / "config.json").write_text(json.dumps(config))
    model.vocab.save_to_files(str(run / "vocabulary"))
    torch.save(model.state_dict(), run / "best.th")
    archive_model(str(run))
    shutil.rmtree(encoder)  # the archive holds what it needs
    loaded = load_archive(str(run / "model.tar.gz")).model
    assert torch.equal(
        loaded._feedforward._linear_layers[0].weight, model._feedforward._linear_layers[0].weight
    )


def test_feedforward_from_pooler_needs_an_encoder_with_a_pooler(tmp_path):
    encoder = tiny_encoder(
        tmp_path / "distilbert",
        DistilBertConfig(vocab_size=0, dim=16, n_layers=1, n_heads=2, hidden_dim=32),
    )
    with pytest.raises(ConfigurationError) as error:
        tiny_classifier(encoder, feedforward_from_pooler=True)
    assert str(error.value) == (
        "`feedforward_from_pooler` starts the tanh layer from the encoder's own pooler, and "
        "MODEL_NAME's model has none that fits (a dense layer as wide as the encoder, as BERT's); "
        "set `feedforward_from_pooler` to false (CLASSIFIER_HEAD=roberta in "
        "training_config/classifier.jsonnet)"
    )


@pytest.mark.parametrize(
    "model_params, problem",
    [
        (
            {"feedforward": {"num_layers": 2, "activations": "tanh"}},
            "its `feedforward` is not one tanh layer",
        ),
        (
            {"seq2vec_encoder": {"type": "boe", "embedding_dim": 16}},
            "it does not pool the first token (`cls_pooler`)",
        ),
    ],
)
def test_feedforward_from_pooler_needs_berts_kind_of_head(tmp_path, model_params, problem):
    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    with pytest.raises(ConfigurationError) as error:
        tiny_classifier(encoder, feedforward_from_pooler=True, **model_params)
    assert str(error.value) == (
        "`feedforward_from_pooler` needs BERT's kind of head, the first token's vector through one "
        f"tanh layer: {problem}. Change the model, or set `feedforward_from_pooler` to false"
    )


def test_feedforward_from_pooler_warns_when_the_checkpoint_has_no_pooler_weights(tmp_path, caplog):
    from transformers import BertForMaskedLM

    encoder = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    tiny_classifier(encoder, feedforward_from_pooler=True)
    assert "has no pooler weights" not in caplog.text
    # a masked-LM checkpoint, without BERT's pooler: the encoder gets one at random
    BertForMaskedLM.from_pretrained(str(encoder)).save_pretrained(str(encoder))
    tiny_classifier(encoder, feedforward_from_pooler=True)
    assert f"{encoder} has no pooler weights, so the tanh layer starts at random" in caplog.text
