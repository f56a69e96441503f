"""
The kill matrix: runs killed with SIGKILL at every moment where a kill used to lose work or give a
wrong result, then resumed with `allennlp train --recover`, must end with exactly what an
uninterrupted run of the same config and seed gives: the same `model.tar.gz` weights, export,
`dapt_export.json` and metrics (less timings), and no leftovers. One run is killed again and
again, at one moment after the other, each time in the process that recovered from the previous
kill (`benchmarks/kill_matrix.py` kills at each moment separately and tabulates it).
"""

import json
import shutil

import pytest

from dapt_plugin.testing.kill import KILLED, leftovers, outcome, run_killed_at
from tests.conftest import CONFIGS, DATA, PROJECT_ROOT, TASK, allennlp, classifier_env, mlm_env

pytestmark = pytest.mark.process  # every test here starts a process of its own


def _mlm_env(model, **overrides):
    """A validated DAPT run whose best held-out epoch is not its last, checkpointing every step."""
    return mlm_env(
        model,
        CORPUS_PATH=str(TASK / "train.jsonl"),
        HELDOUT_PATH=str(DATA / "general.txt"),
        NUM_STEPS="9",
        NUM_CHECKPOINTS="3",
        CHECKPOINT_EVERY_BATCHES="1",
        EXPORT_EVERY_STEPS="3",
        LR="2e-2",
        **overrides,
    )


def _classifier_env(model):
    return classifier_env(model, NUM_EPOCHS="3", LR="3e-3")


def _train(config, run, env, **kwargs):
    return run_killed_at(
        ["train", str(CONFIGS / config), "-s", str(run), *kwargs.pop("extra", [])],
        env,
        PROJECT_ROOT,
        log=run.parent / f"{run.name}.log",
        **kwargs,
    )


@pytest.fixture(scope="module")
def uninterrupted_mlm(tiny_model, tmp_path_factory):
    run = tmp_path_factory.mktemp("mlm") / "run"
    assert _train("dapt.jsonnet", run, _mlm_env(tiny_model)) == 0
    return run


@pytest.fixture(scope="module")
def uninterrupted_classifier(tiny_model, tmp_path_factory):
    run = tmp_path_factory.mktemp("classifier") / "run"
    assert _train("classifier.jsonnet", run, _classifier_env(tiny_model)) == 0
    return run


def _kill_chain(config, run, env, moments):
    """Kills the run at each of `moments` in turn, recovering after each, then lets it finish."""
    for number, moment in enumerate(moments):
        extra = ["--recover"] if number else []
        assert _train(config, run, env, kill_at=moment, extra=extra) == KILLED, (
            f"never reached {moment}"
        )
        if number == 0:
            assert leftovers(run), (
                "the first kill leaves a temporary file for the next run to remove"
            )
    assert _train(config, run, env, extra=["--recover"]) == 0, (
        run.parent / f"{run.name}.log"
    ).read_text()[-3000:]


def test_a_validated_mlm_run_killed_at_every_moment_ends_as_an_uninterrupted_one(
    tiny_model, uninterrupted_mlm, tmp_path
):
    reference = outcome(uninterrupted_mlm)
    # the export must be the best epoch's weights, not the last epoch's
    assert reference["metrics"]["best_epoch"] != reference["metrics"]["epoch"]
    assert reference["dapt_export"]["metrics"]["best_epoch"] == reference["metrics"]["best_epoch"]
    run = tmp_path / "run"
    _kill_chain(
        "dapt.jsonnet",
        run,
        _mlm_env(tiny_model, NUM_WORKERS="2"),
        [
            r"replace:model_state_e0_b1\.th",  # during a checkpoint write (mid-epoch)
            r"link:best\.th",  # between the epoch checkpoint and best.th
            r"replace:exported_model_step_\d+",  # during a step export
            r"replace:metrics_epoch_1\.json",  # mid-epoch: resumes from the checkpoint after step 5
            r"replace:exported_model",  # during the final export
            r"replace:metrics\.json",
            r"replace:model\.tar\.gz",
        ],
    )
    # the same result, but for the number of loader workers the config records
    for result in (ours := outcome(run), reference):
        for loader in ("data_loader", "validation_data_loader"):
            result["dapt_export"]["config"][loader].pop("num_workers")
    assert ours == reference
    assert leftovers(run) == []
    assert sorted(p.name for p in run.glob("exported_model_step_*")) == [
        "exported_model_step_3",
        "exported_model_step_6",
        "exported_model_step_9",
    ]


def test_an_unvalidated_mlm_run_recovered_after_its_last_checkpoint_reports_its_best_epoch(
    tiny_model, tmp_path
):
    """Without held-out text (DAPT's and TAPT's default) AllenNLP tracks no best epoch."""
    env = mlm_env(
        tiny_model, CORPUS_PATH=str(TASK / "train.jsonl"), NUM_STEPS="9", NUM_CHECKPOINTS="3"
    )
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert _train("dapt.jsonnet", reference, env) == 0
    assert outcome(reference)["metrics"]["best_epoch"] == 2  # the last of 3 epochs
    _kill_chain("dapt.jsonnet", run, env, [r"replace:metrics\.json"])
    assert outcome(run) == outcome(reference)


def test_a_validated_classifier_killed_at_every_moment_ends_as_an_uninterrupted_one(
    tiny_model, uninterrupted_classifier, tmp_path
):
    reference = outcome(uninterrupted_classifier)
    assert reference["metrics"]["best_epoch"] != reference["metrics"]["epoch"]
    run = tmp_path / "run"
    _kill_chain(
        "classifier.jsonnet",
        run,
        _classifier_env(tiny_model),
        [
            r"replace:model_state_e1_b0\.th",  # during the first checkpoint write
            r"link:best\.th",  # between the epoch checkpoint and best.th
            r"replace:metrics\.json",
            r"replace:model\.tar\.gz",
        ],
    )
    assert outcome(run) == reference
    assert leftovers(run) == []


def test_recovering_a_finished_run_changes_nothing(tiny_model, uninterrupted_classifier, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted_classifier, run)
    assert _train("classifier.jsonnet", run, _classifier_env(tiny_model), extra=["--recover"]) == 0
    assert outcome(run) == outcome(uninterrupted_classifier)


@pytest.mark.parametrize("config", ["classifier.jsonnet", "tapt.jsonnet"])
def test_recovering_over_a_data_file_changed_since_the_run_started_is_refused(
    tiny_model, tmp_path, config
):
    """It would go on with other data than its earlier epochs had (here: validation data)."""
    data = tmp_path / "task"
    shutil.copytree(TASK, data)
    paths = {"TRAIN_PATH": str(data / "train.jsonl"), "DEV_PATH": str(data / "dev.jsonl")}
    env = (
        {**classifier_env(tiny_model, NUM_EPOCHS="1"), **paths}
        if config == "classifier.jsonnet"
        else mlm_env(tiny_model, TAPT_PATH=paths["TRAIN_PATH"], HELDOUT_PATH=paths["DEV_PATH"])
    )
    run = tmp_path / "run"
    args = ["train", str(CONFIGS / config), "-s", str(run)]
    allennlp(args, env=env)
    allennlp([*args, "--recover"], env=env)  # the same files: it goes on (done already)
    with open(data / "dev.jsonl", "a") as handle:
        handle.write('{"text": "one more line .", "label": "activator"}\n')
    refused = allennlp([*args, "--recover"], env=env, check=False)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith(
        f"Error: --recover: {data / 'dev.jsonl'} has changed since the run in {run} started, "
        "where its earlier epochs read them as they were; put the files back as they were, or "
        "start a new run in a new directory"
    )


def test_two_identical_cpu_runs_give_identical_results(tiny_model, uninterrupted_mlm, tmp_path):
    run = tmp_path / "again"
    # in this process, with the one thread of the other run's process
    allennlp(
        ["train", str(CONFIGS / "dapt.jsonnet"), "-s", str(run)],
        env=_mlm_env(tiny_model, OMP_NUM_THREADS="1"),
    )
    assert outcome(run) == outcome(uninterrupted_mlm)
    assert json.loads((run / "metrics.json").read_text())["training_loss"] > 0


def test_a_run_started_with_relative_paths_recovers_after_its_project_moves(
    tiny_model, uninterrupted_classifier, tmp_path
):
    """AllenNLP's `--recover` refuses a config that differs from the run's `config.json`."""
    project = tmp_path / "project"
    shutil.copytree(TASK, project / "task")
    shutil.copytree(tiny_model, project / "model")
    shutil.copy(PROJECT_ROOT / ".allennlp_plugins", project)
    env = {
        **_classifier_env(tiny_model),
        "MODEL_NAME": "model",
        "TRAIN_PATH": "task/train.jsonl",
        "DEV_PATH": "task/dev.jsonl",
    }
    args = ["train", str(CONFIGS / "classifier.jsonnet"), "-s", "runs/clf"]
    log = tmp_path / "train.log"
    killed = run_killed_at(args, env, project, kill_at=r"link:best\.th", log=log)
    assert killed == KILLED
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    project.rename(moved)
    assert run_killed_at([*args, "--recover"], env, moved, log=log) == 0, log.read_text()[-3000:]
    recovered, reference = outcome(moved / "runs" / "clf"), outcome(uninterrupted_classifier)
    # the archive names its encoders' directories after the path given, here another one
    for result in (recovered, reference):
        result.pop("archive_files")
    assert recovered == reference


def test_a_classifier_that_stopped_early_and_was_killed_ends_where_it_stopped(tiny_model, tmp_path):
    """AllenNLP checks the patience only after an epoch it trains: a recovery trained on."""
    env = classifier_env(tiny_model, NUM_EPOCHS="6", LR="3e-3", PATIENCE="1")
    reference = tmp_path / "reference"
    assert _train("classifier.jsonnet", reference, env) == 0
    stopped = outcome(reference)
    assert stopped["metrics"]["epoch"] < 5  # its patience ran out
    run = tmp_path / "run"
    assert _train("classifier.jsonnet", run, env, kill_at=r"replace:metrics\.json") == KILLED
    assert _train("classifier.jsonnet", run, env, extra=["--recover"]) == 0
    assert outcome(run) == stopped
