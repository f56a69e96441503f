"""
Archives carry their encoder's config and tokenizer: they load after the encoder's directory is
deleted, from any working directory (the tests run with HF_HUB_OFFLINE=1).
"""

import json
import shutil
import tarfile

import pytest
import torch
from allennlp.commands.evaluate import evaluate_from_archive
from allennlp.commands.train import train_model_from_file
from allennlp.common import cached_transformers
from allennlp.common.params import Params
from allennlp.models.archival import load_archive
from transformers import AutoModelForMaskedLM, AutoTokenizer

from dapt_plugin.commands.archive_untrained import archive_untrained
from dapt_plugin.common.archived_encoders import (
    ENCODERS_DIRECTORY,
    archived_name,
    copy_encoders,
    use_archived_encoders,
)
from tests.conftest import CONFIGS, DATA, TASK, allennlp, classifier_env, mlm_env

# the README's layout: MODEL_NAME relative to the directory the run starts in
ENCODER = "runs/dapt/exported_model"


@pytest.fixture(scope="module")
def moved_classifier(tiny_model, tmp_path_factory):
    """
    A classifier trained from `runs/dapt/exported_model` (a copy of the tiny model, relative to
    the working directory), evaluated on the test set at the end of training; then the encoder
    is deleted.
    """
    root = tmp_path_factory.mktemp("moved_classifier")
    shutil.copytree(tiny_model, root / ENCODER)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name, value in classifier_env(ENCODER, TEST_PATH=str(TASK / "test.jsonl")).items():
            patch.setenv(name, value)
        train_model_from_file(str(CONFIGS / "classifier.jsonnet"), str(root / "runs" / "clf"))
    shutil.rmtree(root / ENCODER)
    return root / "runs" / "clf"


@pytest.mark.process
def test_a_classifier_archive_evaluates_as_in_training_after_its_encoder_is_deleted(
    moved_classifier, tmp_path, monkeypatch
):
    archive = moved_classifier / "model.tar.gz"
    in_training = json.loads((moved_classifier / "metrics.json").read_text())
    monkeypatch.chdir(tmp_path)
    caches = len(cached_transformers._model_cache), len(cached_transformers._tokenizer_cache)

    metrics = evaluate_from_archive(str(archive), str(TASK / "test.jsonl"))

    for name in ("accuracy", "macro_f1", "loss"):
        assert metrics[name] == pytest.approx(in_training[f"test_{name}"], abs=1e-6)
    # the copy extracted to a temporary directory is not kept in allennlp's caches
    assert (
        len(cached_transformers._model_cache),
        len(cached_transformers._tokenizer_cache),
    ) == caches
    # the config still records where the encoder came from; the archive holds no second copy of its weights
    config = json.loads(tarfile.open(archive).extractfile("config.json").read())
    assert (
        config["model"]["text_field_embedder"]["token_embedders"]["roberta"]["model_name"]
        == ENCODER
    )
    archived = [
        name
        for name in tarfile.open(archive).getnames()
        if name.startswith(f"{ENCODERS_DIRECTORY}/")
    ]
    assert f"{ENCODERS_DIRECTORY}/{archived_name(ENCODER)}/tokenizer.json" in archived
    assert not [name for name in archived if name.endswith((".safetensors", ".bin"))]

    # the same through the CLI, from a directory without `.allennlp_plugins`
    output = tmp_path / "metrics.json"
    allennlp(
        [
            "evaluate",
            str(archive),
            str(TASK / "test.jsonl"),
            "--include-package",
            "dapt_plugin",
            "--output-file",
            str(output),
        ],
        cwd=tmp_path,
        process=True,
    )
    assert json.loads(output.read_text()) == pytest.approx(metrics, abs=1e-6)


def test_a_masked_lm_archive_evaluates_the_same_after_its_encoder_is_deleted(
    tiny_model, tmp_path, monkeypatch
):
    shutil.copytree(tiny_model, tmp_path / ENCODER)
    monkeypatch.chdir(tmp_path)
    for name, value in mlm_env(ENCODER).items():
        monkeypatch.setenv(name, value)
    archive = archive_untrained(str(CONFIGS / "dapt.jsonnet"), "runs/base")
    heldout = str(DATA / "domain_heldout.txt")
    before = evaluate_from_archive(archive, heldout)
    # the archived model computes what the encoder computes
    original = AutoModelForMaskedLM.from_pretrained(ENCODER).eval()
    inputs = AutoTokenizer.from_pretrained(ENCODER)(
        ["the compound inhibits the receptor ."], return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.allclose(
            load_archive(archive).model.eval().mlm(**inputs).logits, original(**inputs).logits
        )

    shutil.rmtree(tmp_path / ENCODER)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert evaluate_from_archive(str(tmp_path / archive), heldout) == before


def test_only_local_encoder_directories_are_copied(tiny_model, tmp_path):
    """Model-hub names are found in transformers' cache or on the hub, as without archiving."""
    run = tmp_path / "run"
    run.mkdir()
    config = {
        "dataset_reader": {"type": "masked_lm_corpus", "model_name": str(tiny_model)},
        "model": {"type": "dapt_masked_lm", "model_name": "roberta-base"},
    }
    (run / "config.json").write_text(json.dumps(config))
    assert copy_encoders(str(run))
    copy = run / ENCODERS_DIRECTORY / archived_name(str(tiny_model))
    assert list((run / ENCODERS_DIRECTORY).iterdir()) == [copy]

    params = Params(json.loads(json.dumps(config)))
    assert use_archived_encoders(params, str(run)) == [str(copy)]
    assert params.as_dict() == {
        "dataset_reader": {"type": "masked_lm_corpus", "model_name": str(copy)},
        "model": {"type": "dapt_masked_lm", "model_name": "roberta-base"},
    }


def test_a_model_component_that_needs_the_weights_files_keeps_the_original_name(
    tiny_model, tmp_path
):
    run = tmp_path / "run"
    run.mkdir()
    config = {
        "model": {
            "type": "other_model",
            "encoder": {"type": "needs_weights", "model_name": str(tiny_model)},
        }
    }
    (run / "config.json").write_text(json.dumps(config))
    copy_encoders(str(run))
    params = Params(json.loads(json.dumps(config)))
    assert use_archived_encoders(params, str(run)) == []
    assert params.as_dict() == config
