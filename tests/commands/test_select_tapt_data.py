import json

import pytest

from dapt_plugin.data.documents import iter_documents
from dapt_plugin.testing.topics import on_topic, write_topic_mix
from tests.conftest import allennlp


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return write_topic_mix(tmp_path_factory.mktemp("topic_mix"))


def select(mix, output, *options, domain=None, check=True):
    """`allennlp select-tapt-data` of the mix's task from its domain (or `domain`) to `output`."""
    return allennlp(
        [
            "select-tapt-data",
            "--task",
            str(mix.task),
            "--domain",
            str(domain or mix.domain),
            "--output",
            str(output),
            *options,
        ],
        check=check,
    )


def test_cli_knn_then_random_of_the_same_size(mix, tmp_path):
    knn = tmp_path / "knn_tapt.jsonl"
    process = select(mix, knn, "--k", "5", "--dimension", "32")
    texts = [document.text for document in iter_documents(str(knn))]
    assert (
        f"Selected {len(texts)} of 800 domain documents (knn, exact search); written to {knn}"
        in process.stdout
    )
    assert on_topic(mix, texts) >= 0.9
    # RAND-TAPT control, as docs/selection.md shows it: the same number of documents.
    random_ = tmp_path / "rand_tapt.jsonl"
    process = select(mix, random_, "--method", "random", "--size", str(len(texts)))
    sampled = [json.loads(line)["text"] for line in random_.read_text().splitlines()]
    assert len(sampled) == len(texts)
    assert abs(on_topic(mix, sampled) - 0.5) <= 0.15  # n ~ 150 of 800: standard deviation 0.037
    assert f"Selected {len(texts)} of 800 domain documents (random)" in process.stdout


def test_cli_k_of_zero_is_a_clear_error(mix, tmp_path):
    process = select(mix, tmp_path / "out.jsonl", "--k", "0", check=False)
    assert process.returncode == 1
    assert (
        "allennlp select-tapt-data: error: `k` must be a positive number of neighbours per task example"
        in process.stderr
    )
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_missing_domain_corpus_is_a_clear_error(mix, tmp_path):
    process = select(mix, tmp_path / "out.jsonl", domain=tmp_path / "gone.txt", check=False)
    assert process.returncode == 1
    assert (
        f"allennlp select-tapt-data: error: {tmp_path / 'gone.txt'}: no such file" in process.stderr
    )


def test_approximate_search_from_the_command_line(mix, tmp_path):
    output = tmp_path / "knn.jsonl"
    process = select(
        mix,
        output,
        "--k",
        "5",
        "--dimension",
        "32",
        "--approximate-above",
        "100",
        "--nprobe",
        "2",
    )
    assert "(knn, approximate search)" in process.stdout
    assert on_topic(mix, [document.text for document in iter_documents(str(output))]) >= 0.9
