import json
import sys

import pytest
from allennlp.commands import main

from dapt_plugin.data.documents import iter_documents
from dapt_plugin.testing.topics import on_topic, write_topic_mix
from tests.conftest import allennlp


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return write_topic_mix(tmp_path_factory.mktemp("topic_mix"))


def run_in_process(monkeypatch, args):
    """The real argument parser and subcommand, without a subprocess."""
    monkeypatch.setattr(sys, "argv", ["allennlp", "select-tapt-data", *args])
    main()


def test_cli_knn_then_random_of_the_same_size(mix, tmp_path, monkeypatch, capsys):
    knn = tmp_path / "knn_tapt.jsonl"
    process = allennlp(
        [
            "select-tapt-data",
            "--task",
            str(mix.task),
            "--domain",
            str(mix.domain),
            "--output",
            str(knn),
            "--k",
            "5",
            "--dimension",
            "32",
        ]
    )
    texts = [document.text for document in iter_documents(str(knn))]
    assert (
        f"Selected {len(texts)} of 800 domain documents (knn, exact search); written to {knn}"
        in process.stdout
    )
    assert on_topic(mix, texts) >= 0.9
    # RAND-TAPT control, as docs/selection.md shows it: the same number of documents.
    random_ = tmp_path / "rand_tapt.jsonl"
    run_in_process(
        monkeypatch,
        [
            "--task",
            str(mix.task),
            "--domain",
            str(mix.domain),
            "--output",
            str(random_),
            "--method",
            "random",
            "--size",
            str(len(texts)),
        ],
    )
    sampled = [json.loads(line)["text"] for line in random_.read_text().splitlines()]
    assert len(sampled) == len(texts)
    assert abs(on_topic(mix, sampled) - 0.5) <= 0.15  # n ~ 150 of 800: standard deviation 0.037
    assert f"Selected {len(texts)} of 800 domain documents (random)" in capsys.readouterr().out


def test_cli_k_of_zero_is_a_clear_error(mix, tmp_path):
    process = allennlp(
        [
            "select-tapt-data",
            "--task",
            str(mix.task),
            "--domain",
            str(mix.domain),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--k",
            "0",
        ],
        check=False,
    )
    assert process.returncode == 1
    assert (
        "allennlp select-tapt-data: error: `k` must be a positive number of neighbours per task example"
        in process.stderr
    )
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_missing_domain_corpus_is_a_clear_error(mix, tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as exit_:
        run_in_process(
            monkeypatch,
            [
                "--task",
                str(mix.task),
                "--domain",
                str(tmp_path / "gone.txt"),
                "--output",
                str(tmp_path / "out.jsonl"),
            ],
        )
    assert str(exit_.value.code).startswith(
        f"allennlp select-tapt-data: error: {tmp_path / 'gone.txt'}: no such file"
    )


def test_approximate_search_from_the_command_line(mix, tmp_path, monkeypatch, capsys):
    output = tmp_path / "knn.jsonl"
    run_in_process(
        monkeypatch,
        [
            "--task",
            str(mix.task),
            "--domain",
            str(mix.domain),
            "--output",
            str(output),
            "--k",
            "5",
            "--dimension",
            "32",
            "--approximate-above",
            "100",
            "--nprobe",
            "2",
        ],
    )
    assert "(knn, approximate search)" in capsys.readouterr().out
    assert on_topic(mix, [document.text for document in iter_documents(str(output))]) >= 0.9
