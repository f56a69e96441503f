import json
import sys

import pytest
from allennlp.commands import main

from tests.conftest import DATA, TASK, allennlp


def test_cli_compares_named_corpora_and_draws_the_heatmap(tmp_path):
    process = allennlp(
        [
            "vocab-overlap",
            f"General={DATA / 'general.txt'}",
            f"Domain={DATA / 'domain.txt'}",
            f"Task={TASK / 'train.jsonl'}",
            "--output-dir",
            str(tmp_path),
            "--top-k",
            "50",
        ]
    )
    result = json.loads((tmp_path / "vocab_overlap.json").read_text())
    assert result["names"] == ["General", "Domain", "Task"]
    percent = result["overlap_percent"]
    assert [percent[i][i] for i in range(3)] == [100.0, 100.0, 100.0]
    # The task shares compound names and tissues with the domain, nothing with general text.
    assert percent[1][2] > percent[0][2]
    png = (tmp_path / "vocab_overlap.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10000
    assert f"written to {tmp_path / 'vocab_overlap.json'}" in process.stdout


def test_cli_passes_the_sample_and_the_released_scripts_min_df(tmp_path):
    corpora = [f"Domain={DATA / 'domain.txt'}", f"Task={TASK / 'train.jsonl'}"]
    options = ["--sample", "15", "--seed", "3", "--min-df", "3"]
    allennlp(["vocab-overlap", *corpora, "--output-dir", str(tmp_path), *options])
    result = json.loads((tmp_path / "vocab_overlap.json").read_text())
    assert (result["top_k"], result["min_df"], result["sample"], result["seed"]) == (None, 3, 15, 3)
    assert [corpus["documents"] for corpus in result["corpora"]] == [15, 15]
    assert "the words in at least 3 documents" in result["measure"]
    both = allennlp(
        ["vocab-overlap", *corpora, "--output-dir", str(tmp_path / "b"), "--min-df", "3"]
        + ["--top-k", "50"],
        check=False,
    )
    assert both.returncode != 0 and "give one of `--top-k`" in both.stderr


def test_cli_missing_corpus_is_a_clear_error(tmp_path):
    process = allennlp(
        [
            "vocab-overlap",
            f"General={DATA / 'general.txt'}",
            f"Gone={tmp_path / 'missing.txt'}",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        check=False,
    )
    assert process.returncode == 1
    assert (
        f"allennlp vocab-overlap: error: {tmp_path / 'missing.txt'}: no such file" in process.stderr
    )
    assert "Traceback" not in process.stderr


@pytest.mark.parametrize(
    "corpus, message",
    [
        (str(DATA / "general.txt"), "is not NAME=PATH; name every corpus"),
        ("General=", "is not NAME=PATH"),
    ],
)
def test_corpora_must_be_named(monkeypatch, tmp_path, corpus, message):
    monkeypatch.setattr(
        sys, "argv", ["allennlp", "vocab-overlap", corpus, "--output-dir", str(tmp_path)]
    )
    with pytest.raises(SystemExit) as exit_:
        main()
    assert message in str(exit_.value.code)


def test_corpus_names_must_be_unique(monkeypatch, tmp_path):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "allennlp",
            "vocab-overlap",
            f"A={DATA / 'general.txt'}",
            f"A={DATA / 'domain.txt'}",
            "--output-dir",
            str(tmp_path),
        ],
    )
    with pytest.raises(SystemExit) as exit_:
        main()
    assert "corpus name 'A' is given twice" in str(exit_.value.code)
