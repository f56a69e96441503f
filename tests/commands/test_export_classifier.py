"""`allennlp export-classifier`, run in-process through allennlp's own entry point."""

import sys

import pytest
from allennlp.commands import main
from allennlp.common.checks import ConfigurationError
from transformers import AutoConfig


def export_classifier(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["allennlp", "export-classifier", *args])
    main(prog="allennlp")


def test_writes_a_directory_and_replaces_one_only_when_forced(
    trained_classifier, tmp_path, monkeypatch
):
    archive, output = str(trained_classifier / "model.tar.gz"), tmp_path / "hf_classifier"
    export_classifier(monkeypatch, archive, "-o", str(output))
    assert set(AutoConfig.from_pretrained(str(output)).label2id) == {"inhibitor", "activator"}

    (output / "notes.txt").write_text("a file of the user's")
    with pytest.raises(ConfigurationError) as error:
        export_classifier(monkeypatch, archive, "-o", str(output))
    assert str(error.value) == (
        f"{output} already exists and is not empty; give a new directory, or --force to replace it"
    )
    assert (output / "notes.txt").exists()

    export_classifier(monkeypatch, archive, "--output-dir", str(output), "--force")
    assert not (output / "notes.txt").exists() and (output / "model.safetensors").exists()
    assert [path.name for path in tmp_path.iterdir()] == [
        "hf_classifier"
    ]  # no temporary or old copy left
