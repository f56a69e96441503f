import json
import logging
import os
import re
import select
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Dict, List

import pytest
import torch
import transformers

from dapt_plugin.data.text_files import DataError
from tests.conftest import CONFIGS, DATA, PROJECT_ROOT, TASK, allennlp, classifier_env, mlm_env


@pytest.mark.process
def test_pretrained_transformer_tokenizer_works_after_plugin_import(after_plugin_import):
    assert after_plugin_import["tokens"][0] == "<s>"
    assert after_plugin_import["tokens"][-1] == "</s>"
    assert "Ġpainted" in after_plugin_import["tokens"]


def test_transformers_still_rejects_what_the_tokenizer_patch_drops(tiny_model):
    """
    What allennlp's unpatched `cached_transformers.get_tokenizer` does. When this stops failing,
    the patch in `dapt_plugin/compat.py` is no longer needed on the pinned transformers.
    """
    with pytest.raises(
        AttributeError, match="add_special_tokens conflicts with the method add_special_tokens"
    ):
        transformers.AutoTokenizer.from_pretrained(str(tiny_model), add_special_tokens=False)


# the documented name for each kind of component (docs/configuration.md), by its allennlp base class
_KINDS = {
    "DatasetReader": "dataset reader",
    "DataLoader": "data loader",
    "BatchSampler": "batch sampler",
    "Model": "model",
    "Predictor": "predictor",
    "LearningRateScheduler": "scheduler",
    "Checkpointer": "checkpointer",
    "TrainerCallback": "callbacks",
    "Optimizer": "optimizer",
    "Subcommand": "subcommands",
}


def _documented_components():
    """The table of components in docs/configuration.md: registered names by kind."""
    page = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    table = page[page.index("| kind | name | file |") :].split("\n\n")[0].splitlines()[2:]
    promised = {}
    for row in table:
        kind, names = row.split("|")[1:3]
        # the names are the backticked words before any parenthesised remark
        names = re.findall(r"`([^`]+)`", re.sub(r"\(.*?\)", "", names))
        promised[kind.strip()] = sorted(promised.get(kind.strip(), []) + names)
    return promised


@pytest.mark.process
def test_every_registered_component_is_documented_and_every_documented_one_is_registered(
    after_plugin_import,
):
    registered = {}
    for base, name, module, _ in after_plugin_import["registry"]:
        if module.startswith("dapt_plugin."):
            registered.setdefault(_KINDS[base], []).append(name)
    assert _documented_components() == {kind: sorted(names) for kind, names in registered.items()}


@pytest.mark.parametrize("kernel", [{"fused": True}, {"foreach": True}, {}])
def test_adamw_takes_torchs_fused_and_foreach_kernels(kernel):
    """The configs pass `fused: true` (FUSED_ADAMW, on by default) to allennlp's `adamw`, which rejects it unpatched."""
    from allennlp.common import Params
    from allennlp.training.optimizers import Optimizer

    import dapt_plugin  # noqa: F401

    model = torch.nn.Linear(4, 2)
    params = Params(
        {
            "type": "adamw",
            "lr": 0.1,
            "weight_decay": 0.01,
            "parameter_groups": [[["bias"], {"weight_decay": 0.0}]],
            **kernel,
        }
    )
    optimizer = Optimizer.from_params(
        model_parameters=list(model.named_parameters()), params=params
    )
    assert {k: optimizer.defaults[k] for k in kernel} == kernel
    assert sorted(group["weight_decay"] for group in optimizer.param_groups) == [0.0, 0.01]
    before = model.weight.detach().clone()
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight)


@pytest.mark.process
def test_a_user_error_is_one_line_and_the_directory_is_reusable_once_fixed(
    tiny_model, tmp_path, monkeypatch
):
    from allennlp.commands.train import train_model_from_file

    run = tmp_path / "run"
    env = mlm_env(tiny_model, TAPT_PATH=str(tmp_path / "missing.jsonl"), NUM_CHECKPOINTS="1")
    process = allennlp(
        ["train", str(CONFIGS / "tapt.jsonnet"), "-s", str(run)], env=env, check=False, process=True
    )
    assert process.returncode == 1
    assert process.stderr.splitlines()[-1] == (
        f"Error: {tmp_path / 'missing.jsonl'}: no such file; check the path (relative paths are resolved "
        f"from the directory `allennlp` runs in) (traceback in {run / 'out.log'})"
    )
    assert "Traceback" not in process.stderr
    assert "Traceback (most recent call last)" in (run / "out.log").read_text()
    # the run stopped before training: after fixing the input, the same command runs in the same
    # directory, also where TensorBoard's callback had started its log (a kill before a step)
    (run / "log" / "train").mkdir(parents=True)
    (run / "log" / "train" / "events.out.tfevents.1.host").write_bytes(b"")
    for name, value in {**env, "TAPT_PATH": str(TASK / "train.jsonl")}.items():
        monkeypatch.setenv(name, value)
    train_model_from_file(str(CONFIGS / "tapt.jsonnet"), str(run))
    assert (run / "model.tar.gz").exists()


@pytest.mark.parametrize(
    "files",
    [
        ["config.json", "model_state_e1_b0.th"],  # a checkpoint to recover from
        ["log/notes.txt", "out.log"],  # a folder of the user's, not a run's
        ["config.json", "log/train/notes.txt"],  # not only TensorBoard's events
    ],
)
def test_a_directory_with_training_results_or_not_a_runs_is_still_refused(
    tiny_model, tmp_path, monkeypatch, files
):
    from allennlp.commands.train import train_model_from_file
    from allennlp.common.checks import ConfigurationError

    run = tmp_path / "run"
    for name in files:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text("{}")
    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="already exists and is not empty"):
        train_model_from_file(str(CONFIGS / "tapt.jsonnet"), str(run))
    assert all((run / name).exists() for name in files)


@pytest.mark.parametrize("held", ["corpus", "corpus[1]", "model", "config", "working directory"])
def test_force_refuses_a_directory_holding_an_input_or_the_working_directory(
    tiny_model, tmp_path, monkeypatch, held
):
    """`-f` removes the directory first: `-s data -f` deleted the corpus, `-s . -f` the project."""
    from allennlp.commands.train import train_model_from_file
    from allennlp.common.checks import ConfigurationError

    run = tmp_path / "run"
    run.mkdir()
    name = "corpus[1].txt" if held == "corpus[1]" else "corpus.txt"  # a name, not a pattern
    corpus = (run if held.startswith("corpus") else tmp_path) / name
    corpus.write_text((DATA / "domain.txt").read_text())
    model = run / "model" if held == "model" else tiny_model
    if held == "model":
        shutil.copytree(tiny_model, model)
    config = CONFIGS / "tapt.jsonnet"
    if held == "config":  # a copy of the user's, with its own libraries beside it
        shutil.copytree(CONFIGS, run / "configs")
        config = run / "configs" / "tapt.jsonnet"
    if held == "working directory":
        monkeypatch.chdir(run)
    for variable, value in mlm_env(model, TAPT_PATH=str(corpus)).items():
        monkeypatch.setenv(variable, value)
    kept = {"model": model, "config": config, "working directory": run}.get(held, corpus)
    what = "the working directory " if held == "working directory" else ""
    with pytest.raises(ConfigurationError) as error:
        train_model_from_file(str(config), str(run), force=True)
    assert str(error.value).startswith(f"{run} holds {what}{kept}")
    assert str(error.value).endswith("which replacing it would delete; give a new directory")
    assert kept.exists() and corpus.exists()


def test_force_replaces_a_directory_named_as_a_word_of_the_config(
    tiny_model, tmp_path, monkeypatch
):
    """`-s train -f` was refused: "train" is also in the classifier's datasets_for_vocab_creation."""
    from allennlp.commands.train import train_model_from_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "old_run.txt").write_text("an earlier run\n")
    for variable, value in classifier_env(tiny_model, NUM_EPOCHS="1").items():
        monkeypatch.setenv(variable, value)
    train_model_from_file(str(CONFIGS / "classifier.jsonnet"), "train", force=True)
    assert not (tmp_path / "train" / "old_run.txt").exists()
    assert (tmp_path / "train" / "model.tar.gz").exists()


def test_a_jsonnet_error_is_a_configuration_error_naming_the_config(tiny_model, monkeypatch):
    from allennlp.common.checks import ConfigurationError
    from allennlp.common.params import Params

    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TAPT_PATH")
    with pytest.raises(ConfigurationError) as error:
        Params.from_file(str(CONFIGS / "tapt.jsonnet"))
    assert error.value.message == (
        f"{CONFIGS / 'tapt.jsonnet'}: environment variable TAPT_PATH is not set: "
        "the task's unlabelled text, e.g. its train.jsonl"
    )


def test_configs_are_evaluated_by_go_jsonnet_to_what_the_cpp_library_gives(tiny_model):
    import _gojsonnet
    import _jsonnet

    from dapt_plugin.compat import _jsonnet_library

    assert _jsonnet_library() is _gojsonnet
    variables = {**mlm_env(tiny_model), "TRAIN_PATH": "train.jsonl", "DEV_PATH": "dev.jsonl"}
    # the three configs, the example and demo experiments, the paper's tasks and tables
    files = [*CONFIGS.glob("*.jsonnet"), *CONFIGS.glob("experiments/**/*.jsonnet")]
    assert len(files) == 3 + 2 + 9 + 5
    ext_vars = {"DAPT_PLUGIN_ENV": json.dumps(variables)}
    for path in files:
        go = _gojsonnet.evaluate_file(str(path), ext_vars=ext_vars)
        assert json.loads(go) == json.loads(_jsonnet.evaluate_file(str(path), ext_vars=ext_vars))
    # an error stops both, with the same message
    refused = {"DAPT_PLUGIN_ENV": json.dumps({**variables, "LR": "fast"})}
    messages = []
    for evaluate in (_gojsonnet.evaluate_file, _jsonnet.evaluate_file):
        with pytest.raises(RuntimeError) as error:
            evaluate(str(CONFIGS / "dapt.jsonnet"), ext_vars=refused)
        messages.append(str(error.value).split("\n")[0])
    assert (
        messages[0]
        == messages[1]
        == (
            "RUNTIME ERROR: environment variable LR must be a number above 0 "
            "(such as 0.1 or 2e-5); got fast"
        )
    )


def test_a_process_forked_after_go_jsonnet_was_loaded_evaluates_configs_with_the_cpp_library(
    tiny_model,
):
    """Go's runtime does not survive a fork: the child's call into it would never return."""
    import _gojsonnet  # noqa: F401  (loaded in this process before the fork)
    from allennlp.common.params import Params

    ext_vars = {"DAPT_PLUGIN_ENV": json.dumps(mlm_env(tiny_model))}
    config = Params.from_file(str(CONFIGS / "dapt.jsonnet"), ext_vars=ext_vars).as_dict()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: evaluate, report, and leave without pytest's clean-up
        from dapt_plugin.compat import _jsonnet_library

        params = Params.from_file(str(CONFIGS / "dapt.jsonnet"), ext_vars=ext_vars)
        report = {"library": _jsonnet_library().__name__, "config": params.as_dict()}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 60)
        assert ready, "the forked process did not finish evaluating the config in 60 s"
        with os.fdopen(read, "rb") as pipe:
            report = json.loads(pipe.read())
    finally:
        if not ready:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert report == {"library": "_jsonnet", "config": config}


def test_metrics_and_archives_are_written_atomically(tmp_path, monkeypatch):
    import os

    from allennlp.common import util as common_util
    from allennlp.models import archival

    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}')

    def failing_replace(*args):
        raise OSError("killed here")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        common_util.dump_metrics(str(target), {"new": 2})
    assert json.loads(target.read_text()) == {"old": 1} and os.listdir(tmp_path) == ["metrics.json"]
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "best.th").write_bytes(b"weights")
    with pytest.raises(OSError):
        archival.archive_model(str(tmp_path))
    assert not (tmp_path / "model.tar.gz").exists()
    assert sorted(os.listdir(tmp_path)) == ["best.th", "config.json", "metrics.json"]
    monkeypatch.undo()
    common_util.dump_metrics(str(target), {"new": 2})
    assert target.read_text() == '{\n  "new": 2\n}\n'  # its last line ends


def test_archives_are_written_uncompressed_and_load_as_before(tmp_path):
    import os
    import tarfile

    from allennlp.models import archival

    weights = bytes(1 << 20)  # zeros: gzip at any level but 0 would shrink them to a few KB
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "best.th").write_bytes(weights)
    (tmp_path / "vocabulary").mkdir()
    archive = archival.archive_model(str(tmp_path))
    with open(archive, "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"  # still gzip
    assert os.path.getsize(archive) > len(weights)
    with tarfile.open(archive, "r:gz") as opened:
        assert opened.extractfile("weights.th").read() == weights


def test_loading_an_archive_leaves_no_copy_and_removes_one_a_killed_load_left(
    trained_classifier, tmp_path, monkeypatch
):
    """AllenNLP extracted a `model.tar.gz` to a directory that a kill while loading left behind."""
    from allennlp.models.archival import load_archive

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = tmp_path / "dapt_plugin_scratch-archive-tmpx7k2"  # as a killed load leaves it
    (left / "vocabulary").mkdir(parents=True)
    (left / "weights.th").write_bytes(bytes(1000))
    archive = load_archive(str(trained_classifier / "model.tar.gz"))
    labels = (trained_classifier / "vocabulary" / "labels.txt").read_text().split()
    assert archive.model.vocab.get_index_to_token_vocabulary("labels") == dict(enumerate(labels))
    assert os.listdir(tmp_path) == []


def test_a_failed_phase_of_adapt_is_reported_in_one_line(capsys):
    from dapt_plugin.common.launch import ProcessFailed
    from dapt_plugin.compat import _report_user_errors

    def fallback(*exception):
        raise AssertionError("reported with its traceback")

    failure = ProcessFailed("phase tapt failed (exit 1): data/bad.jsonl:2: not valid JSON")
    _report_user_errors(fallback, ProcessFailed, failure, None)
    # not where this process's traceback went: the message names the phase's logs
    assert capsys.readouterr().err == f"Error: {failure}\n"


@pytest.mark.parametrize("under", ["", "run"])
def test_a_serialization_dir_that_is_a_file_or_under_one_is_refused(
    tiny_model, tmp_path, monkeypatch, under
):
    from allennlp.commands.train import train_model_from_file
    from allennlp.common.checks import ConfigurationError

    (tmp_path / "notes.txt").write_text("mine")
    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    message = "is a file; give a directory" if not under else "notes.txt is a file, not a dir"
    with pytest.raises(ConfigurationError, match=message):
        train_model_from_file(str(CONFIGS / "tapt.jsonnet"), str(tmp_path / "notes.txt" / under))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_archive_that_is_missing_not_an_archive_or_not_a_runs_directory_is_named(
    tmp_path, tiny_model, trained_classifier
):
    from allennlp.commands import evaluate, predict
    from allennlp.common.checks import ConfigurationError
    from allennlp.models.archival import load_archive

    (tmp_path / "notes.tar.gz").write_text("not an archive")
    (tmp_path / "null").mkdir()
    (tmp_path / "null" / "config.json").write_text("null")
    whole = (trained_classifier / "model.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "cut_early.tar.gz").write_bytes(whole[:1000])  # within its first member
    (tmp_path / "folder").mkdir()
    for path, message in [
        (tmp_path / "missing.tar.gz", "archive .*missing.tar.gz not found; give the model.tar.gz"),
        (tmp_path / "notes.tar.gz", "notes.tar.gz is not a tar archive; give the model.tar.gz"),
        (tmp_path / "folder", "folder holds no config.json: not a run's directory; give the"),
        (tmp_path / "null", "null is not a run's directory .its config.json has no `model`.; give"),
        (tiny_model, "is a Hugging Face model directory .its config.json has no `model`.; give"),
        (tmp_path / "cut.tar.gz", "cut.tar.gz is damaged or cut short .*; archive the run again"),
        (tmp_path / "cut_early.tar.gz", "cut_early.tar.gz is damaged or cut short .*; archive"),
    ]:
        for load in (load_archive, evaluate.load_archive, predict.load_archive):
            with pytest.raises(ConfigurationError, match=message):
                load(str(path))


def test_allennlp_evaluate_checks_its_output_files_before_loading_and_makes_their_folder(
    trained_classifier, tmp_path
):
    from allennlp.commands.evaluate import evaluate_from_archive
    from allennlp.common.checks import ConfigurationError

    (tmp_path / "notes.txt").write_text("mine")
    for inputs, metrics, predictions, message in [
        ("x", str(tmp_path), None, "is a directory; give a file"),
        (
            "x",
            None,
            str(tmp_path / "notes.txt" / "p.jsonl"),
            "notes.txt is a file, not a directory",
        ),
        ("x,y", "m.json," + str(tmp_path), None, "is a directory; give a file"),
        ("x,y", "m.json", None, "--output-file names 1 file.s. for 2 input file.s.; give one for"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            # a missing archive: the outputs are checked before it is looked for
            evaluate_from_archive(str(tmp_path / "missing.tar.gz"), inputs, metrics, predictions)
    metrics = tmp_path / "new" / "metrics.json"
    predictions = tmp_path / "new" / "predictions.jsonl"
    result = evaluate_from_archive(
        str(trained_classifier / "model.tar.gz"),
        str(TASK / "test.jsonl"),
        str(metrics),
        str(predictions),
    )
    assert json.loads(metrics.read_text())["accuracy"] == result["accuracy"]
    assert predictions.read_text().strip()  # AllenNLP's evaluator writes a line per batch


def test_allennlp_evaluate_writes_its_outputs_whole_or_not_at_all_and_never_over_its_input(
    trained_classifier, tmp_path, monkeypatch
):
    from allennlp.commands.evaluate import evaluate_from_archive
    from allennlp.common.checks import ConfigurationError
    from allennlp.evaluation.serializers import SimpleSerializer

    archive, test = str(trained_classifier / "model.tar.gz"), str(TASK / "test.jsonl")
    serialize, written = SimpleSerializer.__call__, []

    def stopped_at_the_second_batch(self, *args, **kwargs):
        if written:
            raise KeyboardInterrupt
        written.append(1)
        return serialize(self, *args, **kwargs)

    monkeypatch.setattr(SimpleSerializer, "__call__", stopped_at_the_second_batch)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        evaluate_from_archive(archive, test, str(out / "m.json"), str(out / "p.jsonl"))
    # a batch's predictions were written, but under no output's name
    assert written and os.listdir(out) == []
    monkeypatch.undo()
    copy = tmp_path / "test.jsonl"
    copy.write_text((TASK / "test.jsonl").read_text())
    inputs = f"{TASK / 'dev.jsonl'},{copy}"
    for metrics, predictions in [(None, f"{out / 'p.jsonl'},{copy}"), (f"m.json,{copy}", None)]:
        with pytest.raises(ConfigurationError, match="test.jsonl is the input file .*test.jsonl"):
            evaluate_from_archive(archive, inputs, metrics, predictions)
    assert copy.read_text() == (TASK / "test.jsonl").read_text()
    # nor over its model, nor one output over the other
    model = tmp_path / "model.tar.gz"
    model.write_bytes(Path(archive).read_bytes())
    for metrics, predictions in [(str(model), None), (None, str(model))]:
        with pytest.raises(ConfigurationError, match=f"is the model archive {model}, which"):
            evaluate_from_archive(str(model), test, metrics, predictions)
    assert model.read_bytes() == Path(archive).read_bytes()
    (out / "same.json").write_text("")
    (out / "link.json").symlink_to(out / "same.json")
    with pytest.raises(ConfigurationError) as error:
        evaluate_from_archive(archive, test, str(out / "same.json"), str(out / "link.json"))
    assert error.value.message == (
        f"--output-file {out / 'same.json'} and --predictions-output-file {out / 'link.json'} are "
        "one file, where one output would replace the other; give a file for each"
    )
    # the names `--auto-names` makes, beside each input: test.outputs for both of these
    (tmp_path / "test.txt").write_text((TASK / "test.jsonl").read_text())
    both = f"{copy},{tmp_path / 'test.txt'}"
    with pytest.raises(ConfigurationError, match="test.outputs and --output-file .* are one file"):
        evaluate_from_archive(archive, both, "m", "p", auto_names="ALL")
    # a failure in a later input: the outputs of the earlier ones are not written either
    (tmp_path / "bad.jsonl").write_text('{"text": "fine", "label": "activator"}\n{bad\n')
    with pytest.raises(DataError):
        evaluate_from_archive(
            archive, f"{test},{tmp_path / 'bad.jsonl'}", f"{out / 'm1'},{out / 'm2'}"
        )
    assert not (out / "m1").exists()
    # to a descriptor, in the order of the inputs
    log = tmp_path / "log"
    with open(log, "a") as redirected:
        descriptor = f"/proc/self/fd/{redirected.fileno()}"
        evaluate_from_archive(archive, f"{test},{TASK / 'dev.jsonl'}", f"{descriptor},{descriptor}")
    text, decoder = log.read_text(), json.JSONDecoder()
    first, end = decoder.raw_decode(text)
    second, _ = decoder.raw_decode(text, end)
    assert first == evaluate_from_archive(archive, test)
    assert second == evaluate_from_archive(archive, str(TASK / "dev.jsonl"))


def test_predict_and_evaluate_refuse_a_gpu_the_machine_lacks_before_loading(monkeypatch):
    import argparse

    from allennlp.commands import predict
    from allennlp.commands.evaluate import evaluate_from_archive
    from allennlp.common.checks import ConfigurationError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigurationError) as error:
        evaluate_from_archive("never-loaded.tar.gz", str(TASK / "test.jsonl"), cuda_device=0)
    assert error.value.message == (
        "--cuda-device 0 names a GPU, but this machine has 0 visible GPU(s); give --cuda-device -1 "
        "to run on the CPU"
    )
    arguments = argparse.Namespace(
        cuda_device=0, output_file=None, archive_file="never-loaded.tar.gz", weights_file=None
    )
    with pytest.raises(ConfigurationError, match="^--cuda-device 0 names a GPU, but this machine"):
        predict._get_predictor(arguments)
    # a negative number other than -1 ran on the CPU, silently
    with pytest.raises(ConfigurationError) as error:
        evaluate_from_archive("never-loaded.tar.gz", str(TASK / "test.jsonl"), cuda_device=-5)
    assert error.value.message == (
        "--cuda-device -5 names no device; give -1 for the CPU, or a GPU's number (0, 1, ...)"
    )


def test_allennlp_evaluate_shows_the_final_metrics_without_an_output_file(
    trained_classifier, caplog
):
    from allennlp.commands.evaluate import evaluate_from_archive

    with caplog.at_level(logging.INFO):
        metrics = evaluate_from_archive(
            str(trained_classifier / "model.tar.gz"), str(TASK / "test.jsonl")
        )
    shown = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Metrics: ")]
    assert [json.loads(message[len("Metrics: ") :]) for message in shown] == [metrics]
    assert {"accuracy", "macro_f1", "loss"} <= set(metrics)


def test_a_distributed_training_worker_ends_the_process_group_it_joined(monkeypatch, tmp_path):
    """
    AllenNLP's training worker leaves its process group alive; a CPU worker that exited with it
    alive now and then aborted (SIGABRT) while the interpreter was torn down, after a run that
    had succeeded. Here AllenNLP's worker is one of a run of two workers that joins a group (of
    one, to run in this process) and talks in it.
    """
    from dapt_plugin import compat

    def worker(process_rank: int, world_size: int) -> None:
        torch.distributed.init_process_group(
            "gloo", init_method=(tmp_path / "store").as_uri(), world_size=1, rank=0
        )
        torch.distributed.all_reduce(torch.ones(3))

    monkeypatch.setattr(compat, "_allennlp_train_worker", worker)
    try:
        compat._train_worker(0, world_size=2)
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@pytest.mark.process
def test_the_workers_of_a_killed_distributed_run_stop_and_an_adapt_rerun_waits_for_them(
    tiny_model, tmp_path
):
    """
    A distributed `allennlp train` trains in processes it spawns, which outlived it: it waited
    for them at exit on SIGTERM. Here the run is a phase of `allennlp adapt` (forked from the
    preloaded server, holding the experiment's lock) whose caller is killed, which sends the
    phase SIGTERM; a rerun waits on the lock.
    """
    import subprocess
    import sys
    import threading

    from dapt_plugin.common.launch import wait_for_holders
    from tests.common.test_launch import _state

    run, lock = tmp_path / "run", tmp_path / "running.lock"
    script = f"""
from dapt_plugin.common.launch import run_allennlp_preloaded
run_allennlp_preloaded(["train", {str(CONFIGS / "dapt.jsonnet")!r}, "-s", {str(run)!r}],
                       {_long_distributed_run(tiny_model)!r}, log={str(tmp_path / "log")!r},
                       hold={str(lock)!r})
"""
    caller = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT)
    try:
        workers = _training_workers(run, caller)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    waiting = threading.Thread(target=wait_for_holders, args=(lock, lambda: None), daemon=True)
    waiting.start()
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    # the lock was let go of only once the workers had ended (they held it too)
    assert all(_state(pid) in ("", "Z") for pid in workers)


@pytest.mark.process
def test_the_workers_of_a_distributed_run_end_with_it_when_it_is_killed(tiny_model, tmp_path):
    """
    PyTorch sends a worker SIGINT when its parent dies, which a command started in the
    background by a script ignores (and its workers with it): they trained on after a SIGKILL.
    """
    import subprocess
    import time

    from dapt_plugin.common.launch import allennlp_command
    from tests.common.test_launch import _state

    run = tmp_path / "run"
    command = allennlp_command(["train", CONFIGS / "dapt.jsonnet", "-s", run])
    process = subprocess.Popen(
        command,
        env={**os.environ, **_long_distributed_run(tiny_model)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        workers = _training_workers(run, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.time() + 30
    while not all(_state(pid) in ("", "Z") for pid in workers):
        assert time.time() < deadline, "the workers outlived the command"
        time.sleep(0.1)


def _long_distributed_run(model) -> Dict[str, str]:
    return mlm_env(model, CUDA_DEVICES="-1,-1", NUM_STEPS="100000", NUM_CHECKPOINTS="1")


def _training_workers(run, process) -> List[int]:
    """The two workers of the distributed run in `run`, started by `process`, once both train."""
    import time

    import psutil

    deadline = time.time() + 240
    logs = [run / f"out_worker{rank}.log" for rank in (0, 1)]
    while not all(log.exists() and "Beginning training" in log.read_text() for log in logs):
        assert time.time() < deadline and process.poll() is None, "the workers did not start"
        time.sleep(0.2)
    workers = [
        child.pid
        for child in psutil.Process(process.pid).children(recursive=True)
        if "spawn_main" in " ".join(child.cmdline())
    ]
    assert len(workers) == 2
    return workers


def test_allennlp_evaluate_reads_a_file_whose_name_holds_a_comma_as_one_file(
    trained_classifier, tmp_path
):
    from allennlp.commands.evaluate import evaluate_from_archive

    path = tmp_path / "test,2024.jsonl"
    path.write_text((TASK / "test.jsonl").read_text())
    archive = str(trained_classifier / "model.tar.gz")
    metrics = evaluate_from_archive(archive, str(path), str(tmp_path / "metrics.json"))
    expected = evaluate_from_archive(archive, str(TASK / "test.jsonl"))
    assert metrics["accuracy"] == expected["accuracy"]


def test_a_missing_config_and_bad_overrides_are_configuration_errors(tmp_path, monkeypatch):
    from allennlp.common.checks import ConfigurationError
    from allennlp.common.params import Params

    with pytest.raises(ConfigurationError, match="config .*nope.jsonnet not found; give a"):
        Params.from_file(str(tmp_path / "nope.jsonnet"))
    with pytest.raises(ConfigurationError, match="config .* is a directory; give a jsonnet"):
        Params.from_file(str(tmp_path))
    config = tmp_path / "c.json"
    config.write_text('{"a": 1}')
    with pytest.raises(ConfigurationError, match=r"the overrides \(-o\) '\{bad json': 1:6"):
        Params.from_file(str(config), "{bad json")
    assert Params.from_file(str(config), '{"a": 2}').as_dict() == {"a": 2}
    monkeypatch.setenv("HOME", str(tmp_path))  # a `~` the shell left, which `cached_path` reads
    assert Params.from_file("~/c.json").as_dict() == {"a": 1}


def test_a_gpu_the_machine_lacks_is_refused_naming_the_variable_in_allennlp_train(
    tiny_model, tmp_path, monkeypatch
):
    from allennlp.commands.train import train_model_from_file
    from allennlp.common.checks import ConfigurationError

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for name, value in classifier_env(tiny_model, CUDA_DEVICES="0").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        train_model_from_file(str(CONFIGS / "classifier.jsonnet"), str(tmp_path / "run"))
    assert error.value.message.startswith(
        "`trainer.cuda_device` (CUDA_DEVICES in the configs) names GPU 0, but this machine has 0"
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"cuda_device": 0},
            "`trainer.cuda_device` (CUDA_DEVICES in the configs) names GPU 0, but this machine has "
            "0 visible GPU(s); set CUDA_DEVICES=-1 to train on the CPU, or name a visible GPU",
        ),
        (
            {"cuda_device": -1, "use_amp": True},
            "`use_amp` (USE_AMP=true) needs a CUDA GPU, but the trainer runs on the CPU; set "
            "USE_AMP=false, or train on a GPU (CUDA_DEVICES)",
        ),
    ],
)
def test_a_device_the_machine_lacks_is_refused_naming_the_variable(monkeypatch, settings, message):
    from allennlp.common.checks import ConfigurationError
    from allennlp.data import Vocabulary
    from allennlp.data.data_loaders import SimpleDataLoader
    from allennlp.models import Model
    from allennlp.training import GradientDescentTrainer

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    model = Model(Vocabulary())
    model.weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ConfigurationError) as error:
        GradientDescentTrainer(
            model, optimizer, SimpleDataLoader([], batch_size=1), num_epochs=1, **settings
        )
    assert error.value.message == message


def test_recovering_with_another_config_names_the_keys_that_differ(tmp_path):
    from allennlp.common.checks import ConfigurationError
    from allennlp.common.params import Params
    from allennlp.training import util as training_util

    run = {"trainer": {"optimizer": {"lr": 0.001}}, "data_loader": {"hold_out": "exclude"}}
    (tmp_path / "config.json").write_text(json.dumps(run))
    (tmp_path / "model_state_e1_b0.th").write_text("")
    changed = {"trainer": {"optimizer": {"lr": 0.002}}, "data_loader": {}, "seed": 3}
    with pytest.raises(ConfigurationError) as error:
        training_util.create_serialization_dir(Params(changed), str(tmp_path), True, False)
    assert error.value.message == (
        f"--recover: the config differs from the one the run in {tmp_path} started with (its "
        "config.json): data_loader.hold_out (only in the run's); seed (only in the new config); "
        "trainer.optimizer.lr 0.001 -> 0.002. Recover with the same config and variables as the "
        "interrupted run, or give a new -s directory"
    )
    training_util.create_serialization_dir(Params(run), str(tmp_path), True, False)
