import json
import sys

import pytest

from dapt_plugin.data.documents import iter_documents
from dapt_plugin.selection import vampire
from dapt_plugin.selection.units import split_sentences
from dapt_plugin.testing.topics import on_topic, write_sentence_mix, write_topic_mix
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
    process = select(mix, knn, "--k", "5", "--dimension", "32", "--unit", "document")
    texts = [document.text for document in iter_documents(str(knn))]
    assert (
        f"Selected {len(texts)} of 800 domain documents (knn, exact search in a pool of 800); "
        f"written to {knn}" in process.stdout
    )
    assert on_topic(mix, texts) >= 0.9
    # RAND-TAPT control, as docs/selection.md shows it: the same number of documents.
    random_ = tmp_path / "rand_tapt.jsonl"
    process = select(
        mix, random_, "--method", "random", "--size", str(len(texts)), "--unit", "document"
    )
    sampled = [json.loads(line)["text"] for line in random_.read_text().splitlines()]
    assert len(sampled) == len(texts)
    assert abs(on_topic(mix, sampled) - 0.5) <= 0.15  # n ~ 150 of 800: standard deviation 0.037
    assert f"Selected {len(texts)} of 800 domain documents (random)" in process.stdout


def test_cli_k_of_zero_is_a_clear_error(mix, tmp_path):
    process = select(mix, tmp_path / "out.jsonl", "--k", "0", check=False)
    assert process.returncode == 1
    assert (
        "allennlp select-tapt-data: error: `--k` must be a positive number of neighbours per task "
        "example" in process.stderr
    )
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_sentences_from_a_seeded_pool_with_the_vampire_embedder(tmp_path, monkeypatch):
    monkeypatch.setattr(vampire, "_MAX_EPOCHS", 20)  # the CLI runs in this process
    mix = write_sentence_mix(tmp_path)
    output = tmp_path / "knn.jsonl"
    options = ["--k", "5", "--pool-size", "600", "--seed", "2", "--embedder", "vampire"]
    process = select(mix, output, *options)
    assert "domain sentences (knn, exact search in a pool of 600)" in process.stdout
    sentences = {sentence for text in mix.domain_texts for sentence in split_sentences(text)}
    texts = [document.text for document in iter_documents(str(output))]
    assert texts and set(texts) <= sentences and on_topic(mix, texts) >= 0.75


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--unit", "word", "`--unit` must be one of sentence, document; got 'word'"),
        ("--embedder", "bert", "`--embedder` must be one of lsa, vampire; got 'bert'"),
        ("--pool-size", "0", "`--pool-size` must be positive; got 0"),
    ],
)
def test_cli_bad_new_options_are_named(mix, tmp_path, option, value, message):
    process = select(mix, tmp_path / "out.jsonl", option, value, check=False)
    assert process.returncode == 1
    assert f"allennlp select-tapt-data: error: {message}" in process.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_missing_domain_corpus_is_a_clear_error(mix, tmp_path):
    process = select(mix, tmp_path / "out.jsonl", domain=tmp_path / "gone.txt", check=False)
    assert process.returncode == 1
    assert (
        f"allennlp select-tapt-data: error: {tmp_path / 'gone.txt'}: no such file" in process.stderr
    )


def test_without_faiss_knn_is_a_clear_error(mix, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    process = select(mix, tmp_path / "out.jsonl", check=False)
    assert process.returncode == 1
    assert (
        "allennlp select-tapt-data: error: TAPT data selection needs faiss: pip install faiss-cpu "
        "(or the plugin's `selection` extra)" in process.stderr
    )
    assert "Traceback" not in process.stderr and not list(tmp_path.iterdir())


def test_approximate_search_from_the_command_line(mix, tmp_path):
    output = tmp_path / "knn.jsonl"
    process = select(
        mix,
        output,
        "--k",
        "5",
        "--dimension",
        "32",
        "--unit",
        "document",
        "--approximate-above",
        "100",
        "--nprobe",
        "2",
    )
    assert "(knn, approximate search in a pool of 800)" in process.stdout
    assert on_topic(mix, [document.text for document in iter_documents(str(output))]) >= 0.9
