import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import DATA, PROJECT_ROOT, TASK, allennlp

SETTINGS = {
    "all": {"MAX_LENGTH": 64, "BATCH_SIZE": 8, "LR": 0.001},
    "dapt": {"NUM_STEPS": 4, "NUM_EPOCHS": 2, "EFFECTIVE_BATCH": 16},
    "tapt": {"NUM_EPOCHS": 3, "EFFECTIVE_BATCH": 16},
    "classifier": {"NUM_EPOCHS": 1},
}


def _experiment(tmp_path, model, **overrides):
    experiment = {
        "base_model": str(model), "domain_corpus": str(DATA / "domain.txt"),
        "task": {split: str(TASK / f"{split}.jsonl") for split in ("train", "dev", "test")},
        "variants": ["baseline", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt"],
        "seeds": [0, 1], "metric": "macro_f1", "knn_k": 3, "settings": SETTINGS, **overrides,
    }
    path = tmp_path / "experiment.jsonnet"
    path.write_text(json.dumps(experiment))
    return path


def _phases(output):
    return [json.loads(line) for line in (output / "phases.jsonl").read_text().splitlines()]


def test_results_hold_every_variant_and_seed_with_the_runs_metrics(tiny_model, tmp_path):
    output = tmp_path / "out"
    process = allennlp(["adapt", str(_experiment(tmp_path, tiny_model)), "-s", str(output)])
    results = json.loads((output / "results.json").read_text())
    assert set(results["variants"]) == {"baseline", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt"}
    for variant, row in results["variants"].items():
        assert set(row["seeds"]) == {"0", "1"}
        for seed, metrics in row["seeds"].items():
            run = output / "classifier" / variant / f"seed_{seed}"
            for split in ("dev", "test"):
                assert metrics[split] == json.loads((run / f"{split}_metrics.json").read_text())
        values = [row["seeds"][s]["test"]["macro_f1"] for s in ("0", "1")]
        assert row["test"]["mean"] == pytest.approx(sum(values) / 2)
    # one DAPT serves dapt and dapt_tapt; dapt_tapt started from its export
    assert [p["phase"] for p in _phases(output)].count("dapt") == 1
    config = json.loads((output / "dapt_tapt" / "config.json").read_text())
    assert config["model"]["model_name"] == str(output / "dapt" / "exported_model")
    # kNN-TAPT and its same-size random control fed TAPT
    selected = [(output / "selection" / f"{name}.jsonl").read_text().count("\n") for name in ("knn_tapt", "rand_tapt")]
    assert selected[0] == selected[1] > 0
    assert str(output / "selection" / "knn_tapt.jsonl") in json.loads((output / "knn_tapt" / "config.json").read_text())["train_data_path"]
    table = (output / "results.md").read_text()
    assert table in process.stdout and "| dapt_tapt |" in table


def test_killed_in_a_phase_and_rerun_redoes_no_completed_phase(tiny_model, tmp_path):
    output = tmp_path / "out"
    experiment = _experiment(tmp_path, tiny_model, variants=["baseline", "dapt", "tapt"], seeds=[0],
                             settings={**SETTINGS, "tapt": {"NUM_EPOCHS": 6, "EFFECTIVE_BATCH": 16}})
    command = [sys.executable, "-m", "allennlp", "adapt", str(experiment), "-s", str(output)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (output / "tapt" / "model_state_e2_b0.th").exists():  # mid-way through TAPT
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert [p["phase"] for p in _phases(output) if p["action"] == "ran"] == ["dapt"]
    allennlp(["adapt", str(experiment), "-s", str(output)])
    second = _phases(output)[1:]
    assert [(p["phase"], p["action"]) for p in second] == [
        ("dapt", "skipped"), ("tapt", "recovering"), ("tapt", "ran"),
        ("classifier/baseline/seed_0", "ran"), ("classifier/dapt/seed_0", "ran"), ("classifier/tapt/seed_0", "ran"),
    ]
    # the recovered TAPT went on from its checkpoint instead of starting over
    assert "Recovering from the checkpoint" in (output / "tapt" / "out.log").read_text()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"variants": ["baseline", "dapt_plus"]}, "unknown variant 'dapt_plus' in `variants`"),
        ({"seeds": 3}, "`seeds` must be a non-empty list of integers"),
        ({"domain_corpus": "/nowhere/corpus.txt"}, "`domain_corpus`: /nowhere/corpus.txt: no such file"),
        ({"metric": "f1"}, "`metric` must be one of"),
        ({"base_model": "/nowhere/model"}, "`base_model`: MODEL_NAME '/nowhere/model': no such directory"),
    ],
)
def test_a_bad_experiment_fails_before_any_training(tiny_model, tmp_path, overrides, message):
    output = tmp_path / "out"
    process = allennlp(["adapt", str(_experiment(tmp_path, tiny_model, **overrides)), "-s", str(output)], check=False)
    assert process.returncode != 0
    assert message in process.stderr
    assert not output.exists()
