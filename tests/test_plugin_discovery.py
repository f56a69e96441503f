"""The plugin works from any directory, not only from the repository root."""

import subprocess
import sys

import pytest

from dapt_plugin.common.configs import CONFIG_PACKAGE
from dapt_plugin.common.launch import allennlp_environment
from tests.conftest import CONFIGS, allennlp, classifier_env

pytestmark = pytest.mark.process  # every test here starts a process of its own


def test_include_package_from_another_directory(tiny_model, tmp_path):
    run = tmp_path / "run"
    allennlp(
        [
            "train",
            str(CONFIGS / "classifier.jsonnet"),
            "-s",
            str(run),
            "--include-package",
            "dapt_plugin",
        ],
        env=classifier_env(tiny_model, NUM_EPOCHS="1"),
        cwd=tmp_path,
        process=True,
    )
    assert (run / "model.tar.gz").exists()


def test_global_plugins_file_makes_the_subcommands_available(tmp_path):
    home = tmp_path / "home"
    (home / ".allennlp").mkdir(parents=True)
    without = allennlp(["--help"], env={"HOME": str(home)}, cwd=tmp_path, process=True)
    assert "archive-untrained" not in without.stdout
    (home / ".allennlp" / "plugins").write_text("dapt_plugin\n")
    with_file = allennlp(["--help"], env={"HOME": str(home)}, cwd=tmp_path, process=True)
    assert "archive-untrained" in with_file.stdout


def test_include_package_imports_the_plugin_without_its_configs_package_or_faiss():
    """
    `--include-package dapt_plugin` imports every module of the plugin that allennlp's walk
    finds, for any command: none may need, on import, the optional faiss (the `selection` extra)
    or the configs package (a clone run from `PYTHONPATH` without `pip install` has none, and
    `allennlp train` with a config given by its path needs none).
    """
    code = f"""
import sys

sys.modules.update({{"faiss": None, {CONFIG_PACKAGE!r}: None}})  # each import raises ImportError
from allennlp.common.util import import_module_and_submodules
import_module_and_submodules("dapt_plugin")
print(*(name in sys.modules for name in ("dapt_plugin.demo.run", "dapt_plugin.selection.lsa")))
"""
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=allennlp_environment()
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.split() == ["True", "True"]  # those that looked them up, imported
