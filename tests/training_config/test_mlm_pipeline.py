"""
The paper's pipeline through the real CLI on fixture text with a tiny local model:
DAPT, then TAPT from the DAPT export, then the classifier from the TAPT export, then evaluate.
"""

import json
import re

import pytest
import torch
from allennlp.commands.train import TrainModel
from allennlp.common import Params
from allennlp.common.util import prepare_environment
from allennlp.models.archival import load_archive
from transformers import AutoModelForMaskedLM, AutoTokenizer

from dapt_plugin.data.text_files import DataError
from tests.conftest import CONFIGS, DATA, TASK, allennlp, classifier_env, mlm_env

HELDOUT = str(DATA / "domain_heldout.txt")


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    allennlp(
        ["archive-untrained", str(CONFIGS / "dapt.jsonnet"), "-s", str(root / "base")],
        env=mlm_env(tiny_model),
    )
    allennlp(
        ["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(root / "dapt")],
        env=mlm_env(tiny_model, NUM_STEPS="30", LR="2e-3"),
    )
    allennlp(
        ["train", str(CONFIGS / "tapt.jsonnet"), "-s", str(root / "dapt_tapt")],
        env=mlm_env(
            root / "dapt" / "exported_model",
            NUM_CHECKPOINTS="6",
            EXTRA_TAPT_PATHS=str(TASK / "unlabeled.jsonl"),
        ),
    )
    allennlp(
        ["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(root / "clf")],
        env=classifier_env(
            root / "dapt_tapt" / "exported_model", TEST_PATH=str(TASK / "test.jsonl")
        ),
    )
    return root


def _evaluate(archive, data, tmp_path, name, *options):
    output = tmp_path / f"{name}.json"
    allennlp(["evaluate", str(archive), str(data), "--output-file", str(output), *options])
    return json.loads(output.read_text())


def test_the_chain_runs_and_the_classifier_evaluates(runs, tmp_path):
    metrics = _evaluate(runs / "clf" / "model.tar.gz", TASK / "test.jsonl", tmp_path, "clf")
    assert {"accuracy", "macro_f1", "micro_f1"} <= set(metrics)
    # the classifier really started from the TAPT export
    config = json.loads((runs / "clf" / "config.json").read_text())
    assert config["model"]["text_field_embedder"]["token_embedders"]["roberta"][
        "model_name"
    ] == str(runs / "dapt_tapt" / "exported_model")


@pytest.mark.parametrize("phase", ["dapt", "dapt_tapt"])
def test_exports_load_with_transformers_and_match_the_trained_model(runs, phase):
    export = runs / phase / "exported_model"
    exported = AutoModelForMaskedLM.from_pretrained(str(export)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(export))
    trained = load_archive(str(runs / phase / "model.tar.gz")).model.eval()
    inputs = tokenizer(["the compound inhibits the receptor in liver cells ."], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(exported(**inputs).logits, trained.mlm(**inputs).logits, atol=1e-5)
    info = json.loads((export / "dapt_export.json").read_text())
    metrics = json.loads((runs / phase / "metrics.json").read_text())
    assert (
        info["epoch"] == metrics["epoch"]
        and info["metrics"]["training_loss"] == metrics["training_loss"]
    )
    # no temporary or partial export left behind
    assert not [p.name for p in (runs / phase).iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_dapt_lowers_heldout_perplexity_reproducibly(runs, tmp_path):
    base = _evaluate(runs / "base" / "model.tar.gz", HELDOUT, tmp_path, "base")
    dapt = _evaluate(runs / "dapt" / "model.tar.gz", HELDOUT, tmp_path, "dapt")
    again = _evaluate(runs / "dapt" / "model.tar.gz", HELDOUT, tmp_path, "again")
    assert dapt["perplexity"] < base["perplexity"]
    assert again == dapt
    # the same masks in batches of another size: the same loss, up to float32 rounding
    one_by_one = _evaluate(
        runs / "dapt" / "model.tar.gz", HELDOUT, tmp_path, "one", "--batch-size", "1"
    )
    for metric in ("mlm_loss", "perplexity", "mlm_accuracy"):
        assert one_by_one[metric] == pytest.approx(dapt[metric], rel=1e-6)


def test_the_loss_falls_over_a_short_tapt_run(tiny_model, tmp_path):
    run = tmp_path / "tapt"
    allennlp(
        ["train", str(CONFIGS / "tapt.jsonnet"), "-s", str(run)],
        env=mlm_env(
            tiny_model,
            NUM_STEPS="",
            NUM_CHECKPOINTS="",
            NUM_EPOCHS="6",
            EXTRA_TAPT_PATHS=str(TASK / "unlabeled.jsonl"),
        ),
    )
    first = json.loads((run / "metrics_epoch_0.json").read_text())
    last = json.loads((run / "metrics_epoch_5.json").read_text())
    # 6 passes over 100 task sentences take a random-weight model from ~6.5 to ~5.9
    assert last["training_mlm_loss"] < first["training_mlm_loss"] - 0.3


@pytest.mark.process
def test_two_cpu_workers_train_and_export_once(tiny_model, tmp_path):
    run = tmp_path / "dapt2"
    allennlp(
        ["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)],
        env=mlm_env(tiny_model, CUDA_DEVICES="-1,-1", NUM_STEPS="4", EFFECTIVE_BATCH="16"),
    )
    exports = sorted(p.name for p in run.iterdir() if "export" in p.name)
    assert exports == ["exported_model"]
    exported = AutoModelForMaskedLM.from_pretrained(str(run / "exported_model")).state_dict()
    trained = load_archive(str(run / "model.tar.gz")).model.mlm.state_dict()
    assert all(torch.equal(exported[k], trained[k]) for k in trained)
    log = "".join(p.read_text() for p in run.glob("out*.log"))
    assert log.count("Exported the adapted model to") == 1


@pytest.mark.process
def test_two_cpu_workers_train_on_batches_grouped_by_length(tiny_model, tmp_path):
    """One line per worker and step on average, grouped by length: the workers' parts differ in
    lines, and with 41 lines in 21 global batches of two parts one part is empty (its worker steps
    on a row of special tokens); the real distributed run takes every step of the passes."""
    lines = [
        line
        for name in ("train.jsonl", "unlabeled.jsonl")
        for line in (TASK / name).read_text().splitlines()
    ]
    text = tmp_path / "text.jsonl"
    text.write_text("\n".join(lines[:41]) + "\n")
    run = tmp_path / "tapt2"
    allennlp(
        ["train", str(CONFIGS / "tapt.jsonnet"), "-s", str(run)],
        env=mlm_env(
            tiny_model,
            TAPT_PATH=str(text),
            CUDA_DEVICES="-1,-1",
            NUM_STEPS="",
            NUM_CHECKPOINTS="",
            NUM_EPOCHS="2",
            EFFECTIVE_BATCH="2",
            BATCH_SIZE="1",
            GROUP_BY_LENGTH="true",
            HEAD_WARMUP_STEPS="0",
        ),
    )
    config = json.loads((run / "config.json").read_text())
    assert config["data_loader"]["group_by_length"] is True
    log = "".join(p.read_text() for p in run.glob("out*.log"))
    assert "text.jsonl: 21 batches per pass over the data" in log
    for epoch in (0, 1):
        metrics = json.loads((run / f"metrics_epoch_{epoch}.json").read_text())
        assert metrics["training_mlm_loss"] > 0


@pytest.mark.parametrize("variable", ["CORPUS_PATH", "HELDOUT_PATH"])
def test_a_bad_corpus_or_heldout_file_stops_the_run_before_training(
    tiny_model, tmp_path, monkeypatch, variable
):
    """The run stops while it is being set up (`TrainModel.from_params`), before any optimizer step."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the compound inhibits the receptor .\n\xff\xfe broken\n")
    for name, value in mlm_env(tiny_model, **{variable: str(bad)}).items():
        monkeypatch.setenv(name, value)
    params = Params.from_file(str(CONFIGS / "dapt.jsonnet"))
    prepare_environment(params)
    with pytest.raises(DataError, match=re.escape(f"{bad}:2: not valid UTF-8")):
        TrainModel.from_params(params=params, serialization_dir=str(tmp_path / "run"), local_rank=0)
