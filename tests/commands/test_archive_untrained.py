import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.commands.archive_untrained import archive_untrained
from tests.conftest import CONFIGS, allennlp, classifier_env, mlm_env


def test_a_config_that_cannot_be_archived_leaves_nothing_behind(tiny_model, tmp_path):
    target = tmp_path / "base"
    process = allennlp(
        ["archive-untrained", str(CONFIGS / "classifier.jsonnet"), "-s", str(target)],
        env=classifier_env(tiny_model),
        check=False,
    )
    assert process.returncode != 0
    assert (
        "archive-untrained needs a config whose model uses no vocabulary built from data"
        in process.stderr
    )
    assert not target.exists()
    process = allennlp(
        ["archive-untrained", str(CONFIGS / "dapt.jsonnet"), "-s", str(target)],
        env=mlm_env(tmp_path / "missing_model"),
        check=False,
    )
    assert "no such directory" in process.stderr and not target.exists()
    allennlp(
        ["archive-untrained", str(CONFIGS / "dapt.jsonnet"), "-s", str(target)],
        env=mlm_env(tiny_model),
    )
    assert (target / "model.tar.gz").exists()


def test_num_steps_must_split_evenly_into_checkpoints(tiny_model, tmp_path):
    process = allennlp(
        ["archive-untrained", str(CONFIGS / "dapt.jsonnet"), "-s", str(tmp_path / "x")],
        env=mlm_env(tiny_model, NUM_STEPS="7", NUM_CHECKPOINTS="2"),
        check=False,
    )
    assert "NUM_STEPS (7) must be a multiple of NUM_CHECKPOINTS (2)" in process.stderr


@pytest.mark.parametrize("under", ["", "base"])
def test_a_serialization_dir_that_is_a_file_or_under_one_is_refused(tmp_path, under):
    (tmp_path / "notes.txt").write_text("mine")
    message = "is a file; give a directory" if not under else "notes.txt is a file, not a dir"
    with pytest.raises(ConfigurationError, match=message):
        archive_untrained(str(CONFIGS / "dapt.jsonnet"), str(tmp_path / "notes.txt" / under))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_the_archive_holds_the_meta_file_that_allennlp_train_writes(
    tiny_model, tmp_path, monkeypatch, caplog
):
    import tarfile

    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    archive = archive_untrained(str(CONFIGS / "dapt.jsonnet"), str(tmp_path / "base"))
    with tarfile.open(archive) as members:
        assert "meta.json" in members.getnames()
    assert "meta file" not in caplog.text  # AllenNLP's warning of an archive without one
