import json
from types import SimpleNamespace

import pytest
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data.data_loaders import SimpleDataLoader

from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from dapt_plugin.training.callbacks.corpus_coverage import CorpusCoverage
from tests.conftest import CONFIGS, DATA, mlm_env


def test_metrics_record_the_share_of_the_corpus_one_pass_trains_on(
    tiny_model, tmp_path, monkeypatch
):
    for name, value in mlm_env(
        tiny_model,
        MLM_MODE="line_by_line",
        MAX_LENGTH="24",
        NUM_STEPS="2",
        HELDOUT_PATH=str(DATA / "domain_heldout.txt"),
    ).items():
        monkeypatch.setenv(name, value)
    train_model_from_file(str(CONFIGS / "dapt.jsonnet"), str(tmp_path / "run"))
    reader = MaskedLmCorpusReader(str(tiny_model), mode="line_by_line", max_length=24)
    trained = reader.corpus(str(DATA / "domain.txt")).covered_share
    validated = reader.corpus(str(DATA / "domain_heldout.txt")).covered_share
    assert trained < 0.95 and validated < 0.95
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["corpus_tokens_trained_share"] == pytest.approx(trained)
    assert metrics["validation_corpus_tokens_covered_share"] == pytest.approx(validated)
    export = json.loads((tmp_path / "run" / "exported_model" / "dapt_export.json").read_text())
    assert (
        export["metrics"]["corpus_tokens_trained_share"] == metrics["corpus_tokens_trained_share"]
    )


def test_the_share_trained_on_leaves_out_what_is_held_out_of_the_corpus(
    tiny_model, tmp_path, monkeypatch
):
    for name, value in mlm_env(tiny_model, NUM_STEPS="2").items():  # no HELDOUT_PATH
        monkeypatch.setenv(name, value)
    train_model_from_file(str(CONFIGS / "dapt.jsonnet"), str(tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "validation_corpus_tokens_covered_share" not in metrics
    # document_windows: every token of the 400 documents but those of the 4 held out
    assert 0.97 < metrics["corpus_tokens_trained_share"] < 1.0


def test_dapt_windows_every_document_and_tapt_reads_lines(tiny_model, monkeypatch):
    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    assert (
        Params.from_file(str(CONFIGS / "dapt.jsonnet"))["dataset_reader"]["mode"]
        == "document_windows"
    )
    assert (
        Params.from_file(str(CONFIGS / "tapt.jsonnet"))["dataset_reader"]["mode"] == "line_by_line"
    )


def test_a_data_loader_without_a_corpus_is_a_configuration_error(tmp_path):
    trainer = SimpleNamespace(data_loader=SimpleDataLoader([], batch_size=1))
    with pytest.raises(
        ConfigurationError,
        match=r"the `corpus_coverage` callback reads the corpus of the "
        r"`masked_lm_batches` data loader; the data loader is a SimpleDataLoader",
    ):
        CorpusCoverage(str(tmp_path)).on_start(trainer)
