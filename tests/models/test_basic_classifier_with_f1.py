import json

import pytest
from sklearn.metrics import accuracy_score, f1_score

from tests.conftest import TASK, allennlp, read_jsonl


def test_train_then_evaluate_reports_metrics_matching_sklearn(trained_classifier, tmp_path):
    metrics_file = tmp_path / "metrics.json"
    predictions_file = tmp_path / "predictions.jsonl"
    allennlp([
        "evaluate", str(trained_classifier / "model.tar.gz"), str(TASK / "test.jsonl"),
        "--output-file", str(metrics_file), "--predictions-output-file", str(predictions_file),
    ])
    metrics = json.loads(metrics_file.read_text())
    gold = [row["label"] for row in read_jsonl(TASK / "test.jsonl")]
    # allennlp evaluate writes one line per batch
    predicted = [label for batch in read_jsonl(predictions_file) for label in batch["label"]]
    assert len(predicted) == len(gold)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(gold, predicted), abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro"), abs=1e-6)
    assert metrics["micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro"), abs=1e-6)


def test_per_label_f1_is_reported_when_asked(trained_classifier, tmp_path):
    metrics_file = tmp_path / "metrics.json"
    allennlp([
        "evaluate", str(trained_classifier / "model.tar.gz"), str(TASK / "dev.jsonl"),
        "--output-file", str(metrics_file),
        "--overrides", json.dumps({"model.report_per_label_f1": True}),
    ])
    metrics = json.loads(metrics_file.read_text())
    assert {"f1_inhibitor", "f1_activator"} <= set(metrics)
    assert (metrics["f1_inhibitor"] + metrics["f1_activator"]) / 2 == pytest.approx(metrics["macro_f1"], abs=1e-6)
