"""
Every command that README.md and the docs/ pages show is run, so that they cannot drift from the
code. The `allennlp` commands run here, in the order the pages give them, in a directory laid
out as they expect (`data/biomed/`, `data/chemprot/`, the configs copied by the README's own
`allennlp dapt-configs -o training_config`), with the tiny model in place of hub models, tiny
sizes, and `...` in a command filled in. The others are run where `RUN_ELSEWHERE` says. A command
added to the pages that is neither fails this test.
"""

import gzip
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import _gojsonnet
import pytest

from tests.conftest import ADAPT_SETTINGS, DATA, PROJECT_ROOT, TASK, allennlp

pytestmark = pytest.mark.process  # one command uses the shell's `$(...)`

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
# the programs whose lines in a code block are commands (other lines are output or code)
PROGRAMS = {"allennlp", "make", "pip", "python", "mkdir"}

# commands that are not run here: where they are run, and a text of that file that shows it
RUN_ELSEWHERE = {
    "make test": (".ci/run", "make test"),
    "make demo": (".ci/run", "make demo"),
    # the subset of `make test` that starts no process, and the formatter `make test` checks with
    "make test-fast": ("Makefile", '-m "not process" tests'),
    "make format": ("Makefile", "ruff format ."),
    "make install": ("Makefile", "--no-deps --no-build-isolation -e ."),
    # `make install` installs the pinned versions of the same packages the same way
    "pip install torch torchvision": ("requirements.txt", "torchvision=="),
    "pip install --no-deps allennlp==2.10.1": ("Makefile", "--no-deps allennlp==2.10.1"),
    "pip install ./dapt_plugin": ("tests/test_packaging.py", "README.md"),
    "mkdir -p ~/.allennlp && echo dapt_plugin >> ~/.allennlp/plugins": (
        "tests/test_packaging.py",
        "README.md",
    ),
    # the paper's experiments need its data: each file is planned (a dry run) with a mirror
    **{
        f"allennlp adapt training_config/experiments/paper/{file}.jsonnet -s runs/{run}": (
            "tests/experiment/test_tasks.py",
            f'"{file.split("/")[-1]}"' if "/" in file else 'glob("*.jsonnet")',
        )
        for file, run in [
            ("chemprot", "table5"),
            ("tables/table3_not_dapt", "table3"),
            ("tables/table6_transfer_tapt", "table6"),
            ("tables/table7_curated_tapt", "table7"),
            ("tables/table8_knn_tapt", "table8"),
            ("tables/heldout_mlm_loss", "heldout"),
        ]
    },
}
HUB_MODELS = {"roberta-base", "allenai/biomed_roberta_base"}
# what `...` stands for in a command
ELLIPSIS = {
    "TRAIN_PATH": "data/chemprot/train.jsonl",
    "DEV_PATH": "data/chemprot/dev.jsonl",
}
TINY_MLM = {
    "EFFECTIVE_BATCH": "16",
    "BATCH_SIZE": "8",
    "NUM_STEPS": "4",
    "NUM_CHECKPOINTS": "2",
    "MAX_LENGTH": "64",
    "LR": "1e-3",
}
TINY_CLASSIFIER = {"NUM_EPOCHS": "1", "BATCH_SIZE": "8", "MAX_LENGTH": "64", "LR": "1e-3"}


def _commands(page: Path) -> List[str]:
    """The command lines of the page's code blocks (continuation lines joined), in order."""
    commands = []
    for info, body in re.findall(r"^```(\w*)\n(.*?)^```", page.read_text(), re.S | re.M):
        if info not in ("", "bash", "sh", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            program = next((w for w in words if not re.match(r"^[A-Z_]+=", w)), None)
            if program in PROGRAMS:
                commands.append(re.sub(r"\s+#.*$", "", line).strip())
    return commands


def _layout(work: Path) -> None:
    """The files the pages' commands read, from the test fixtures."""
    (work / "data" / "biomed").mkdir(parents=True)
    with gzip.open(work / "data" / "biomed" / "papers.txt.gz", "wt") as handle:
        handle.write((DATA / "domain.txt").read_text())
    shutil.copy(DATA / "domain_heldout.txt", work / "data" / "biomed" / "heldout.txt")
    shutil.copytree(TASK, work / "data" / "chemprot")
    with gzip.open(work / "biomed.txt.gz", "wt") as handle:
        handle.write((DATA / "domain.txt").read_text())
    shutil.copy(DATA / "general.txt", work / "pt_sample.txt")
    shutil.copy(DATA / "domain.txt", work / "biomed_sample.txt")
    with gzip.open(work / "news.jsonl.gz", "wt") as handle:
        for line in (DATA / "general.txt").read_text().splitlines():
            handle.write(json.dumps({"text": line}) + "\n")
    (work / "runs").mkdir()


def _tiny_experiment(path: Path, model: Path) -> None:
    """The pages' experiment file at tiny size: one seed, a few steps, on CPU, the tiny model."""
    experiment = json.loads(_gojsonnet.evaluate_file(str(path)))
    assert experiment["base_model"] in HUB_MODELS
    experiment.update(base_model=str(model), seeds=[0], settings=ADAPT_SETTINGS)
    path.write_text(json.dumps(experiment))


def _prepared(command: str, work: Path, model: Path) -> Tuple[Dict[str, str], List[str]]:
    """The environment and arguments of `allennlp ...`, as the shell gives them, made tiny."""
    words = shlex.split(command)
    env = {}
    while re.match(r"^[A-Z_]+=", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = ELLIPSIS[name] if value == "..." else value
    assert words[0] == "allennlp", command
    rest = command[command.index("allennlp") + len("allennlp") :]
    if "$(" in rest:  # the shell's substitutions, as a shell in `work` makes them
        expanded = subprocess.run(
            ["bash", "-c", f"printf '%s\\0' {rest}"], cwd=work, capture_output=True, text=True
        )
        args = expanded.stdout.split("\0")[:-1]
    else:
        args = words[1:]
    if env.get("MODEL_NAME") in HUB_MODELS:
        env["MODEL_NAME"] = str(model)
    config = next((arg for arg in args if arg.endswith(".jsonnet")), "")
    if config.endswith(("dapt.jsonnet", "tapt.jsonnet")):
        env = {**TINY_MLM, **env}
    elif config.endswith("classifier.jsonnet"):
        env = {**TINY_CLASSIFIER, **env}
    elif args[0] == "adapt":
        _tiny_experiment(work / config, model)
    return env, args


def test_every_command_of_the_readme_and_the_docs_runs(tiny_model, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    _layout(work)
    ran = []
    for page in PAGES:
        for command in _commands(page):
            if command in RUN_ELSEWHERE:
                where, evidence = RUN_ELSEWHERE[command]
                assert evidence in (PROJECT_ROOT / where).read_text(), (command, where)
                continue
            assert command.split()[0] == "allennlp" or "allennlp" in shlex.split(command), (
                f"{page.name}: `{command}` is neither run here nor in RUN_ELSEWHERE"
            )
            env, args = _prepared(command, work, tiny_model)
            allennlp(args, env=env, cwd=work)
            ran.append(args[0])
    # the pipeline and every subcommand the pages show ran
    assert {"adapt", "train", "evaluate", "predict", "export-classifier", "dapt-configs"} <= set(
        ran
    )
    assert {"archive-untrained", "vocab-overlap", "select-tapt-data"} <= set(ran)
    assert (work / "runs" / "experiment" / "results.md").exists()
    assert (work / "runs" / "clf" / "predictions.jsonl").read_text().count("\n") == len(
        (TASK / "test.jsonl").read_text().splitlines()
    )
    assert (work / "runs" / "knn_tapt" / "exported_model").is_dir()
