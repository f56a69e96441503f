"""With a local MODEL_NAME, training and evaluation never open a network connection, even online."""
import json

from tests.conftest import CONFIGS, FIXTURES, TASK, allennlp, classifier_env, mlm_env


def test_local_model_runs_touch_no_network(tiny_model, tmp_path):
    log = tmp_path / "network.log"
    log.touch()
    online = {  # hub access allowed as far as transformers is concerned; the socket guard logs any attempt
        "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0",
        "PYTHONPATH": str(FIXTURES / "no_network"), "DAPT_NETWORK_LOG": str(log),
    }
    allennlp(["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(tmp_path / "dapt")],
             env={**mlm_env(tiny_model, NUM_STEPS="2", NUM_EPOCHS="1"), **online})
    allennlp(["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(tmp_path / "clf")],
             env={**classifier_env(tmp_path / "dapt" / "exported_model", NUM_EPOCHS="1"), **online})
    allennlp(["evaluate", str(tmp_path / "clf" / "model.tar.gz"), str(TASK / "dev.jsonl"),
              "--output-file", str(tmp_path / "metrics.json")], env=online)
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] >= 0
    assert log.read_text() == ""
