"""The plugin works from any directory, not only from the repository root."""

import pytest

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
