"""`allennlp dapt-configs`: the directory of the installed configs, or a copy of it."""

import argparse
import filecmp

import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.commands.dapt_configs import dapt_configs_from_args
from dapt_plugin.common import configs
from tests.conftest import CONFIGS


def _run(output_dir=None, force=False):
    return dapt_configs_from_args(argparse.Namespace(output_dir=output_dir, force=force))


def _config_files(directory):
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.suffix in (".jsonnet", ".libsonnet")
    )


def test_prints_the_directory_of_the_configs_that_the_experiment_uses(capsys):
    _run()
    # an editable install: the clone's training_config/ is the installed package
    assert capsys.readouterr().out == f"{CONFIGS}\n"
    assert configs.config_dir() == CONFIGS


def test_copies_every_config_and_nothing_else(tmp_path, capsys):
    _run(str(tmp_path / "training_config"))
    copied = tmp_path / "training_config"
    assert _config_files(copied) == _config_files(CONFIGS)
    names = _config_files(copied)
    assert "lib/env.libsonnet" in names and "experiments/example.jsonnet" in names
    # no __init__.py, no byte code
    assert sorted(str(p.relative_to(copied)) for p in copied.rglob("*") if p.is_file()) == names
    assert all(filecmp.cmp(copied / name, CONFIGS / name, shallow=False) for name in names)
    assert capsys.readouterr().out.endswith(f"from {CONFIGS} to {copied}\n")


def test_keeps_a_non_empty_directory_unless_forced(tmp_path):
    target = tmp_path / "training_config"
    target.mkdir()
    (target / "dapt.jsonnet").write_text("my edits")
    with pytest.raises(
        ConfigurationError, match="already exists and is not empty; give a new directory, or --"
    ):
        _run(str(target))
    assert (target / "dapt.jsonnet").read_text() == "my edits"
    _run(str(target), force=True)
    assert _config_files(target) == _config_files(CONFIGS)
    assert filecmp.cmp(target / "dapt.jsonnet", CONFIGS / "dapt.jsonnet", shallow=False)
    assert [p.name for p in tmp_path.iterdir()] == [
        "training_config"
    ]  # no temporary left beside it


def test_force_without_output_dir_is_refused():
    with pytest.raises(
        ConfigurationError, match="--force replaces the directory of -o; give -o DIR"
    ):
        _run(force=True)


def test_an_install_without_the_configs_package_says_to_reinstall(monkeypatch):
    monkeypatch.setattr(configs, "CONFIG_PACKAGE", "dapt_plugin.no_such_configs")
    with pytest.raises(
        ConfigurationError,
        match=r"package dapt_plugin.no_such_configs\) are not installed; "
        r"reinstall the plugin \(`make install`",
    ):
        configs.config_dir()


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "training_config").write_text("")
    with pytest.raises(ConfigurationError, match="training_config is a file; give a directory"):
        _run(str(tmp_path / "training_config"))


def test_the_configs_own_directory_is_never_replaced_by_their_copy(tmp_path, monkeypatch):
    # a stand-in for the installed configs (an editable install's are the clone's own)
    source = tmp_path / "training_config"
    source.mkdir()
    (source / "dapt.jsonnet").write_text("{}")
    monkeypatch.setattr(configs, "config_dir", lambda: source)
    with pytest.raises(ConfigurationError, match="which replacing it would delete"):
        _run(str(source), force=True)
    assert (source / "dapt.jsonnet").read_text() == "{}"
