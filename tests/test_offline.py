"""With a local MODEL_NAME, training and evaluation never open a network connection, even online."""
import json
import os
import subprocess
import sys

from tests.conftest import CONFIGS, FIXTURES, TASK, allennlp, classifier_env, mlm_env


def test_local_model_runs_touch_no_network(tiny_model, tmp_path):
    log = tmp_path / "network.log"
    log.touch()
    online = {  # hub access allowed as far as transformers is concerned; the socket guard logs any attempt
        "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
        "PYTHONPATH": str(FIXTURES / "no_network"), "DAPT_NETWORK_LOG": str(log),
    }
    # the guard is in place: a connection attempt is refused and logged
    control = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('10.255.255.1', 9), timeout=1)"],
                             env={**os.environ, **online}, capture_output=True, text=True)
    assert "refused by the test" in control.stderr and log.read_text() == "10.255.255.1\n"
    log.write_text("")
    allennlp(["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(tmp_path / "dapt")],
             env={**mlm_env(tiny_model, NUM_STEPS="2", NUM_EPOCHS="1"), **online})
    allennlp(["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(tmp_path / "clf")],
             env={**classifier_env(tmp_path / "dapt" / "exported_model", NUM_EPOCHS="1"), **online})
    allennlp(["evaluate", str(tmp_path / "clf" / "model.tar.gz"), str(TASK / "dev.jsonl"),
              "--output-file", str(tmp_path / "metrics.json")], env=online)
    assert "macro_f1" in json.loads((tmp_path / "metrics.json").read_text())
    assert log.read_text() == ""
