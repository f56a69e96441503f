"""
With a local MODEL_NAME, the plugin's commands (training, evaluation, prediction, export, an
experiment) never open a network connection, even online.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import (
    CONFIGS,
    FIXTURES,
    PROJECT_ROOT,
    TASK,
    classifier_env,
    mlm_env,
    write_experiment,
)

pytestmark = pytest.mark.process  # every test here starts a process of its own


def test_local_model_runs_touch_no_network(tiny_model, tmp_path):
    log = tmp_path / "network.log"
    log.touch()
    online = {  # hub access allowed as far as transformers is concerned; the socket guard logs any attempt
        "HF_HUB_OFFLINE": "0",
        "TRANSFORMERS_OFFLINE": "0",
        "PYTHONPATH": str(FIXTURES / "no_network"),
        "DAPT_NETWORK_LOG": str(log),
    }
    # the guard is in place: a connection attempt is refused and logged
    control = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket; socket.create_connection(('10.255.255.1', 9), timeout=1)",
        ],
        env={**os.environ, **online},
        capture_output=True,
        text=True,
    )
    assert "refused by the test" in control.stderr and log.read_text() == "10.255.255.1\n"
    log.write_text("")
    # DAPT, a classifier from its export, its evaluation, predictions and export, and an experiment
    # (TAPT, then a classifier fine-tuned, evaluated and archived), in one guarded process
    experiment = write_experiment(tmp_path / "experiment.jsonnet", tiny_model, variants=["tapt"])
    commands = [
        (
            ["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(tmp_path / "dapt")],
            mlm_env(tiny_model, NUM_STEPS="2", NUM_CHECKPOINTS="1"),
        ),
        (
            ["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(tmp_path / "clf")],
            classifier_env(tmp_path / "dapt" / "exported_model", NUM_EPOCHS="1"),
        ),
        (
            [
                "evaluate",
                str(tmp_path / "clf" / "model.tar.gz"),
                str(TASK / "dev.jsonl"),
                "--output-file",
                str(tmp_path / "metrics.json"),
            ],
            {},
        ),
        (
            [
                "predict",
                str(tmp_path / "clf" / "model.tar.gz"),
                str(TASK / "test.jsonl"),
                "--output-file",
                str(tmp_path / "predictions.jsonl"),
                "--silent",
            ],
            {},
        ),
        (
            [
                "export-classifier",
                str(tmp_path / "clf" / "model.tar.gz"),
                "-o",
                str(tmp_path / "hf_classifier"),
            ],
            {},
        ),
        (["adapt", str(experiment), "-s", str(tmp_path / "experiment")], {}),
    ]
    script = (
        "import json, sys\n"
        "from dapt_plugin.testing.cli import run_in_process\n"
        "for args, env in json.loads(sys.argv[1]):\n"
        "    run = run_in_process(args, env)\n"
        "    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script, json.dumps(commands)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **online},
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stderr[-6000:]
    assert "macro_f1" in json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "predictions.jsonl").read_text().count("\n") == len(
        (TASK / "test.jsonl").read_text().splitlines()
    )
    assert (tmp_path / "hf_classifier" / "config.json").is_file()
    assert "tapt" in json.loads((tmp_path / "experiment" / "results.json").read_text())["variants"]
    assert log.read_text() == ""
