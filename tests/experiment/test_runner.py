"""
The runner's dry run, its plan (which phases are reused, resumed or run again, and why) and its
results, in-process on fake phase outputs: what a finished run leaves, without the training.
"""

import hashlib
import json
import logging
import shutil
import struct
import sys
import time
from pathlib import Path

import pytest
import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import SigTermReceived
from allennlp.data.tokenizers import WhitespaceTokenizer
from matplotlib.container import BarContainer

from dapt_plugin.common.configs import config_dir
from dapt_plugin.common.launch import ProcessFailed
from dapt_plugin.data.dataset_readers.text_classification_json_with_sampling import (
    TextClassificationJsonWithSamplingReader,
)
from dapt_plugin.data.documents import iter_documents
from dapt_plugin.experiment import runner as runner_module
from dapt_plugin.experiment.plot import draw_results
from dapt_plugin.experiment.runner import ExperimentRunner, server_environment
from dapt_plugin.experiment.spec import load_experiment
from tests.conftest import ADAPT_SETTINGS, DATA, EXPERIMENT_PHASES, TASK, write_experiment


def _runner(tmp_path, model, output="out", jobs=1, **overrides) -> ExperimentRunner:
    experiment = write_experiment(tmp_path / "experiment.jsonnet", model, **overrides)
    return ExperimentRunner(load_experiment(str(experiment)), str(tmp_path / output), jobs)


def _complete(runner: ExperimentRunner) -> None:
    """Fake outputs and completion markers of every phase, as a finished run leaves them."""
    for phase in runner.phases:
        phase.directory.mkdir(parents=True, exist_ok=True)
        for path in phase.outputs:
            path.write_text(json.dumps({"macro_f1": 0.5}))
        runner.write_marker(phase, "complete")


def _plan(runner: ExperimentRunner):
    return {phase.name: (action, reason) for phase, action, reason in runner.plan()}


def _rerun(plan):
    return {name: reason for name, (action, reason) in plan.items() if action != "reuse"}


def test_an_unchanged_experiment_reuses_every_phase_unless_one_it_starts_from_is_run_again(
    tiny_model, tmp_path
):
    _complete(_runner(tmp_path, tiny_model))
    runner = _runner(tmp_path, tiny_model)
    plan = _plan(runner)
    assert list(plan) == EXPERIMENT_PHASES
    assert _rerun(plan) == {}
    (tmp_path / "out" / ".phases" / "select_knn.json").unlink()
    assert _rerun(_plan(runner)) == {
        "select_knn": "no record that it completed; starting over",
        "select_random": "it starts from select_knn, which is run again",
        "knn_tapt": "it starts from select_knn, which is run again",
        "rand_tapt": "it starts from select_random, which is run again",
        "classifier/knn_tapt/seed_0": "it starts from knn_tapt, which is run again",
        "classifier/rand_tapt/seed_0": "it starts from rand_tapt, which is run again",
    }


def test_a_changed_cache_directory_log_cadence_or_checkpoint_frequency_runs_nothing_again(
    tiny_model, tmp_path, monkeypatch
):
    """They change where a run caches, how often it logs or checkpoints, not what it trains."""
    _complete(_runner(tmp_path, tiny_model))
    monkeypatch.setenv("DAPT_PLUGIN_CACHE", str(tmp_path / "elsewhere"))
    settings = {
        **ADAPT_SETTINGS,
        "all": {**ADAPT_SETTINGS.get("all", {}), "LOG_EVERY": 7},
        "dapt": {**ADAPT_SETTINGS["dapt"], "CHECKPOINT_EVERY_BATCHES": 2, "NUM_WORKERS": 2},
    }
    runner = _runner(tmp_path, tiny_model, settings=settings)
    assert _rerun(_plan(runner)) == {}
    # what they change is what the runs run with
    dapt = next(phase for phase in runner.phases if phase.name == "dapt")
    assert dapt.run_config["dataset_reader"]["cache_directory"] == str(tmp_path / "elsewhere")
    assert dapt.run_config["trainer"]["callbacks"][-1]["log_every"] == 7
    assert dapt.run_config["data_loader"]["num_workers"] == 2


def _as_an_earlier_version_wrote_them(runner: ExperimentRunner, test_file: Path) -> None:
    """Rewrites the markers of `runner`'s complete phases as versions that hashed the whole
    config (run-only settings too) wrote them, a classifier's training fingerprint included."""

    def sha256(config, inputs, upstream):
        canonical = {"config": config, "inputs": inputs, "upstream": upstream}
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()

    earlier = {}
    for phase in runner.phases:
        upstream = {name: earlier[name] for name in phase.needs}
        earlier[phase.name] = sha256(phase.config, phase.inputs, upstream)
        training = ""
        if phase.kind == "classifier":
            inputs = {path: h for path, h in phase.inputs.items() if path != str(test_file)}
            training = sha256(phase.config, inputs, upstream)
        marker = runner.markers / (phase.name.replace("/", ".") + ".json")
        record = json.loads(marker.read_text())
        if phase.kind in ("dapt", "tapt"):  # the cache directory counted there
            assert record["fingerprint"] != earlier[phase.name]
        record.update(
            fingerprint=earlier[phase.name], training_fingerprint=training, upstream=upstream
        )
        marker.write_text(json.dumps(record))


def test_the_markers_of_a_version_that_fingerprinted_run_only_settings_are_still_reused(
    tiny_model, tmp_path
):
    """An experiment with DAPT_PLUGIN_CACHE in its settings (the demo's) ran every phase again."""
    settings = {**ADAPT_SETTINGS, "all": {**ADAPT_SETTINGS["all"], "DAPT_PLUGIN_CACHE": "cache"}}
    runner = _runner(tmp_path, tiny_model, settings=settings)
    _complete(runner)
    _as_an_earlier_version_wrote_them(runner, TASK / "test.jsonl")
    runner = _runner(tmp_path, tiny_model, settings=settings)
    assert _rerun(_plan(runner)) == {}
    assert _timed_phases(runner) == {} and runner.run()  # runs nothing, takes the markers over
    # then a run-only setting changes, as it may now
    settings["all"]["DAPT_PLUGIN_CACHE"] = "another_cache"
    assert _rerun(_plan(_runner(tmp_path, tiny_model, settings=settings))) == {}


def test_a_changed_test_file_evaluates_the_classifiers_of_an_earlier_versions_markers_again(
    tiny_model, tmp_path
):
    test_file = tmp_path / "test.jsonl"
    shutil.copy(TASK / "test.jsonl", test_file)
    task = {**{s: str(TASK / f"{s}.jsonl") for s in ("train", "dev")}, "test": str(test_file)}
    runner = _runner(tmp_path, tiny_model, task=task)
    _complete(runner)
    for phase in runner.phases:  # a classifier's training completed, its test evaluated
        if phase.kind == "classifier":
            (phase.directory / "model.tar.gz").write_bytes(b"")
            (phase.directory / "metrics.json").write_text("{}")
    _as_an_earlier_version_wrote_them(runner, test_file)
    test_file.write_text(test_file.read_text().splitlines()[0] + "\n")
    plan = _plan(_runner(tmp_path, tiny_model, task=task))
    assert {name: action for name, (action, _) in plan.items() if action != "reuse"} == {
        name: "evaluate" for name in plan if name.startswith("classifier/")
    }
    # the phases it starts from did not change: not said to
    assert not [reason for _, reason in plan.values() if "which changed" in reason]


def test_a_changed_dapt_setting_reruns_dapt_and_every_phase_that_starts_from_it(
    tiny_model, tmp_path
):
    _complete(_runner(tmp_path, tiny_model))
    settings = {**ADAPT_SETTINGS, "dapt": {**ADAPT_SETTINGS["dapt"], "NUM_STEPS": 8}}
    assert _rerun(_plan(_runner(tmp_path, tiny_model, settings=settings))) == {
        "dapt": "the resolved config changed (NUM_STEPS 4 -> 8)",
        "dapt_tapt": "it starts from dapt, which changed",
        "classifier/dapt/seed_0": "it starts from dapt, which changed",
        "classifier/dapt_tapt/seed_0": "it starts from dapt_tapt, which changed",
    }


def test_a_changed_domain_corpus_reruns_what_reads_it_and_what_starts_from_that(
    tiny_model, tmp_path
):
    _complete(_runner(tmp_path, tiny_model))
    corpus = tmp_path / "domain.txt"
    shutil.copy(DATA / "domain.txt", corpus)
    rerun = _rerun(_plan(_runner(tmp_path, tiny_model, domain_corpus=str(corpus))))
    assert set(rerun) == set(EXPERIMENT_PHASES) - {
        "tapt",
        "classifier/baseline/seed_0",
        "classifier/tapt/seed_0",
    }
    assert rerun["dapt"].startswith(
        f"the resolved config changed (CORPUS_PATH {DATA / 'domain.txt'} -> {corpus})"
    )
    assert rerun["select_random"].startswith("the resolved config changed (domain_paths")
    assert rerun["rand_tapt"] == "it starts from select_random, which changed"
    # the same path with another content: found by the content's hash
    _complete(_runner(tmp_path, tiny_model, domain_corpus=str(corpus)))
    with open(corpus, "a") as handle:
        handle.write("one more domain document .\n")
    rerun = _rerun(_plan(_runner(tmp_path, tiny_model, domain_corpus=str(corpus))))
    assert rerun["dapt"] == rerun["select_knn"] == f"input files changed ({corpus})"
    assert "tapt" not in rerun


def test_a_phase_a_paper_variant_shares_with_one_of_the_files_own_keeps_its_name(
    tiny_model, tmp_path
):
    mine = {"name": "my_tapt", "tapt": {}}  # the paper's TAPT under another name
    runner = _runner(tmp_path, tiny_model, variants=["baseline", mine, "tapt"])
    assert [phase.name for phase in runner.phases if phase.kind == "tapt"] == ["tapt"]
    _complete(runner)
    for variants in (["baseline", "tapt"], ["tapt", mine, "baseline"]):
        assert _rerun(_plan(_runner(tmp_path, tiny_model, variants=variants))) == {}


def test_a_project_moved_with_its_runs_reuses_them_with_a_relative_base_model(
    tiny_model, tmp_path, monkeypatch
):
    project = tmp_path / "project"
    shutil.copytree(tiny_model, project / "model")
    shutil.copytree(TASK, project / "task")
    task = {split: f"task/{split}.jsonl" for split in ("train", "dev", "test")}
    options = {"base_model": "model", "task": task, "variants": ["baseline", "tapt"]}
    write_experiment(project / "experiment.jsonnet", tiny_model, **options)
    monkeypatch.chdir(project)
    runner = ExperimentRunner(load_experiment("experiment.jsonnet"), "runs")
    assert runner.phases[0].settings["MODEL_NAME"] == "model"
    _complete(runner)
    shutil.copytree(project, tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "moved")
    moved = ExperimentRunner(load_experiment("experiment.jsonnet"), "runs")
    assert _rerun(_plan(moved)) == {}


def test_the_users_files_are_hashed_also_where_they_lie_in_the_output_directory(
    tiny_model, tmp_path
):
    data = tmp_path / "out" / "data"
    shutil.copytree(TASK, data)
    shutil.copytree(tiny_model, data / "model")
    task = {split: str(data / f"{split}.jsonl") for split in ("train", "dev", "test")}
    options = {"task": task, "base_model": str(data / "model"), "variants": ["baseline"]}
    _complete(_runner(tmp_path, tiny_model, **options))
    assert _rerun(_plan(_runner(tmp_path, tiny_model, **options))) == {}
    with open(data / "dev.jsonl", "a") as handle:
        handle.write(json.dumps({"text": "one more dev example .", "label": "activator"}) + "\n")
    assert _rerun(_plan(_runner(tmp_path, tiny_model, **options))) == {
        "classifier/baseline/seed_0": "input files changed (<output_dir>/data/dev.jsonl)"
    }
    _complete(_runner(tmp_path, tiny_model, **options))
    with open(data / "model" / "config.json", "a") as handle:
        handle.write("\n")
    assert _rerun(_plan(_runner(tmp_path, tiny_model, **options))) == {
        "classifier/baseline/seed_0": "input files changed (<output_dir>/data/model/config.json)"
    }


def test_a_classifier_whose_test_file_alone_changed_is_evaluated_again_not_trained(
    tiny_model, tmp_path
):
    data = tmp_path / "task"
    shutil.copytree(TASK, data)
    task = {split: str(data / f"{split}.jsonl") for split in ("train", "dev", "test")}
    options = {"task": task, "variants": ["baseline", "dapt"]}
    runner = _runner(tmp_path, tiny_model, **options)
    _complete(runner)
    for phase in runner.phases:  # their trained runs' metrics, which hold the dev metrics
        if phase.kind == "classifier":
            (phase.directory / "metrics.json").write_text("{}")
    with open(data / "test.jsonl", "a") as handle:
        handle.write(json.dumps({"text": "one more test example .", "label": "activator"}) + "\n")
    why = f"input files changed ({data / 'test.jsonl'}), which only its evaluation reads"
    assert {
        name: value
        for name, value in _plan(_runner(tmp_path, tiny_model, **options)).items()
        if value[0] != "reuse"
    } == {
        f"classifier/{variant}/seed_0": ("evaluate", f"{why}; evaluating it")
        for variant in ("baseline", "dapt")
    }
    # an interrupted one resumes its training, then evaluates on the new file
    baseline = runner._phase("classifier/baseline/seed_0")
    runner.write_marker(baseline, "started")
    (baseline.directory / "model_state_e0_b0.th").write_bytes(b"")
    (baseline.directory / "config.json").write_text(json.dumps(baseline.run_config))
    assert _plan(_runner(tmp_path, tiny_model, **options))["classifier/baseline/seed_0"] == (
        "recover",
        "interrupted; resuming from its last checkpoint",
    )
    runner.write_marker(baseline, "complete")
    # but trained again when it starts from a phase that changed, or when what it trains on did
    settings = {**ADAPT_SETTINGS, "dapt": {**ADAPT_SETTINGS["dapt"], "LR": 0.01}}
    plan = _plan(_runner(tmp_path, tiny_model, settings=settings, **options))
    assert plan["classifier/baseline/seed_0"][0] == "evaluate"
    assert plan["classifier/dapt/seed_0"] == (
        "run",
        f"input files changed ({data / 'test.jsonl'}); it starts from dapt, which changed",
    )
    with open(data / "dev.jsonl", "a") as handle:
        handle.write(json.dumps({"text": "one more dev example .", "label": "activator"}) + "\n")
    assert _plan(_runner(tmp_path, tiny_model, **options))["classifier/baseline/seed_0"] == (
        "run",
        f"input files changed ({data / 'dev.jsonl'}, {data / 'test.jsonl'})",
    )


def test_an_interrupted_phase_is_resumed_only_with_a_checkpoint_and_an_unchanged_fingerprint(
    tiny_model, tmp_path
):
    runner = _runner(tmp_path, tiny_model)
    _complete(runner)
    phases = {phase.name: phase for phase in runner.phases}
    runner.write_marker(phases["dapt"], "started")
    (phases["dapt"].directory / "model_state_e0_b0.th").write_bytes(b"")
    # the config its interrupted run trained, as `allennlp train` keeps it
    (phases["dapt"].directory / "config.json").write_text(json.dumps(phases["dapt"].run_config))
    runner.write_marker(phases["tapt"], "started")
    runner.write_marker(phases["classifier/baseline/seed_0"], "trained")
    (phases["classifier/baseline/seed_0"].directory / "dev_metrics.json").unlink()
    (phases["classifier/baseline/seed_0"].directory / "metrics.json").write_text("{}")
    (tmp_path / "out" / ".phases" / "classifier.tapt.seed_0.json").unlink()
    (tmp_path / "out" / "selection" / "rand_tapt.jsonl").unlink()
    plan = _plan(runner)
    assert plan["dapt"] == ("recover", "interrupted; resuming from its last checkpoint")
    assert plan["tapt"] == ("run", "interrupted before its first checkpoint; starting over")
    assert plan["classifier/baseline/seed_0"] == (
        "evaluate",
        "its training completed; evaluating it",
    )
    assert plan["classifier/tapt/seed_0"] == ("run", "no record that it completed; starting over")
    assert plan["select_random"] == ("run", "its outputs are missing (rand_tapt.jsonl)")
    # a checkpoint of another configuration is never resumed
    settings = {**ADAPT_SETTINGS, "dapt": {**ADAPT_SETTINGS["dapt"], "LR": 0.01}}
    assert _plan(_runner(tmp_path, tiny_model, settings=settings))["dapt"] == (
        "run",
        "the resolved config changed (LR 0.001 -> 0.01)",
    )
    # nor one whose run trained another config than its fingerprint's (a config file edited
    # before the phase started, under a version that trained from it)
    config = json.loads((phases["dapt"].directory / "config.json").read_text())
    (phases["dapt"].directory / "config.json").write_text(
        json.dumps({**config, "trainer": {**config["trainer"], "num_epochs": 99}})
    )
    assert _plan(runner)["dapt"] == (
        "run",
        "interrupted, and its run's config.json is not its resolved config; starting over",
    )
    (phases["dapt"].directory / "config.json").write_text(json.dumps(config))
    # the output directory moved: the run's config.json names the old place, and is resumed
    tapt = phases["dapt_tapt"]
    runner.write_marker(tapt, "started")
    (tapt.directory / "model_state_e0_b0.th").write_bytes(b"")
    (tapt.directory / "config.json").write_text(json.dumps(tapt.run_config))
    assert str(tmp_path / "out" / "dapt" / "exported_model") in json.dumps(tapt.run_config)
    (tmp_path / "out").rename(tmp_path / "moved")
    moved = _plan(_runner(tmp_path, tiny_model, output="moved"))
    assert moved["dapt_tapt"] == ("recover", "interrupted; resuming from its last checkpoint")


def test_a_complete_experiment_is_not_run_again_and_its_results_hold_no_output_path(
    tiny_model, tmp_path
):
    runner = _runner(tmp_path, tiny_model)
    _complete(runner)
    results = _runner(tmp_path, tiny_model).run()
    assert [
        json.loads(line)["action"]
        for line in (tmp_path / "out" / "phases.jsonl").read_text().splitlines()
    ] == ["skipped"] * len(EXPERIMENT_PHASES)
    assert results == json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["experiment"] == str(tmp_path / "experiment.jsonnet")
    assert results["variants"]["dapt"]["seeds"]["0"]["test"] == {"macro_f1": 0.5}
    phases = results["phases"]
    assert list(phases) == EXPERIMENT_PHASES
    assert phases["dapt_tapt"]["settings"]["MODEL_NAME"] == "<output_dir>/dapt/exported_model"
    assert phases["dapt"]["settings"]["NUM_STEPS"] == "4"
    assert phases["select_knn"]["settings"]["k"] == 3
    assert {name: phase.fingerprint for name, phase in zip(EXPERIMENT_PHASES, runner.phases)} == {
        name: phase["fingerprint"] for name, phase in phases.items()
    }
    del results["output_dir"]
    assert str(tmp_path / "out") not in json.dumps(results)
    # the same experiment in another output directory has the same fingerprints
    elsewhere = _runner(tmp_path, tiny_model, output="elsewhere")
    assert [phase.fingerprint for phase in elsewhere.phases] == [
        phase.fingerprint for phase in runner.phases
    ]


def test_results_record_each_phases_wall_training_and_evaluation_seconds(tiny_model, tmp_path):
    runner = _runner(tmp_path, tiny_model)
    _complete(runner)
    output = tmp_path / "out"
    (output / "phase_times.json").write_text(  # and a phase of a seed no longer in the file
        json.dumps({"dapt": 100.0, "classifier/baseline/seed_0": 90000.0, "gone/seed_9": 5.0})
    )
    # the head warm-up trains and the held-out losses evaluate, outside `training_duration`
    (output / "dapt" / "metrics.json").write_text(
        json.dumps(
            {
                "training_duration": "0:01:02.500000",
                "head_warmup_seconds": 7.25,
                "heldout_mlm_loss_seconds": 3.5,
            }
        )
    )
    classifier = output / "classifier" / "baseline" / "seed_0"
    (classifier / "metrics.json").write_text(json.dumps({"training_duration": "1 day, 0:00:30"}))
    (classifier / "evaluation_time.json").write_text(json.dumps({"evaluation_seconds": 4.25}))
    results = _runner(tmp_path, tiny_model).run()
    assert results["phase_seconds"] == {"dapt": 100.0, "classifier/baseline/seed_0": 90000.0}
    timing = results["phase_timing"]
    assert list(timing) == EXPERIMENT_PHASES
    assert timing["dapt"] == {
        "wall_seconds": 100.0,
        "training_seconds": 62.5 + 7.25,
        "evaluation_seconds": 3.5,
    }
    assert timing["classifier/baseline/seed_0"] == {
        "wall_seconds": 90000.0,
        "training_seconds": 86430.0,
        "evaluation_seconds": 4.25,
    }
    # nothing recorded (a selection; a run of an earlier version): no seconds
    assert (
        timing["select_knn"]
        == timing["classifier/dapt/seed_0"]
        == {
            "wall_seconds": 0.0,
            "training_seconds": 0.0,
            "evaluation_seconds": 0.0,
        }
    )


def test_results_sum_each_variants_adaptation_and_fine_tuning_times_and_report_its_heldout_losses(
    tiny_model, tmp_path
):
    runner = _runner(tmp_path, tiny_model)
    _complete(runner)
    times = {name: float(2**number) for number, name in enumerate(EXPERIMENT_PHASES)}
    (tmp_path / "out" / "phase_times.json").write_text(json.dumps(times))
    for name, (start, end) in {"dapt": (3.0, 2.0), "dapt_tapt": (2.5, 1.5)}.items():
        (tmp_path / "out" / name / "metrics.json").write_text(
            json.dumps({"heldout_mlm_loss_start": start, "heldout_mlm_loss_end": end})
        )
    variants = _runner(tmp_path, tiny_model).run()["variants"]
    adaptation = {
        "baseline": [],
        "dapt": ["dapt"],
        "tapt": ["tapt"],
        "dapt_tapt": ["dapt", "dapt_tapt"],
        "knn_tapt": ["select_knn", "knn_tapt"],
        "rand_tapt": ["select_knn", "select_random", "rand_tapt"],
    }
    for variant, phases in adaptation.items():
        assert variants[variant]["adaptation_seconds"] == sum(times[name] for name in phases), (
            variant
        )
        assert variants[variant]["fine_tuning_seconds"] == times[f"classifier/{variant}/seed_0"], (
            variant
        )
    assert variants["dapt_tapt"]["heldout_mlm_loss"] == {
        "dapt": {"start": 3.0, "end": 2.0},
        "dapt_tapt": {"start": 2.5, "end": 1.5},
    }
    assert (
        variants["tapt"]["heldout_mlm_loss"] == {}
        and variants["baseline"]["heldout_mlm_loss"] == {}
    )


def test_results_hold_the_experiment_file_the_resolved_settings_and_a_plot_of_the_table(
    tiny_model, tmp_path
):
    experiment = {"seeds": [0, 1, 2], "variants": ["baseline", "dapt", "dapt_tapt"]}
    runner = _runner(tmp_path, tiny_model, **experiment)
    _complete(runner)
    variants = runner.spec.variants
    for phase in runner.phases:
        if phase.kind == "classifier":  # another score for every variant, seed and split
            for split, offset in (("dev", 0.0), ("test", 0.002)):
                score = 0.5 + 0.05 * variants.index(phase.variant) + 0.01 * phase.seed + offset
                (phase.directory / f"{split}_metrics.json").write_text(
                    json.dumps({"macro_f1": score})
                )
    results = _runner(tmp_path, tiny_model, **experiment).run()
    output = tmp_path / "out"
    # the experiment as read, and every phase's resolved config
    assert results["experiment_file"]["seeds"] == [0, 1, 2]
    assert results["experiment_file"]["base_model"] == str(tiny_model)
    assert results["experiment_file"]["settings"] == ADAPT_SETTINGS
    assert results["phases"]["dapt"]["config"]["trainer"]["optimizer"]["lr"] == 0.001
    assert (
        results["phases"]["dapt_tapt"]["config"]["model"]["model_name"]
        == "<output_dir>/dapt/exported_model"
    )
    report = (output / "results.md").read_text()
    assert report.startswith(f"# Results of {tmp_path / 'experiment.jsonnet'}\n\n| variant |")
    assert "![macro_f1 of every variant, mean and spread](results.png)" in report
    experiment = report.split("```json\n")[1].split("\n```")[0]
    assert json.loads(experiment) == results["experiment_file"]
    settings = {
        line.split(" | ")[0][2:]: line for line in report.splitlines()[-3:] if line.startswith("| ")
    }
    assert settings["dapt"].startswith("| dapt | 4 steps | 8 × 2 | 0.001 | ")
    # the values of every phase of a kind, each once; a column no phase has a value for is left out
    assert settings["classifier"].startswith("| classifier | 1 epoch | 8 × 2 | 0.001 | ")
    assert settings["classifier"].endswith(" | - | 0, 1, 2 |")
    # results.png: a PNG of a plausible size, its bars the means and spreads of results.json
    png = (output / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < len(png) < 2_000_000
    width, height = struct.unpack(">II", png[16:24])
    assert 1000 <= width <= 4000 and 400 <= height <= 2000
    figure = draw_results(json.loads((output / "results.json").read_text()))
    assert [axes.get_title() for axes in figure.axes] == ["dev", "test"]
    for axes, split in zip(figure.axes, ("dev", "test")):
        (bars,) = [c for c in axes.containers if isinstance(c, BarContainer)]
        errors = bars.errorbar.lines[2][0].get_segments()
        rows = [results["variants"][variant][split] for variant in variants]
        assert [bar.get_height() for bar in bars] == pytest.approx(
            [100 * row["mean"] for row in rows]
        )
        assert [(top - bottom) / 2 for (_, bottom), (_, top) in errors] == pytest.approx(
            [100 * row["std"] for row in rows]
        )
        assert [label.get_text() for label in axes.get_xticklabels()] == variants
    assert results["variants"]["dapt"]["dev"]["std"] == pytest.approx(0.01)


def _dry_run_error(tmp_path, model, jobs=1, **overrides) -> str:
    with pytest.raises(ConfigurationError) as error:
        _runner(tmp_path, model, jobs=jobs, variants=["baseline", "dapt"], **overrides)
    assert not (tmp_path / "out").exists()
    return error.value.message


@pytest.mark.parametrize(
    "gpus, phase, setting, message",
    [
        (0, "dapt", {"CUDA_DEVICES": "0"}, "CUDA_DEVICES names GPU 0, but this machine has 0"),
        (2, "dapt", {"CUDA_DEVICES": "0,2"}, "CUDA_DEVICES names GPU 2, but this machine has 2"),
        (0, "classifier", {"USE_AMP": "true"}, "USE_AMP=true needs a CUDA GPU, but the phase"),
        (1, "dapt", {"BF16": "true", "CUDA_DEVICES": "-1"}, "BF16=true needs a CUDA GPU"),
    ],
)
def test_devices_this_machine_lacks_stop_the_experiment_before_any_phase_they_would_run(
    tiny_model, tmp_path, monkeypatch, gpus, phase, setting, message
):
    settings = {**ADAPT_SETTINGS, phase: {**ADAPT_SETTINGS[phase], **setting}}
    runner = _runner(tmp_path, tiny_model, variants=["baseline", "dapt"], settings=settings)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(ConfigurationError) as error:
        runner.run()
    assert f": phase {phase}" in error.value.message and message in error.value.message
    assert not (tmp_path / "out").exists()  # a new output directory: nothing written
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigurationError, match=f": phase {phase}"):
        runner.run()
    assert list((tmp_path / "out").iterdir()) == []
    # where it has run, the experiment is looked over without those devices: nothing to run
    _complete(runner)
    runner.run()
    # and where a phase on them is left to run, nothing there is touched before it is refused
    marker = "classifier.baseline.seed_0" if phase == "classifier" else phase
    (tmp_path / "out" / ".phases" / f"{marker}.json").unlink()

    def state():
        return {path: path.stat().st_mtime_ns for path in (tmp_path / "out").rglob("*")}

    before = state()
    with pytest.raises(ConfigurationError, match=f": phase {phase}"):
        runner.run()
    assert state() == before


def test_a_value_a_config_refuses_stops_the_experiment_before_any_phase(tiny_model, tmp_path):
    settings = {**ADAPT_SETTINGS, "classifier": {"BATCH_SIZE": 0}}
    message = _dry_run_error(tmp_path, tiny_model, settings=settings)
    assert message.startswith(
        f"experiment {tmp_path / 'experiment.jsonnet'}: phase classifier/baseline/seed_0: "
    )
    assert (
        "classifier.jsonnet: environment variable BATCH_SIZE must be an integer of at least 1; got 0"
        in message
    )


@pytest.mark.parametrize(
    "kind, name, value, message",
    [
        ("dapt", "MLM_MODE", "packd", "environment variable MLM_MODE must be one of "),
        ("dapt", "MLM_PROBABILITY", "1.5", "MLM_PROBABILITY must be a number above 0 and below 1"),
        ("classifier", "LR", "-1", "environment variable LR must be a number above 0; got -1"),
        (
            "dapt",
            "MAX_LENGTH",
            "1024",
            "phase dapt: MAX_LENGTH 1024 is above the position limit of `base_model` ",
        ),
        (
            "classifier",
            "MAX_LENGTH",
            "513",
            "phase classifier/baseline/seed_0: MAX_LENGTH 513 is above the position limit of "
            "`base_model` ",
        ),
    ],
)
def test_a_value_a_reader_model_or_optimizer_would_refuse_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path, kind, name, value, message
):
    settings = {**ADAPT_SETTINGS, kind: {**ADAPT_SETTINGS[kind], name: value}}
    assert message in _dry_run_error(tmp_path, tiny_model, settings=settings)


def test_a_knn_selection_without_faiss_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "faiss", None)  # not importable
    with pytest.raises(ConfigurationError) as error:
        _runner(tmp_path, tiny_model, variants=["dapt", "knn_tapt"])
    assert error.value.message == (
        f"experiment {tmp_path / 'experiment.jsonnet'}: phase select_knn: TAPT data selection "
        "needs faiss: pip install faiss-cpu (or the plugin's `selection` extra)"
    )
    assert not (tmp_path / "out").exists()


def test_a_complete_knn_selection_is_reused_without_faiss(tiny_model, tmp_path, monkeypatch):
    _complete(_runner(tmp_path, tiny_model, variants=["dapt", "knn_tapt"]))
    monkeypatch.setitem(sys.modules, "faiss", None)  # not importable
    plan = _plan(_runner(tmp_path, tiny_model, variants=["dapt", "knn_tapt"]))
    assert plan["select_knn"] == ("reuse", "")
    assert not _rerun(plan)


def test_a_missing_input_file_of_a_setting_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path
):
    settings = {
        **ADAPT_SETTINGS,
        "dapt": {**ADAPT_SETTINGS["dapt"], "HELDOUT_PATH": "/nowhere/heldout.txt"},
    }
    assert "phase dapt: /nowhere/heldout.txt: no such file" in _dry_run_error(
        tmp_path, tiny_model, settings=settings
    )


def test_a_base_model_not_available_offline_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path
):
    # the test session runs with HF_HUB_OFFLINE=1 (tests/conftest.py) and no hub cache of roberta-base
    assert (
        "`base_model`: MODEL_NAME 'roberta-base': no such directory, and no model of that name "
        "in the local Hugging Face cache, the only place the hub is read from offline"
        in _dry_run_error(tmp_path, tiny_model, base_model="roberta-base")
    )


@pytest.mark.parametrize("split", ["train", "dev", "test"])
@pytest.mark.parametrize("sample", [{}, {"sample": 10}])
def test_a_task_file_without_labels_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path, split, sample
):
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text('{"text": "a sentence"}\n' * 20)  # enough lines for the sample
    task = {**_sampled_task(**sample), split: str(unlabelled)}
    message = _dry_run_error(tmp_path, tiny_model, task=task)  # no word of the sample
    assert message.endswith(
        f"`task.{split}`: {unlabelled}:1: no 'label' field; training and evaluation data need a "
        "label on every line (only data to predict on, which `allennlp predict` reads, has none)"
    )


def test_a_dev_label_never_seen_in_training_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path
):
    dev = tmp_path / "dev.jsonl"
    dev.write_text(
        (TASK / "dev.jsonl").read_text()
        + json.dumps({"text": "a new kind", "label": "neutral"})
        + "\n"
    )
    task = {"train": str(TASK / "train.jsonl"), "dev": str(dev), "test": str(TASK / "test.jsonl")}
    message = _dry_run_error(tmp_path, tiny_model, task=task)
    assert f"`task.dev`: {dev}:41: label 'neutral' was never seen in training" in message


def test_a_task_of_one_label_stops_the_experiment_before_any_phase(tiny_model, tmp_path):
    files = {}
    for split in ("train", "dev", "test"):
        lines = [json.loads(line) for line in (TASK / f"{split}.jsonl").read_text().splitlines()]
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text(
            "".join(json.dumps({**line, "label": "inhibitor"}) + "\n" for line in lines)
        )
    task = {split: str(path) for split, path in files.items()}
    message = _dry_run_error(tmp_path, tiny_model, task=task)
    assert message.endswith(
        "`task.train` has one label, 'inhibitor': a classifier needs two or more (every score "
        "would be that label's)"
    )


def _row(dev, std, losses=None):
    return {
        "dev": {"mean": dev, "std": std},
        "test": {"mean": dev, "std": std},
        "heldout_mlm_loss": losses or {},
        "adaptation_seconds": 1.0,
        "fine_tuning_seconds": 2.0,
    }


def test_a_variant_below_the_baseline_by_more_than_the_spread_is_flagged_with_its_heldout_losses():
    variants = {
        "baseline": _row(0.60, 0.02),
        "dapt": _row(0.59, 0.01, {"dapt": {"start": 2.5, "end": 2.1}}),  # within the spread
        "tapt": _row(0.45, 0.03, {"tapt": {"start": 9.8, "end": 4.3}}),  # below it
    }
    for row in variants.values():
        row["below_baseline"] = row["dev"]["mean"] < 0.60 - max(row["dev"]["std"], 0.02)
    table = ExperimentRunner.table({"metric": "macro_f1", "seeds": [0, 1, 2], "variants": variants})
    lines = table.splitlines()
    assert lines[3] == "| dapt | 59.0 ± 1.0 | 59.0 ± 1.0 | dapt 2.500 -> 2.100 | 1 s | 2 s |"
    assert (
        lines[4]
        == "| tapt (below baseline) | 45.0 ± 3.0 | 45.0 ± 3.0 | tapt 9.800 -> 4.300 | 1 s | 2 s |"
    )
    assert lines[6].startswith(
        "(below baseline): tapt scored below the baseline on dev by more than the spread"
    )


@pytest.mark.process
def test_a_second_adapt_on_the_same_output_directory_is_refused(tiny_model, tmp_path):
    import subprocess
    import sys

    runner = _runner(tmp_path, tiny_model)
    _complete(runner)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
                "print('held', flush=True); time.sleep(60)"
            ),
            str(tmp_path / "out" / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert (
            holder.stdout.readline().strip() == "held"
        )  # another adapt's lock, in another process
        with pytest.raises(ConfigurationError, match="another `allennlp adapt` is running in"):
            _runner(tmp_path, tiny_model).run()
    finally:
        holder.kill()
        holder.wait()
    assert _runner(tmp_path, tiny_model).run()["variants"]  # free again once it has ended


def test_the_experiments_preset_reaches_every_classifier_and_changes_their_fingerprints(
    tiny_model, tmp_path
):
    # the classifiers of the base model, of a DAPT model and of a model adapted twice
    variants = ["baseline", "dapt", "dapt_tapt"]
    _complete(_runner(tmp_path, tiny_model, variants=variants))
    runner = _runner(tmp_path, tiny_model, preset="big", variants=variants)
    classifiers = [phase.name for phase in runner.phases if phase.kind == "classifier"]
    for phase in runner.phases:
        assert ("PRESET" in phase.settings) == (phase.kind == "classifier"), phase.name
        if phase.kind == "classifier":  # big: warm-up and decay (its epochs are the settings')
            assert phase.settings["PRESET"] == "big"
            assert phase.config["trainer"]["learning_rate_scheduler"]["warmup_ratio"] == 0.06
    rerun = _rerun(_plan(runner))
    assert sorted(rerun) == sorted(classifiers)
    assert rerun["classifier/dapt/seed_0"] == "the resolved config changed (PRESET unset -> big)"
    # small is the default: naming it resolves the same configs
    assert _rerun(_plan(_runner(tmp_path, tiny_model, preset="small", variants=variants))) == {}


def test_a_bad_preset_stops_the_experiment_before_any_phase(tiny_model, tmp_path):
    message = _dry_run_error(tmp_path, tiny_model, preset="large")
    assert message.endswith(
        "`preset` must be one of small, mini, big (classifier.jsonnet's presets, the original "
        "repository's ROBERTA_CLASSIFIER_SMALL, _MINI and _BIG); got 'large'"
    )


def _sampled_task(**sample) -> dict:
    return {**{split: str(TASK / f"{split}.jsonl") for split in ("train", "dev", "test")}, **sample}


def _write_sample(runner: ExperimentRunner) -> list:
    """Runs the experiment's first phase, the task's sample, and returns the lines it wrote."""
    phase = runner.phases[0]
    assert phase.name == "task_sample"
    runner._run_sample(phase, "run")
    return phase.outputs[0].read_text().splitlines()


def test_with_a_task_sample_no_other_task_text_reaches_tapt_selection_or_classifiers(
    tiny_model, tmp_path
):
    runner = _runner(tmp_path, tiny_model, task=_sampled_task(sample=10))
    train = str(TASK / "train.jsonl")
    phases = {phase.name: phase for phase in runner.phases}
    assert list(phases) == ["task_sample", *EXPERIMENT_PHASES]
    assert list(phases["task_sample"].inputs) == [train]  # the only phase that reads it
    for phase in runner.phases[1:]:
        assert train not in json.dumps([phase.settings, phase.config, phase.inputs]), phase.name
    sample = "<output_dir>/task_sample/train.jsonl"
    assert phases["tapt"].config["train_data_path"] == sample
    assert phases["select_knn"].config["task_paths"] == sample  # the kNN-TAPT queries
    for name in ("knn_tapt", "rand_tapt"):  # the sample, then the selection
        assert phases[name].config["train_data_path"].startswith(sample + ",")
    for phase in runner.phases:
        if phase.kind == "classifier":
            assert phase.config["train_data_path"] == sample
    lines = _write_sample(runner)
    assert len(lines) == 10 and set(lines) <= set((TASK / "train.jsonl").read_text().splitlines())
    # what TAPT reads: the documents of its config's data, the sample's ten texts and no other
    tapt_data = phases["tapt"].config["train_data_path"].replace("<output_dir>", str(runner.output))
    assert [document.text for document in iter_documents(tapt_data)] == [
        json.loads(line)["text"] for line in lines
    ]


def test_a_task_sample_is_the_same_for_the_same_seed_and_another_for_another(tiny_model, tmp_path):
    def sample(output, **seed):
        # one variant: the sample is drawn before any variant's phase
        task = _sampled_task(sample=10, **seed)
        return _write_sample(_runner(tmp_path, tiny_model, output, task=task, variants=["tapt"]))

    first = sample("a")
    again = sample("b", sample_seed=0)
    other = sample("c", sample_seed=1)
    assert first == again and set(first) != set(other)
    # lines of the file in its order (it repeats some lines), and the examples the classifier's
    # TRAIN_SAMPLE draws under the same seed
    train = iter((TASK / "train.jsonl").read_text().splitlines())
    assert all(line in train for line in other)
    reader = TextClassificationJsonWithSamplingReader(
        tokenizer=WhitespaceTokenizer(), sample=10, sample_seed=1
    )
    assert [
        [token.text for token in instance["tokens"].tokens]
        for instance in reader.read(TASK / "train.jsonl")
    ] == [json.loads(line)["text"].split() for line in other]


def test_a_changed_task_sample_reruns_every_phase_that_reads_task_text(tiny_model, tmp_path):
    _complete(_runner(tmp_path, tiny_model, task=_sampled_task(sample=10)))
    assert _rerun(_plan(_runner(tmp_path, tiny_model, task=_sampled_task(sample=10)))) == {}
    rerun = _rerun(
        _plan(_runner(tmp_path, tiny_model, task=_sampled_task(sample=10, sample_seed=1)))
    )
    assert rerun["task_sample"] == "the resolved config changed (seed 0 -> 1)"
    assert rerun["tapt"] == rerun["select_knn"] == "it starts from task_sample, which changed"
    assert set(rerun) == {"task_sample", *EXPERIMENT_PHASES} - {"dapt"}  # DAPT reads no task text


def test_a_task_sample_the_data_cannot_give_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path
):
    train = TASK / "train.jsonl"
    assert (
        f"`task.train`: {train}: `task.sample` is 41 but the file has only 40 examples"
        in _dry_run_error(tmp_path, tiny_model, task=_sampled_task(sample=41))
    )
    # one example holds one of the two labels: the dev file's other one was never seen
    message = _dry_run_error(tmp_path, tiny_model, task=_sampled_task(sample=1))
    assert message.startswith(f"experiment {tmp_path / 'experiment.jsonnet'}: `task.dev`: ")
    assert "label 'activator' was never seen in training" in message
    assert message.endswith(
        "(the classifiers train on the sample of 1 example, `task.sample`: a larger sample or "
        "another `task.sample_seed` may hold it)"
    )


def test_heldout_texts_add_one_loss_phase_per_encoder_measured_alike_and_rerun_with_it(
    tiny_model, tmp_path
):
    heldout = tmp_path / "heldout.txt"
    shutil.copy(DATA / "domain_heldout.txt", heldout)
    texts = {"domain": str(heldout), "general": str(DATA / "general.txt")}
    # TAPT masks with another seed than DAPT: the losses are still measured with DAPT's masks
    settings = {**ADAPT_SETTINGS, "tapt": {**ADAPT_SETTINGS["tapt"], "SEED": 5}}
    variants = ["baseline", "dapt", "tapt", "dapt_tapt"]
    runner = _runner(tmp_path, tiny_model, heldout=texts, settings=settings, variants=variants)
    losses = [phase for phase in runner.phases if phase.kind == "mlm_loss"]
    encoders = ["base", "dapt", "tapt", "dapt_tapt"]
    assert [phase.name for phase in losses] == [f"mlm_loss/{name}" for name in encoders]
    assert [phase.upstream for phase in losses] == [None, *encoders[1:]]
    assert losses[0].settings["MODEL_NAME"] == str(tiny_model)
    assert losses[3].settings["MODEL_NAME"] == str(runner.output / "dapt_tapt" / "exported_model")
    dapt = next(phase for phase in runner.phases if phase.name == "dapt")
    tapt = next(phase for phase in runner.phases if phase.name == "tapt")
    assert tapt.config["model"]["masking_seed"] == 5 != dapt.config["model"]["masking_seed"]
    for phase in losses:  # one reader, loader and masking for every encoder: DAPT's
        assert phase.config["reference"]["dataset_reader"] == dapt.config["dataset_reader"]
        assert phase.config["reference"]["model"] == {
            "mlm_probability": 0.15,
            "whole_word_masking": False,
            "masking_seed": 0,
        }
        assert {str(heldout), str(DATA / "general.txt")} <= set(phase.inputs)
    _complete(runner)
    # another DAPT run: the losses of what it made, and only those, are measured again
    longer = {**settings, "dapt": {**settings["dapt"], "NUM_STEPS": 8}}
    rerun = _rerun(
        _plan(_runner(tmp_path, tiny_model, heldout=texts, settings=longer, variants=variants))
    )
    assert rerun["mlm_loss/dapt"] == "it starts from dapt, which changed"
    assert rerun["mlm_loss/dapt_tapt"] == "it starts from dapt_tapt, which changed"
    assert not {"mlm_loss/base", "mlm_loss/tapt"} & set(rerun)
    # another held-out text: every encoder is measured again, and nothing is trained
    with open(heldout, "a") as handle:
        handle.write("one more held-out document .\n")
    rerun = _rerun(
        _plan(_runner(tmp_path, tiny_model, heldout=texts, settings=settings, variants=variants))
    )
    assert set(rerun) == {phase.name for phase in losses}


def test_a_rerun_that_redoes_a_phase_removes_the_earlier_results_until_it_writes_its_own(
    tiny_model, tmp_path, monkeypatch
):
    _complete(_runner(tmp_path, tiny_model, variants=["baseline"]))
    _runner(tmp_path, tiny_model, variants=["baseline"]).run()
    results = [tmp_path / "out" / name for name in ("results.json", "results.md")]
    assert all(path.exists() for path in results)
    settings = {**ADAPT_SETTINGS, "classifier": {"NUM_EPOCHS": 2}}
    runner = _runner(tmp_path, tiny_model, variants=["baseline"], settings=settings)

    def failing(phase, action):
        raise RuntimeError("the phase failed")

    monkeypatch.setattr(runner, "_run_classifier", failing)
    with pytest.raises(RuntimeError, match="the phase failed"):
        runner.run()
    assert not any(path.exists() for path in results)


def test_the_heldout_losses_of_an_earlier_run_do_not_outlive_heldout(tiny_model, tmp_path):
    _complete(_runner(tmp_path, tiny_model))
    for name in ("mlm_loss.json", "mlm_loss.md", "mlm_loss.png"):
        (tmp_path / "out" / name).write_text("the losses of encoders that are gone")
    _runner(tmp_path, tiny_model).run()  # no `heldout`
    assert not list((tmp_path / "out").glob("mlm_loss*"))
    assert (tmp_path / "out" / "results.md").exists()


def test_heldout_must_name_existing_texts(tiny_model, tmp_path):
    message = _dry_run_error(tmp_path, tiny_model, heldout={"domain": str(tmp_path / "gone.txt")})
    assert "`heldout.domain`: " in message and "gone.txt" in message
    message = _dry_run_error(tmp_path, tiny_model, heldout=[str(DATA / "general.txt")])
    assert "`heldout` must map names to held-out text files" in message


def test_phases_run_the_configs_of_the_dry_run_when_their_files_change_meanwhile(
    tiny_model, tmp_path, monkeypatch, phase_calls_in_process
):
    """Configs edited while an experiment runs change none of its phases; the next run sees them."""
    configs = tmp_path / "training_config"
    shutil.copytree(config_dir(), configs)
    monkeypatch.setattr("dapt_plugin.experiment.runner.config_dir", lambda: configs)
    texts = {"general": str(DATA / "general.txt")}
    runner = _runner(tmp_path, tiny_model, heldout=texts)
    phase, losses = runner._phase("classifier/dapt/seed_0"), runner._phase("mlm_loss/base")
    resolved = json.loads(json.dumps(phase.run_config))
    assert resolved["trainer"]["validation_metric"] == "+macro_f1"
    assert losses.run_config["reference"]["model"]["mlm_probability"] == 0.15
    for name, old, new in [
        ("classifier.jsonnet", "validation_metric: '+macro_f1'", "validation_metric: '+accuracy'"),
        (
            "lib/mlm.libsonnet",
            "env.float('MLM_PROBABILITY', 0.15, ",
            "env.float('MLM_PROBABILITY', 0.3, ",
        ),
    ]:
        (configs / name).write_text((configs / name).read_text().replace(old, new))
    runs = []
    monkeypatch.setattr(
        "dapt_plugin.experiment.runner.run_allennlp_preloaded",
        lambda arguments, settings, log, hold: runs.append(arguments) or 0,
    )
    runner._train(phase, recover=False)
    [(command, config_file, *rest)] = runs
    assert (command, rest) == ("train", ["-s", str(phase.directory)])
    assert json.loads(open(config_file).read()) == resolved
    # the held-out losses: the base model archived, and measured, with the dry run's masking

    class Measured(Exception):
        pass

    def load_archive(archive, cuda_device, overrides):
        raise Measured(overrides)

    monkeypatch.setattr("allennlp.models.archival.load_archive", load_archive)
    with pytest.raises(Measured) as measured:
        runner._run_mlm_loss(losses, "run")
    [_, (command, config_file, *rest)] = runs
    assert command == "archive-untrained"
    assert json.loads(open(config_file).read())["model"]["mlm_probability"] == 0.15
    assert measured.value.args[0]["model.mlm_probability"] == 0.15
    again = _runner(tmp_path, tiny_model, heldout=texts)
    assert again._phase("classifier/dapt/seed_0").run_config["trainer"]["validation_metric"] == (
        "+accuracy"
    )
    assert again._phase("mlm_loss/base").config["reference"]["model"]["mlm_probability"] == 0.3
    assert again._phase("classifier/dapt/seed_0").fingerprint != phase.fingerprint


@pytest.mark.parametrize(
    "name, value, why",
    [
        (
            "TASK",
            "chemprot",
            "an experiment names its task in its file (`task: 'chemprot'`, or its files)",
        ),
        (
            "TRAIN_SAMPLE",
            "100",
            "it would sample the classifiers' training data only, while TAPT and the kNN-TAPT "
            "selection read all of `task.train`; give `task.sample` in the experiment instead",
        ),
        (
            "TEST_PATH",
            "data/other_test.jsonl",
            "every classifier's `allennlp train` would also evaluate on it, while `allennlp "
            "adapt` evaluates `task.test` itself; give `task.test` in the experiment instead",
        ),
        (
            "PRESET",
            "big",
            "it would choose the classifiers' recipe behind the experiment's back (its "
            "`preset`, small when absent); give `preset` in the experiment instead",
        ),
        (  # another tool's name for one the experiment sets
            "TEST_FILE",
            "data/other_test.jsonl",
            "it is TEST_PATH, which is set from the experiment's `task.test` (evaluated by "
            "`allennlp adapt` itself)",
        ),
    ],
)
def test_a_variable_exported_for_a_config_run_by_hand_stops_the_experiment_before_any_phase(
    tiny_model, tmp_path, monkeypatch, name, value, why
):
    """Every phase would inherit it from the shell, to ill effect."""
    monkeypatch.setenv(name, value)
    assert _dry_run_error(tmp_path, tiny_model) == (
        f"experiment {tmp_path / 'experiment.jsonnet'}: {name}={value} is set in the environment, "
        f"which every phase inherits; {why}: unset {name} to run the experiment"
    )


@pytest.mark.parametrize(
    "name, meant",
    [
        ("WEIGHT_DECAY", "the config fixes it at the paper's value (see its header)"),
        ("LEARNING_RATE", "did you mean LR?"),
    ],
)
def test_a_variable_meant_for_a_config_stops_the_experiment_without_advice_of_train_o(
    tiny_model, tmp_path, monkeypatch, name, meant
):
    """`allennlp adapt` has no `-o`, which each config's own check advised for WEIGHT_DECAY."""
    monkeypatch.setenv(name, "0.1")
    assert _dry_run_error(tmp_path, tiny_model) == (
        f"experiment {tmp_path / 'experiment.jsonnet'}: {name}=0.1 is set in the environment, "
        f"which every phase inherits, but it is not a variable of the configs; {meant}"
    )


def test_a_variable_the_experiment_sets_for_its_phases_is_said_once_to_have_no_effect(
    tiny_model, tmp_path, monkeypatch, caplog
):
    """Not as a variable of another config for each config that does not read it."""
    reference = {phase.name: phase.config for phase in _runner(tmp_path, tiny_model).phases}
    monkeypatch.setenv("DEV_PATH", str(tmp_path / "other_dev.jsonl"))
    monkeypatch.setenv("CORPUS_PATH", str(tmp_path / "other_corpus.txt"))
    monkeypatch.setattr("dapt_plugin.common.config_variables._WARNED", set())
    monkeypatch.setattr("dapt_plugin.common.config_variables._RESOLVED", {})  # evaluated again
    with caplog.at_level(logging.WARNING):
        runner = _runner(tmp_path, tiny_model)
    assert {phase.name: phase.config for phase in runner.phases} == reference
    assert [record.getMessage() for record in caplog.records] == [
        "CORPUS_PATH is set in the environment, but the experiment sets it for every phase "
        "that reads it (from its `domain_corpus`): the environment's value has no effect",
        "DEV_PATH is set in the environment, but the experiment sets it for every phase that "
        "reads it (from its `task.dev`): the environment's value has no effect",
    ]


def test_a_variable_of_the_environment_reaches_the_phases_that_read_it_without_a_warning(
    tiny_model, tmp_path, monkeypatch, caplog
):
    """PATIENCE was logged as having no effect, as dapt.jsonnet does not read it: it had one."""
    monkeypatch.setenv("PATIENCE", "7")
    monkeypatch.setattr("dapt_plugin.common.config_variables._WARNED", set())
    monkeypatch.setattr("dapt_plugin.common.config_variables._RESOLVED", {})  # evaluated again
    with caplog.at_level(logging.WARNING):
        runner = _runner(tmp_path, tiny_model)
    classifier = next(phase for phase in runner.phases if phase.kind == "classifier")
    assert classifier.config["trainer"]["patience"] == 7
    assert not [
        record.getMessage() for record in caplog.records if "PATIENCE" in record.getMessage()
    ]


def test_a_variable_of_the_environment_no_phase_reads_is_said_to_have_no_effect(
    tiny_model, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("MLM_PROBABILITY", "0.2")  # in an experiment without masked-LM phases
    monkeypatch.setattr("dapt_plugin.common.config_variables._WARNED", set())
    with caplog.at_level(logging.WARNING):
        _runner(tmp_path, tiny_model, variants=["baseline"])
    assert [record.getMessage() for record in caplog.records] == [
        "MLM_PROBABILITY is set in the environment, but no phase of the experiment reads it (it "
        "is a variable of dapt.jsonnet and tapt.jsonnet): it has no effect"
    ]


def _timed_phases(runner: ExperimentRunner, seconds=0.1, fail=None):
    """
    Every kind of phase of `runner` replaced by one that takes `seconds` (a phase name -> seconds
    for some, 0.02 for the others), writes fake outputs (`_complete`'s) and records when it ran,
    or, for the phase `fail`, records its start and raises; returns the record: phase -> (start,
    end).
    """
    ran = {}

    def run(phase, action):
        start = time.monotonic()
        if phase.name == fail:
            ran[phase.name] = (start, start)
            raise RuntimeError(f"{phase.name} went wrong")
        time.sleep(seconds.get(phase.name, 0.02) if isinstance(seconds, dict) else seconds)
        phase.directory.mkdir(parents=True, exist_ok=True)
        for path in phase.outputs:
            path.write_text(json.dumps({"macro_f1": 0.5}))
        ran[phase.name] = (start, time.monotonic())

    for kind in ("_run_sample", "_run_mlm", "_run_selection", "_run_classifier", "_run_mlm_loss"):
        setattr(runner, kind, run)
    return ran


def _most_at_once(ran) -> int:
    events = sorted(
        [(start, 1) for start, _ in ran.values()] + [(end, -1) for _, end in ran.values()]
    )
    running = most = 0
    for _, change in events:  # an end before a start at the same moment
        running += change
        most = max(most, running)
    return most


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_phases_run_at_most_jobs_at_once_each_after_the_phases_it_starts_from_or_reads(
    tiny_model, tmp_path, jobs
):
    runner = _runner(tmp_path, tiny_model, jobs=jobs, task=_sampled_task(sample=10))
    ran = _timed_phases(runner)
    results = runner.run()
    assert set(ran) == {phase.name for phase in runner.phases}
    assert _most_at_once(ran) == jobs
    for phase in runner.phases:
        for needed in filter(None, [phase.upstream, *phase.reads]):
            assert ran[phase.name][0] >= ran[needed][1], (phase.name, needed)
    if jobs == 1:  # in the order of the plan
        assert sorted(ran, key=lambda name: ran[name][0]) == [p.name for p in runner.phases]
    assert set(results["phase_seconds"]) == set(ran)
    assert all(runner._read_marker(phase)["state"] == "complete" for phase in runner.phases)


def test_a_rerun_waits_for_the_phase_processes_of_a_killed_run_before_it_plans(
    tiny_model, tmp_path, caplog
):
    import fcntl
    import threading

    runner = _runner(tmp_path, tiny_model, variants=["baseline"])
    ran = _timed_phases(runner)
    runner.markers.mkdir(parents=True)
    # a phase's process of a killed run, still running: it holds the lock shared until it stops
    orphan = open(runner.running_lock, "a")
    fcntl.flock(orphan, fcntl.LOCK_SH)
    stopped = []

    def stop():
        time.sleep(0.5)
        stopped.append(time.monotonic())
        orphan.close()

    threading.Thread(target=stop).start()
    runner.run()
    assert min(start for start, _ in ran.values()) > stopped[0]
    assert any("waiting for the phases' processes" in message for message in caplog.messages)


def test_after_a_failure_no_phase_starts_and_those_running_complete(tiny_model, tmp_path, caplog):
    runner = _runner(tmp_path, tiny_model, jobs=2)
    # dapt and select_knn start together; select_knn fails while dapt runs
    ran = _timed_phases(runner, seconds={"dapt": 0.5}, fail="select_knn")
    with pytest.raises(RuntimeError, match="select_knn went wrong"):
        runner.run()
    assert set(ran) == {"dapt", "select_knn"} and ran["select_knn"][0] < ran["dapt"][1]
    # said when it happened, not only once dapt had ended
    assert (
        "select_knn failed: select_knn went wrong; no other phase starts, waiting for the 1 running"
        in caplog.messages
    )
    rerun = _plan(_runner(tmp_path, tiny_model))
    assert rerun["dapt"] == ("reuse", "")
    assert rerun["select_knn"] == ("run", "interrupted; starting over")
    assert _rerun(rerun).keys() == set(EXPERIMENT_PHASES) - {"dapt"}


def test_with_gnu_openmp_every_phase_gets_every_thread_and_idle_threads_sleep_soon(
    tiny_model, tmp_path, monkeypatch
):
    assert runner_module._gnu_openmp()  # torch's Linux builds
    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    assert server_environment(1) == {}
    runner = _runner(tmp_path, tiny_model, jobs=2)
    assert runner.phase_environment == {}  # as with --jobs 1
    assert runner.server_environment == server_environment(2) == {"GOMP_SPINCOUNT": "1000"}
    # what the environment says of OpenMP's waiting holds
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert server_environment(2) == {}
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "5000")
    assert server_environment(2) == {}
    monkeypatch.setattr(runner_module, "_gnu_openmp", lambda: False)
    assert server_environment(2) == {}


def test_with_another_openmp_each_phase_process_gets_its_share_of_the_threads(
    tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr(runner_module, "_gnu_openmp", lambda: False)
    monkeypatch.setattr("torch.get_num_threads", lambda: 8)
    assert _runner(tmp_path, tiny_model).phase_environment == {}
    runner = _runner(tmp_path, tiny_model, jobs=3)
    assert runner.phase_environment == {
        name: {"OMP_NUM_THREADS": "2"} for name in EXPERIMENT_PHASES
    }
    assert _runner(tmp_path, tiny_model, jobs=9).phase_environment["dapt"] == {
        "OMP_NUM_THREADS": "1"
    }
    # a phase that nothing can run beside gets them all: each phase of one variant's chain
    chain = _runner(tmp_path, tiny_model, jobs=2, variants=["dapt_tapt"])
    assert chain.phase_environment == {
        name: {"OMP_NUM_THREADS": "8"}
        for name in ["dapt", "dapt_tapt", "classifier/dapt_tapt/seed_0"]
    }
    environments = []

    def train(arguments, settings, log, hold):  # a fake training: its directory and metrics
        directory = Path(arguments[arguments.index("-s") + 1])
        directory.mkdir()
        (directory / "metrics.json").write_text(json.dumps({"best_validation_macro_f1": 0.5}))
        environments.append(settings)
        return 0

    monkeypatch.setattr("dapt_plugin.experiment.runner.run_allennlp_preloaded", train)

    def call(function, *args, env, log, hold):
        environments.append(env)
        return {"test": {"macro_f1": 0.5}}, 0.1

    monkeypatch.setattr("dapt_plugin.experiment.runner.call_preloaded", call)
    phase = runner._phase("classifier/baseline/seed_0")
    runner._run_classifier(phase, "run")  # its training, then its evaluation
    assert [environment["OMP_NUM_THREADS"] for environment in environments] == ["2", "2"]


@pytest.mark.parametrize(
    "said, exit_code, failure",
    [
        (
            "Error: data/bad.jsonl:2: not valid JSON (traceback in out.log)\n",
            1,
            "(exit 1): data/bad.jsonl:2: not valid JSON (traceback in out.log); its log is in ",
        ),
        ("", -9, "(killed by signal 9); its log is in "),
    ],
)
def test_a_failed_phase_says_what_its_process_said(
    tiny_model, tmp_path, monkeypatch, said, exit_code, failure
):
    runner = _runner(tmp_path, tiny_model, variants=["tapt"])

    def train(arguments, settings, log, hold):
        assert hold == runner.running_lock  # which a rerun waits on (`wait_for_holders`)
        with open(log, "a") as handle:
            handle.write(said)
        return exit_code

    monkeypatch.setattr("dapt_plugin.experiment.runner.run_allennlp_preloaded", train)
    with pytest.raises(ProcessFailed) as error:
        runner._train(runner._phase("tapt"), recover=False)
    assert str(error.value).startswith(f"phase tapt failed {failure}")


def test_phases_distributed_over_several_devices_cannot_run_side_by_side(tiny_model, tmp_path):
    settings = {**ADAPT_SETTINGS, "classifier": {"NUM_EPOCHS": 1, "CUDA_DEVICES": "-1,-1"}}
    _runner(tmp_path, tiny_model, variants=["baseline"], settings=settings)  # one at a time: runs
    assert _dry_run_error(tmp_path, tiny_model, jobs=2, settings=settings) == (
        f"experiment {tmp_path / 'experiment.jsonnet'}: phase classifier/baseline/seed_0 is "
        "distributed over several devices or machines (its config's `distributed`, from "
        "CUDA_DEVICES or NUM_NODES), which --jobs 2 cannot share out: run it with --jobs 1, or "
        "give the experiment one device (`CUDA_DEVICES` of a single device in its `settings`)"
    )
    with pytest.raises(ConfigurationError, match="--jobs must be 1 or more, not 0"):
        _runner(tmp_path, tiny_model, jobs=0)


def test_an_output_dir_that_is_a_file_or_under_one_is_refused_before_anything_runs(
    tiny_model, tmp_path
):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="notes.txt is a file; give a directory"):
        _runner(tmp_path, tiny_model, output="notes.txt")
    with pytest.raises(ConfigurationError, match="notes.txt is a file, not a directory"):
        _runner(tmp_path, tiny_model, output="notes.txt/out")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "signal_error, grace",
    [(KeyboardInterrupt(), 30.0), (SigTermReceived(), 0.0)],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_run_stops_its_phases_processes(
    tiny_model, tmp_path, monkeypatch, signal_error, grace
):
    """
    Ctrl-C (which a terminal sends them too) gives them time to end by themselves; SIGTERM to
    `allennlp adapt` alone, none.
    """
    runner = _runner(tmp_path, tiny_model, jobs=2)
    _timed_phases(runner)
    stopped = []

    def interrupted(*args, **kwargs):
        raise signal_error

    monkeypatch.setattr("dapt_plugin.experiment.runner.wait", interrupted)
    monkeypatch.setattr(
        "dapt_plugin.experiment.runner.stop_preloaded", lambda grace: stopped.append(grace)
    )
    with pytest.raises(type(signal_error)):
        runner.run()
    assert stopped == [grace]


def test_the_plugins_warnings_of_a_training_phase_reach_the_console_once(
    tiny_model, tmp_path, caplog
):
    from dapt_plugin.common.console import LOG_FORMAT

    runner = _runner(tmp_path, tiny_model)
    head = f"{tiny_model} has no trained masked-LM head (6 of its tensors are missing ...)"

    def run_allennlp(phase, *args):  # a phase's process writing to its out.log, as AllenNLP does
        record = logging.LogRecord(
            "dapt_plugin.models.dapt_masked_lm", logging.WARNING, "", 1, head, None, None
        )
        phase.directory.mkdir(parents=True, exist_ok=True)
        with open(phase.directory / "out.log", "a") as log:
            log.write(logging.Formatter(LOG_FORMAT).format(record) + "\n")

    runner._allennlp = run_allennlp
    runner.plan()
    with caplog.at_level(logging.WARNING, logger="dapt_plugin.experiment.progress"):
        for name in ("dapt", "tapt"):
            runner._train(next(phase for phase in runner.phases if phase.name == name), False)
    assert [record.getMessage() for record in caplog.records] == [f"dapt: {head}"]


@pytest.mark.parametrize("device, recorded", [(-1, False), (0, True)])
def test_heldout_losses_measured_on_a_gpu_record_where_their_masks_are_drawn(device, recorded):
    """GPU masks were drawn on the GPU before: such losses are measured again, CPU ones kept."""
    base_config = {
        "dataset_reader": {"type": "masked_lm_corpus"},
        "validation_data_loader": {"type": "masked_lm_batches"},
        "model": {key: None for key in runner_module._MLM_LOSS_MODEL_KEYS},
        "trainer": {"cuda_device": device},
    }
    reference = runner_module._mlm_loss_reference(base_config)
    assert ("masks_drawn_on" in reference) == recorded
