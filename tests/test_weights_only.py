"""
Archives and weight files are read with `torch.load(weights_only=True)`, the default from torch 2.6
(the floor in setup.py), so a weights file cannot run code when an archive is loaded
(`allennlp evaluate`, `predict`, `load_archive`).
"""

import pickle

import pytest
import torch
from allennlp.models.archival import archive_model, load_archive

from dapt_plugin.commands.archive_untrained import archive_untrained
from tests.conftest import CONFIGS, mlm_env


class CreatesAFile:
    """Unpickling it creates `path`: what a malicious weights file could do instead."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def malicious_run(tiny_model, tmp_path, monkeypatch):
    """A serialization directory whose best.th, and the archive made from it, hold a malicious pickle."""
    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    archive_untrained(str(CONFIGS / "dapt.jsonnet"), str(run))
    torch.save({"weights": CreatesAFile(str(tmp_path / "code_ran"))}, run / "best.th")
    archive_model(str(run))
    return run


@pytest.mark.parametrize(
    "load",
    [
        lambda run: load_archive(str(run / "model.tar.gz")),
        lambda run: load_archive(str(run), weights_file=str(run / "best.th")),
    ],
    ids=["archive", "best_th"],
)
def test_a_weights_file_holding_code_is_refused(malicious_run, tmp_path, load):
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load(malicious_run)
    assert not (tmp_path / "code_ran").exists()
