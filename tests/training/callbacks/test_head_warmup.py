import json
import logging
import shutil
from types import SimpleNamespace

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.data import Vocabulary
from allennlp.training.util import evaluate
from safetensors.torch import load_file, save_file

from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches
from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm
from dapt_plugin.nn.masked_lm_heads import head_parameters
from dapt_plugin.training.callbacks.head_warmup import HeadWarmup, warm_up_head
from tests.conftest import CONFIGS, DATA, TASK, mlm_env


@pytest.fixture(scope="module")
def headless_model(tiny_model, tmp_path_factory):
    """The tiny RoBERTa saved without its masked-LM head, as sentence-transformers checkpoints are."""
    directory = tmp_path_factory.mktemp("headless")
    shutil.copytree(tiny_model, directory, dirs_exist_ok=True)
    weights = load_file(directory / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("lm_head.")},
        directory / "model.safetensors",
        metadata={"format": "pt"},
    )
    return directory


def _loader(model, path):
    reader = MaskedLmCorpusReader(str(model), max_length=64)
    return MaskedLmBatches(reader, str(path), batch_size=8, seed=0)


def _heldout_loss(model, loader):
    return evaluate(model, loader, cuda_device=-1)["mlm_loss"]


def test_a_missing_head_is_reported_in_one_line(headless_model, tiny_model, caplog):
    with caplog.at_level(logging.WARNING):
        model = DaptMaskedLm(Vocabulary.empty(), str(headless_model))
    assert model.missing_head_weights == [
        "lm_head.bias",
        "lm_head.decoder.bias",
        "lm_head.dense.bias",
        "lm_head.dense.weight",
        "lm_head.layer_norm.bias",
        "lm_head.layer_norm.weight",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"{headless_model} has no trained masked-LM head (6 of its tensors are missing from the "
        "checkpoint, e.g. lm_head.bias): the head starts at random; training warms it up alone "
        "first unless HEAD_WARMUP_STEPS is 0, and a masked-LM loss measured before that is a "
        "random head's"
    ]
    assert DaptMaskedLm(Vocabulary.empty(), str(tiny_model)).missing_head_weights == []


def test_the_warm_up_trains_the_head_and_leaves_the_encoder_bit_identical(headless_model):
    torch.manual_seed(0)
    model = DaptMaskedLm(Vocabulary.empty(), str(headless_model))
    before = {k: v.clone() for k, v in model.mlm.state_dict().items()}
    heldout = _loader(headless_model, DATA / "general.txt")
    random_head_loss = _heldout_loss(model, heldout)
    warm_up_head(
        model, _loader(headless_model, TASK / "train.jsonl"), num_steps=30, learning_rate=1e-2
    )
    after = model.mlm.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # every head tensor but the output projection, which is the (frozen) word embeddings
    assert changed == {k for k in before if k.startswith("lm_head.")} - {"lm_head.decoder.weight"}
    assert set(head_parameters(model.mlm)) <= changed
    assert torch.equal(
        before["roberta.embeddings.word_embeddings.weight"], after["lm_head.decoder.weight"]
    )
    assert all(p.requires_grad for p in model.parameters())  # unfrozen for the normal recipe
    assert _heldout_loss(model, heldout) < random_head_loss


def test_tapt_with_warm_up_lowers_the_held_out_loss_and_records_it(
    headless_model, tmp_path, monkeypatch
):
    env = mlm_env(
        headless_model, NUM_STEPS="8", NUM_CHECKPOINTS="4", LR="1e-2", HEAD_WARMUP_STEPS="20"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    torch.manual_seed(0)
    warmed_only = DaptMaskedLm(Vocabulary.empty(), str(headless_model))
    warm_up_head(
        warmed_only, _loader(headless_model, TASK / "train.jsonl"), num_steps=20, learning_rate=1e-2
    )
    heldout = _loader(headless_model, TASK / "dev.jsonl")
    train_model_from_file(str(CONFIGS / "tapt.jsonnet"), str(tmp_path / "run"))
    export = tmp_path / "run" / "exported_model"
    info = json.loads((export / "dapt_export.json").read_text())
    assert (
        info["metrics"]["head_missing_weights"] == 6 and info["metrics"]["head_warmup_steps"] == 20
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["head_warmup_steps"] == 20
    # training time outside `training_duration`, which `allennlp adapt` counts as training
    assert 0 < metrics["head_warmup_seconds"] < 60
    # the checkpoints keep it: a run resumed with `--recover` does not warm the head up again
    # and reports the seconds of the first run
    last = max(
        (tmp_path / "run").glob("training_state_*.th"), key=lambda path: path.stat().st_mtime
    )
    states = torch.load(last, weights_only=True)["callbacks"]
    resumed = HeadWarmup(str(tmp_path / "run"))
    [resumed_state] = [state for state in states if set(state) == {"done", "steps", "seconds"}]
    resumed.load_state_dict(resumed_state)
    resumed.on_start(
        SimpleNamespace(model=warmed_only), is_primary=True
    )  # a model missing its head
    reported = {}
    resumed.on_end(None, metrics=reported)
    assert (reported["head_warmup_steps"], reported["head_warmup_seconds"]) == (
        20,
        metrics["head_warmup_seconds"],
    )
    adapted = DaptMaskedLm(Vocabulary.empty(), str(export))
    assert adapted.missing_head_weights == []
    assert _heldout_loss(adapted, heldout) < _heldout_loss(warmed_only, heldout)


def test_head_warmup_steps_for_a_checkpoint_with_its_head_is_said_to_have_no_effect(
    tmp_path, caplog
):
    model = SimpleNamespace(missing_head_weights=[])  # what `dapt_masked_lm` finds
    with caplog.at_level(logging.INFO):
        HeadWarmup(str(tmp_path), num_steps=100).on_start(SimpleNamespace(model=model))
        HeadWarmup(str(tmp_path)).on_start(SimpleNamespace(model=model))  # the default: silent
    assert [r.getMessage() for r in caplog.records] == [
        "HEAD_WARMUP_STEPS=100 has no effect: the checkpoint has its trained masked-LM head"
    ]
