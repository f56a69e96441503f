"""
A pip install, not a clone: the README's install lines, run as they are in a new directory,
build a wheel that carries the configs, and `allennlp train` and `allennlp adapt` work there with
the installed package, not the checkout.
"""

import filecmp
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dapt_plugin.version import VERSION
from tests.conftest import CONFIGS, PROJECT_ROOT, mlm_env, write_experiment

pytestmark = pytest.mark.process  # every test here starts a process of its own

# the clone to install: without what git ignores or a build leaves, and what the build does not read
_NOT_IN_A_CLONE = (
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    "runs",
    "demo_runs",
    "build",
    "dist",
    ".whl",
    ".gl",
    "tests",
    "benchmarks",
)


def readme_install_lines() -> str:
    """The README's code block that names this test."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    return readme[readme.index("`tests/test_packaging.py` runs") :].split("```")[1].strip()


def _config_files(directory: Path):
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.suffix in (".jsonnet", ".libsonnet")
    )


def _same_configs(directory: Path) -> bool:
    names = _config_files(CONFIGS)
    return _config_files(directory) == names and all(
        filecmp.cmp(directory / name, CONFIGS / name, shallow=False) for name in names
    )


def test_the_readme_install_lines_give_a_working_plugin_in_any_directory(tiny_model, tmp_path):
    home, work, target = tmp_path / "home", tmp_path / "work", tmp_path / "site"
    home.mkdir()
    shutil.copytree(
        PROJECT_ROOT, work / "dapt_plugin", ignore=shutil.ignore_patterns(*_NOT_IN_A_CLONE)
    )
    experiment = write_experiment(work / "experiment.json", tiny_model, variants=["baseline"])
    train_env = " ".join(
        f"{name}={shlex.quote(value)}"
        for name, value in mlm_env(tiny_model, NUM_STEPS="2", NUM_CHECKPOINTS="1").items()
    )
    script = "\n".join(
        [
            "set -eu",
            readme_install_lines(),
            f"{train_env} allennlp train training_config/dapt.jsonnet -s runs/dapt",
            f"allennlp adapt {experiment.name} -s runs/experiment",
        ]
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "OMP_NUM_THREADS": "1",
        # this environment's `pip` and `allennlp`; the installed package before the checkout
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(target),
        # pip's settings, from its environment: offline, into `target`, with this environment's
        # build tools and dependencies (pip reads PIP_NO_BUILD_ISOLATION=0 as --no-build-isolation)
        "PIP_TARGET": str(target),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    process = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert process.returncode == 0, f"{script}\n{process.stdout[-3000:]}\n{process.stderr[-6000:]}"

    assert (
        target / f"dapt_plugin-{VERSION}.dist-info" / "WHEEL"
    ).is_file()  # installed from a wheel
    installed = target / "dapt_plugin" / "training_config"
    assert _same_configs(installed)  # the wheel carries every config
    assert _same_configs(work / "training_config")
    # the processes imported the installed package, not the checkout: `dapt_plugin.training_config`
    # is found inside the imported `dapt_plugin` (from the checkout, it would be its training_config/)
    assert (
        f"Copied the configs of dapt_plugin {VERSION} from {installed} to training_config\n"
        in process.stdout
    )
    assert (home / ".allennlp" / "plugins").read_text() == "dapt_plugin\n"
    assert (work / "runs" / "dapt" / "model.tar.gz").is_file()
    assert (work / "runs" / "dapt" / "exported_model" / "config.json").is_file()
    train_log = (work / "runs" / "experiment" / "train.log").read_text()
    assert f"({installed / 'classifier.jsonnet'} as the dry run resolved it): " in train_log
    results = json.loads((work / "runs" / "experiment" / "results.json").read_text())
    assert list(results["variants"]) == ["baseline"]
