"""
`allennlp adapt` through the real CLI: one uninterrupted run of the whole pipeline (every variant,
one seed), which is also the reference for a run of one of its variants killed at chosen moments
and resumed, and a bad experiment failing before anything is written. What is reused and why, the
checks of the experiment and the dry run are tested in-process in tests/experiment/.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter

import pytest
from allennlp.commands.evaluate import evaluate_from_archive
from allennlp.common.util import SigTermReceived

from dapt_plugin.common.configs import config_dir
from dapt_plugin.common.launch import start_allennlp
from dapt_plugin.experiment.runner import ExperimentRunner
from tests.conftest import (
    ADAPT_SETTINGS,
    DATA,
    EXPERIMENT_PHASES,
    PROJECT_ROOT,
    TASK,
    allennlp,
    write_experiment,
)

TIMINGS = ("phase_seconds", "phase_timing", "adaptation_seconds", "fine_tuning_seconds")
# how a run ran its phases, which need not change what they compute
SCHEDULE = ("jobs", "server_environment", "phase_environment")
# the encoders whose held-out masked-LM loss the full run measures, and the texts
ENCODERS = ["base", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt"]
HELDOUT = {"domain": str(DATA / "domain_heldout.txt"), "general": str(DATA / "general.txt")}


@pytest.fixture(scope="module")
def experiment(tiny_model, tmp_path_factory):
    return write_experiment(
        tmp_path_factory.mktemp("adapt") / "experiment.jsonnet", tiny_model, heldout=HELDOUT
    )


@pytest.fixture(scope="module")
def reference(experiment, tmp_path_factory):
    """The output directory and process of an uninterrupted `allennlp adapt` of `experiment`."""
    output = tmp_path_factory.mktemp("reference") / "out"
    return output, allennlp(["adapt", str(experiment), "-s", str(output)])


def _phases(output):
    return [json.loads(line) for line in (output / "phases.jsonl").read_text().splitlines()]


def _comparable(output):
    """results.json less what differs between runs that trained the same: timings and the directory."""

    def drop(value):
        if isinstance(value, dict):
            return {
                key: drop(item)
                for key, item in value.items()
                if key not in TIMINGS + SCHEDULE + ("output_dir",)
            }
        return value

    return drop(json.loads((output / "results.json").read_text()))


@pytest.mark.process
def test_results_hold_every_variant_with_the_runs_metrics(reference):
    output, process = reference
    results = json.loads((output / "results.json").read_text())
    assert set(results["variants"]) == {
        "baseline",
        "dapt",
        "tapt",
        "dapt_tapt",
        "knn_tapt",
        "rand_tapt",
    }
    for variant, row in results["variants"].items():
        run = output / "classifier" / variant / "seed_0"
        for split in ("dev", "test"):
            assert row["seeds"]["0"][split] == json.loads(
                (run / f"{split}_metrics.json").read_text()
            )
            assert row[split] == {"mean": row["seeds"]["0"][split]["macro_f1"], "std": 0.0}
    # the runner's evaluation is `allennlp evaluate`'s; on dev, the best epoch's validation is
    for variant in ("baseline", "dapt_tapt"):
        archive = str(output / "classifier" / variant / "seed_0" / "model.tar.gz")
        for split in ("dev", "test"):
            assert results["variants"][variant]["seeds"]["0"][split] == evaluate_from_archive(
                archive, results["experiment_file"]["task"][split]
            )
    # each phase's wall time, and the training and evaluation seconds within it
    for name, timing in results["phase_timing"].items():
        assert timing["wall_seconds"] == results["phase_seconds"][name]
        trained = name.startswith(("classifier/", "dapt", "tapt", "knn_tapt", "rand_tapt"))
        assert (timing["training_seconds"] > 0) == trained, name
        # a classifier evaluates its dev and test; a masked-LM run its held-out losses, when it
        # has held-out text
        metrics = output / name / "metrics.json"
        heldout = metrics.exists() and "heldout_mlm_loss_seconds" in json.loads(metrics.read_text())
        evaluated = name.startswith(("classifier/", "mlm_loss/")) or heldout
        assert (timing["evaluation_seconds"] > 0) == evaluated, name
        assert timing["training_seconds"] + timing["evaluation_seconds"] < timing["wall_seconds"]
    # every phase ran once, one DAPT serving dapt and dapt_tapt; dapt_tapt started from its export
    assert [p["phase"] for p in _phases(output)] == EXPERIMENT_PHASES + [
        f"mlm_loss/{encoder}" for encoder in ENCODERS
    ]
    config = json.loads((output / "dapt_tapt" / "config.json").read_text())
    assert config["model"]["model_name"] == str(output / "dapt" / "exported_model")
    assert (
        results["phases"]["dapt_tapt"]["settings"]["MODEL_NAME"]
        == "<output_dir>/dapt/exported_model"
    )
    # its export's card names the command a user would type: the jsonnet with its variables
    # (the phase trained the dry run's resolved copy of it)
    command = json.loads(
        (output / "dapt_tapt" / "exported_model" / "dapt_export.json").read_text()
    )["command"]
    assert f"MODEL_NAME={output / 'dapt' / 'exported_model'} " in command
    assert command.endswith(
        f"allennlp train {config_dir() / 'tapt.jsonnet'} -s {output / 'dapt_tapt'}"
    )
    # kNN-TAPT and its same-size random control fed TAPT
    selected = [
        (output / "selection" / f"{name}.jsonl").read_text().count("\n")
        for name in ("knn_tapt", "rand_tapt")
    ]
    assert selected[0] == selected[1] > 0
    knn_tapt = json.loads((output / "knn_tapt" / "config.json").read_text())
    assert str(output / "selection" / "knn_tapt.jsonl") in knn_tapt["train_data_path"]
    # the held-out masked-LM loss of each variant's masked-LM phases (the task text of the fixture
    # is too small to hold 1% out, the domain corpus is not)
    dapt_loss = results["variants"]["dapt"]["heldout_mlm_loss"]["dapt"]
    assert dapt_loss["end"] < dapt_loss["start"]
    assert results["variants"]["dapt_tapt"]["heldout_mlm_loss"]["dapt"] == dapt_loss
    table = ExperimentRunner.table(results)
    assert table in process.stdout and table in (output / "results.md").read_text()
    assert all(f"| {variant}" in table for variant in results["variants"])
    assert f"{output / 'results.md'} and {output / 'results.png'}; runs under" in process.stdout


@pytest.mark.process
def test_every_encoders_heldout_loss_on_every_text_is_measured_with_the_same_masks(reference):
    output = reference[0]
    table = json.loads((output / "mlm_loss.json").read_text())
    assert table["heldout"] == HELDOUT
    losses = table["losses"]
    assert list(losses) == ENCODERS
    assert all(list(row) == list(HELDOUT) for row in losses.values())
    # DAPT on the domain corpus lowered the loss on held-out domain text
    assert losses["dapt"]["domain"]["mlm_loss"] < losses["base"]["domain"]["mlm_loss"]
    # what `allennlp evaluate` reports of the export's archive with DAPT's reader and masks (TAPT
    # reads lines; its own archive would read windows of another length)
    dapt_config = json.loads((output / "dapt" / "config.json").read_text())
    overrides = {
        "dataset_reader": dapt_config["dataset_reader"],
        "validation_data_loader": dapt_config["validation_data_loader"],
    }
    for encoder in ("dapt", "tapt"):
        measured = evaluate_from_archive(
            str(output / encoder / "model.tar.gz"), HELDOUT["domain"], cmd_overrides=overrides
        )
        assert losses[encoder]["domain"] == {
            key: measured[key] for key in ("mlm_loss", "perplexity", "mlm_accuracy")
        }
    markdown = (output / "mlm_loss.md").read_text()
    assert "| encoder | domain | general |" in markdown and "](mlm_loss.png)" in markdown
    assert (output / "mlm_loss.png").read_bytes().startswith(b"\x89PNG")


def _logged_interval(log):
    """The times of the first and the last record of an AllenNLP `out.log`."""
    stamps = [line[:23] for line in log.read_text().splitlines() if line[:4].isdigit()]
    return stamps[0], stamps[-1]


@pytest.mark.process
def test_phases_run_side_by_side_give_the_results_of_one_at_a_time(experiment, reference, tmp_path):
    output = tmp_path / "out"
    allennlp(["adapt", str(experiment), "-s", str(output), "--jobs", "2"])
    assert _comparable(output) == _comparable(reference[0])
    results = json.loads((output / "results.json").read_text())
    assert results["jobs"] == 2
    # every phase with the threads of `--jobs 1`; idle OpenMP threads leave their cores soon
    assert results["phase_environment"] == {}
    assert results["server_environment"] == {"GOMP_SPINCOUNT": "1000"}
    # two phases ran at once: one started before another ended
    intervals = sorted(
        _logged_interval(output / name / "out.log")
        for name in [*EXPERIMENT_PHASES, *(f"mlm_loss/{encoder}" for encoder in ENCODERS)]
        if (output / name / "out.log").exists()
    )
    assert any(later[0] < earlier[1] for earlier, later in zip(intervals, intervals[1:]))
    # each training phase's output went to train.log under its heading, once the phase ended
    headings = [
        line.split(" ")[1]
        for line in (output / "train.log").read_text().splitlines()
        if line.startswith("===== ")
    ]
    assert sorted(headings) == sorted(n for n in EXPERIMENT_PHASES if not n.startswith("select_"))
    assert not any((output / ".phases" / "logs").iterdir())


@pytest.mark.process
def test_a_terminated_adapt_stops_the_phases_it_runs(tiny_model, tmp_path):
    """SIGTERM to `allennlp adapt` alone (not its process group) while two long phases run."""
    settings = {**ADAPT_SETTINGS, "tapt": {"NUM_EPOCHS": 1000}, "classifier": {"NUM_EPOCHS": 1000}}
    experiment = write_experiment(
        tmp_path / "experiment.jsonnet",
        tiny_model,
        variants=["baseline", "tapt"],
        settings=settings,
    )
    output = tmp_path / "out"
    errors = tmp_path / "stderr"
    with open(errors, "w") as stderr:
        process = start_allennlp(
            ["adapt", str(experiment), "-s", str(output), "--jobs", "2"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        logs = [
            output / "tapt" / "out.log",
            output / "classifier" / "baseline" / "seed_0" / "out.log",
        ]
        deadline = time.time() + 300
        while not all(log.exists() for log in logs):
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        # in one line, how to go on, and exiting as killed by SIGTERM (was a traceback, 1)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        assert errors.read_text().splitlines()[-1] == (
            "allennlp adapt stopped on SIGTERM, and so did any phase it was running; run the "
            "same command again to go on from where it stopped"
        )
        assert "Traceback" not in errors.read_text()
        # every process it started ends too (the fork server once it has no parent)
        deadline = time.time() + 30
        while True:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            assert time.time() < deadline, "processes of the terminated run are left"
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert {json.loads(p.read_text())["state"] for p in (output / ".phases").glob("*.json")} == {
        "started"
    }


@pytest.mark.parametrize(
    "interruption, status, name",
    [(KeyboardInterrupt(), 130, "SIGINT"), (SigTermReceived(), 143, "SIGTERM")],
)
def test_an_interrupted_adapt_ends_in_one_line_with_the_signals_status(
    monkeypatch, capsys, interruption, status, name
):
    from dapt_plugin.commands import adapt

    def run_experiment(*args):
        raise interruption

    monkeypatch.setattr(adapt, "run_experiment", run_experiment)
    monkeypatch.setattr(adapt, "load_experiment", lambda path: path)
    with pytest.raises(SystemExit) as exit:
        adapt._adapt(argparse.Namespace(experiment="e.jsonnet", output_dir="out", jobs=1))
    assert exit.value.code == status
    assert capsys.readouterr().err == (
        f"allennlp adapt stopped on {name}, and so did any phase it was running; run the same "
        "command again to go on from where it stopped\n"
    )


def _kill_when(args, reached, moment: str) -> None:
    """Starts `allennlp ARGS`, SIGKILLs its whole process group once `reached()`."""
    process = start_allennlp(
        args,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while not reached():
        assert process.poll() is None, (
            f"allennlp adapt ended before the moment to kill it: {moment}"
        )
        assert time.time() < deadline, f"never reached: {moment}"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.process
def test_killed_between_and_during_phases_and_rerun_gives_the_results_of_an_uninterrupted_run(
    tiny_model, reference, tmp_path
):
    """
    DAPT+TAPT alone (three phases: dapt, dapt_tapt, its classifier), killed in each, then rerun;
    the output directory is moved after the kill inside TAPT, which then resumes from there.
    """
    experiment = write_experiment(
        tmp_path / "experiment.jsonnet", tiny_model, variants=["dapt_tapt"]
    )
    first, output = tmp_path / "out", tmp_path / "moved"
    moments = {
        "between phases, once dapt's completion marker is written": lambda out: (
            (out / ".phases" / "dapt.json").exists()
            and json.loads((out / ".phases" / "dapt.json").read_text())["state"] == "complete"
        ),
        "during a TAPT phase, at its first checkpoint": lambda out: any(
            (out / "dapt_tapt").glob("model_state_e*_b*.th")
        ),
        "during a classifier phase, once its model.tar.gz is written": lambda out: (
            out / "classifier" / "dapt_tapt" / "seed_0" / "model.tar.gz"
        ).exists(),
    }
    out = first
    for moment, reached in moments.items():
        _kill_when(["adapt", str(experiment), "-s", str(out)], lambda: reached(out), moment)
        if out == first and moment.startswith("during a TAPT phase"):
            first.rename(output)
            out = output
    allennlp(["adapt", str(experiment), "-s", str(output)])
    # the same phases and results as the uninterrupted run of every variant
    ours, uninterrupted = _comparable(output), _comparable(reference[0])
    # (less the comparison with a baseline, which this experiment does not have)
    row = {
        key: value
        for key, value in uninterrupted["variants"]["dapt_tapt"].items()
        if key != "below_baseline"
    }
    assert ours["variants"] == {"dapt_tapt": row}
    phases = ["dapt", "dapt_tapt", "classifier/dapt_tapt/seed_0"]
    assert ours["phases"] == {name: uninterrupted["phases"][name] for name in phases}
    # no phase that had completed ran again; the interrupted TAPT went on from its checkpoint.
    # (phases.jsonl is a log written after a phase's completion marker: the kill right after
    # dapt's marker may come before dapt's "ran" line)
    ran = Counter(p["phase"] for p in _phases(output) if p["action"] == "ran")
    assert set(ran.values()) == {1} and set(phases) - set(ran) <= {"dapt"}
    assert ("dapt_tapt", "recovering") in [(p["phase"], p["action"]) for p in _phases(output)]
    assert "Recovering from the checkpoint" in (output / "dapt_tapt" / "out.log").read_text()
    leftovers = [
        path
        for pattern in ("**/.*.tmp-*", "**/.*.old-*", "**/*.tmp")
        for path in output.glob(pattern)
    ]
    assert leftovers == []


@pytest.mark.process
def test_a_changed_test_file_is_evaluated_again_without_training_again(tiny_model, tmp_path):
    data = tmp_path / "task"
    shutil.copytree(TASK, data)
    task = {split: str(data / f"{split}.jsonl") for split in ("train", "dev", "test")}
    experiment = write_experiment(
        tmp_path / "experiment.jsonnet", tiny_model, task=task, variants=["baseline"]
    )
    output = tmp_path / "out"
    allennlp(["adapt", str(experiment), "-s", str(output)])
    classifier = output / "classifier" / "baseline" / "seed_0"
    trained = (classifier / "model.tar.gz").stat().st_mtime_ns
    lines = (data / "test.jsonl").read_text().splitlines()
    (data / "test.jsonl").write_text("\n".join(lines[::3]) + "\n")
    allennlp(["adapt", str(experiment), "-s", str(output)])
    assert (classifier / "model.tar.gz").stat().st_mtime_ns == trained
    assert [(p["phase"], p["action"]) for p in _phases(output)][-2:] == [
        ("classifier/baseline/seed_0", "evaluating"),
        ("classifier/baseline/seed_0", "ran"),
    ]
    tested = json.loads((classifier / "test_metrics.json").read_text())
    expected = evaluate_from_archive(str(classifier / "model.tar.gz"), str(data / "test.jsonl"))
    assert {key: tested[key] for key in ("accuracy", "macro_f1")} == {
        key: expected[key] for key in ("accuracy", "macro_f1")
    }
    results = json.loads((output / "results.json").read_text())["variants"]["baseline"]
    assert results["seeds"]["0"]["test"]["macro_f1"] == tested["macro_f1"]


def test_a_bad_experiment_fails_before_anything_is_written(tiny_model, tmp_path):
    settings = {**ADAPT_SETTINGS, "dapt": {**ADAPT_SETTINGS["dapt"], "NUM_STEP": 8}}
    experiment = write_experiment(tmp_path / "experiment.jsonnet", tiny_model, settings=settings)
    output = tmp_path / "out"
    process = allennlp(["adapt", str(experiment), "-s", str(output)], check=False)
    assert process.returncode != 0
    assert (
        "`settings.dapt.NUM_STEP` is not a variable of dapt.jsonnet; did you mean NUM_STEPS?"
        in process.stderr
    )
    assert not output.exists()
