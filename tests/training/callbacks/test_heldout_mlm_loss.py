import json
import time

import pytest
import torch
from allennlp.commands.train import train_model_from_file

from dapt_plugin.training.callbacks import heldout_mlm_loss as callback_module
from dapt_plugin.training.callbacks.heldout_mlm_loss import heldout_loss
from tests.conftest import CONFIGS, DATA, mlm_env


def _train(tmp_path, monkeypatch, model, **overrides):
    for name, value in mlm_env(model, NUM_CHECKPOINTS="2", NUM_STEPS="6", **overrides).items():
        monkeypatch.setenv(name, value)
    train_model_from_file(str(CONFIGS / "dapt.jsonnet"), str(tmp_path / "run"))
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_without_heldout_path_one_percent_of_the_corpus_measures_the_change(
    tiny_model, tmp_path, monkeypatch
):
    def slow_heldout_loss(model, loader):
        time.sleep(0.25)
        return heldout_loss(model, loader)

    monkeypatch.setattr(callback_module, "heldout_loss", slow_heldout_loss)
    metrics = _train(tmp_path, monkeypatch, tiny_model)
    # the time of both measurements, which `allennlp adapt` counts as evaluation
    assert 0.5 <= metrics["heldout_mlm_loss_seconds"] < 5
    assert metrics["heldout_mlm_loss_end"] < metrics["heldout_mlm_loss_start"]
    assert metrics["heldout_mlm_loss_change"] == pytest.approx(
        metrics["heldout_mlm_loss_end"] - metrics["heldout_mlm_loss_start"]
    )
    export = json.loads((tmp_path / "run" / "exported_model" / "dapt_export.json").read_text())
    assert export["metrics"]["heldout_mlm_loss_end"] == metrics["heldout_mlm_loss_end"]
    # the checkpoints keep the start's loss and seconds, which a run resumed with `--recover`
    # reports (and does not measure again)
    last = max(
        (tmp_path / "run").glob("training_state_*.th"), key=lambda path: path.stat().st_mtime
    )
    [kept] = [
        state
        for state in torch.load(last, weights_only=True)["callbacks"]
        if "measured_start" in state
    ]
    assert kept["measured_start"] and kept["start"] == metrics["heldout_mlm_loss_start"]
    assert 0.25 <= kept["seconds"] <= metrics["heldout_mlm_loss_seconds"] - 0.25


def test_with_heldout_path_the_change_is_measured_on_it_with_the_same_masks(
    tiny_model, tmp_path, monkeypatch
):
    metrics = _train(
        tmp_path, monkeypatch, tiny_model, HELDOUT_PATH=str(DATA / "domain_heldout.txt")
    )
    # the end model is the best validation epoch's, measured on the validation text itself
    assert metrics["heldout_mlm_loss_end"] == pytest.approx(
        metrics["best_validation_mlm_loss"], rel=1e-6
    )
    assert metrics["heldout_mlm_loss_end"] < metrics["heldout_mlm_loss_start"]


def test_the_loss_of_a_model_does_not_depend_on_when_it_is_measured(tiny_model):
    from allennlp.data import Vocabulary

    from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
    from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
    from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm

    model = DaptMaskedLm(Vocabulary.empty(), str(tiny_model))
    loader = MaskedLmBatches(
        MaskedLmCorpusReader(str(tiny_model), max_length=64),
        str(DATA / "domain_heldout.txt"),
        batch_size=8,
    )
    assert heldout_loss(model, loader) == heldout_loss(model, loader)
    assert model.training


def test_a_corpus_too_small_to_hold_a_document_out_is_said_to_have_no_heldout_text(
    tiny_model, tmp_path, monkeypatch
):
    corpus = tmp_path / "small.txt"
    corpus.write_text("".join(DATA.joinpath("domain.txt").read_text().splitlines(True)[:40]))
    metrics = _train(tmp_path, monkeypatch, tiny_model, CORPUS_PATH=str(corpus))
    assert "heldout_mlm_loss_start" not in metrics
    log = (tmp_path / "run" / "out.log").read_text()
    assert "No held-out text (no HELDOUT_PATH, and the training data loader holds none out: " in log
