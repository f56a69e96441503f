"""
Kill a DAPT run with SIGKILL (mid-epoch, and during an export write), resume it with
`allennlp train --recover`, and compare it with an uninterrupted run of the same config and seed.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM

from tests.conftest import CONFIGS, PROJECT_ROOT, allennlp, mlm_env


def _env(model, **overrides):
    return mlm_env(model, NUM_STEPS="16", NUM_EPOCHS="2", CHECKPOINT_EVERY_BATCHES="2", **overrides)


def _start(run, env):
    return subprocess.Popen(
        [sys.executable, "-m", "allennlp", "train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)],
        cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _kill_when(process, condition, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.001)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _weights(export):
    return load_file(str(export / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tiny_model, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    allennlp(["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)], env=_env(tiny_model))
    return run


def _assert_same_weights(run, reference):
    ours, theirs = _weights(run / "exported_model"), _weights(reference / "exported_model")
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.allclose(ours[key], theirs[key], atol=1e-6), key
    assert json.loads((run / "metrics.json").read_text())["training_loss"] == pytest.approx(
        json.loads((reference / "metrics.json").read_text())["training_loss"], abs=1e-6)


def test_sigkill_mid_epoch_then_recover_equals_an_uninterrupted_run(tiny_model, uninterrupted, tmp_path):
    run = tmp_path / "run"
    env = _env(tiny_model, NUM_WORKERS="2")  # batches do not depend on the loader's workers
    # killed mid-epoch 0, after its second mid-epoch checkpoint (batches 2 and 4 of 8)
    _kill_when(_start(run, env), lambda: (run / "model_state_e0_b4.th").exists())
    assert not (run / "exported_model").exists()
    allennlp(["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run), "--recover"], env=env)
    _assert_same_weights(run, uninterrupted)


def test_sigkill_during_an_export_leaves_no_loadable_partial_export(tiny_model, uninterrupted, tmp_path):
    run = tmp_path / "run"
    env = _env(tiny_model, EXPORT_EVERY_STEPS="3")

    def exporting():
        return run.exists() and any(p.name.startswith(".exported_model_step_") for p in run.iterdir())

    _kill_when(_start(run, env), exporting)
    for directory in run.iterdir():
        if directory.name.startswith("exported_model"):  # only complete exports carry the name
            AutoModelForMaskedLM.from_pretrained(str(directory))
    allennlp(["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run), "--recover"], env=env)
    _assert_same_weights(run, uninterrupted)
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".exported_model")]
    assert all(".tmp-" in name for name in leftovers), leftovers  # never under an export's name


def test_two_identical_cpu_runs_give_identical_metrics(tiny_model, uninterrupted, tmp_path):
    run = tmp_path / "again"
    allennlp(["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)], env=_env(tiny_model))
    ours = json.loads((run / "metrics.json").read_text())
    theirs = json.loads((uninterrupted / "metrics.json").read_text())
    drop = ("training_duration", "peak_worker_0_memory_MB", "training_worker_0_memory_MB")
    assert {k: v for k, v in ours.items() if k not in drop} == {k: v for k, v in theirs.items() if k not in drop}
