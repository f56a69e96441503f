import json
import logging
import sys
from typing import List

import numpy as np
import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.data.documents import iter_documents
from dapt_plugin.data.text_files import DataError
from dapt_plugin.selection import vampire
from dapt_plugin.selection.tapt_selection import LsaEmbedder, SelectionResult, select_tapt_data
from dapt_plugin.selection.units import split_sentences
from dapt_plugin.testing.topics import (
    TopicalTextGenerator,
    TopicMix,
    on_topic,
    write_sentence_mix,
    write_topic_mix,
)

K = 5
DIMENSION = 32  # the mix has 2 topics: few dimensions describe it (the default 128 models noise)


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> TopicMix:
    return write_topic_mix(tmp_path_factory.mktemp("topic_mix"))


def select_knn(mix: TopicMix, output, **options) -> SelectionResult:
    """
    kNN-TAPT of the mix's task from its domain to `output`, with `K` and `DIMENSION`, by
    document (the mix's documents are one sentence each: the default unit selects the same).
    """
    options = {"unit": "document", "k": K, "dimension": DIMENSION, **options}
    return select_tapt_data(mix.task, mix.domain, str(output), **options)


def read_texts(path) -> List[str]:
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert all(set(row) == {"text"} for row in rows)
    return [row["text"] for row in rows]


def test_knn_selects_documents_of_the_task_topic(mix, tmp_path):
    result = select_knn(mix, tmp_path / "knn.jsonl")
    texts = read_texts(result.path)
    assert result.search == "exact" and result.units == len(texts)
    assert 40 < len(texts) <= 40 * K  # some neighbours are shared between examples
    assert on_topic(mix, texts) >= 0.9


def test_sentences_are_selected_not_documents(tmp_path):
    # Every domain document has two sentences on the task's topic and two on the other.
    mix = write_sentence_mix(tmp_path)
    sentences = {sentence for text in mix.domain_texts for sentence in split_sentences(text)}
    assert len(sentences) == 800
    result = select_tapt_data(mix.task, mix.domain, str(tmp_path / "knn.jsonl"), k=K, dimension=8)
    texts = read_texts(result.path)
    assert result.unit == "sentence" and result.domain_units == result.pool == 800
    assert 40 < len(texts) <= 40 * K and set(texts) <= sentences  # sentences of the domain
    assert on_topic(mix, texts) >= 0.9
    documents = select_tapt_data(
        mix.task, mix.domain, str(tmp_path / "documents.jsonl"), k=K, dimension=8, unit="document"
    )
    whole = read_texts(documents.path)
    assert documents.domain_units == 200 and set(whole) <= set(mix.domain_texts)
    assert all(len(split_sentences(text)) == 4 for text in whole)


def test_the_pool_is_a_seeded_sample_of_the_asked_size(mix, tmp_path):
    first = select_knn(mix, tmp_path / "a.jsonl", pool_size=100)
    again = select_knn(mix, tmp_path / "b.jsonl", pool_size=100)
    other = select_knn(mix, tmp_path / "c.jsonl", pool_size=100, seed=1)
    assert first.pool == again.pool == other.pool == 100 and first.domain_units == 800
    assert read_texts(first.path) == read_texts(again.path) != read_texts(other.path)
    # at most k x 40 of the 100 pooled documents, half of which are on the task's topic (the
    # embedder is fitted on those 100 only)
    assert len(read_texts(first.path)) <= 100 and on_topic(mix, read_texts(first.path)) >= 0.75
    # a domain smaller than the pool: all of it
    assert select_knn(mix, tmp_path / "d.jsonl").pool == 800


def test_the_pool_holds_each_distinct_text_once(tmp_path):
    generator = TopicalTextGenerator(seed=3)
    texts = generator.documents([0, 1] * 30)
    domain = tmp_path / "domain.txt"
    domain.write_text("".join(text + "\n" for text in texts * 3))  # every text three times
    task = tmp_path / "task.txt"
    task.write_text("".join(text + "\n" for text in generator.documents([0] * 5)))
    knn = select_tapt_data(str(task), str(domain), str(tmp_path / "knn.jsonl"), k=50, dimension=8)
    assert knn.domain_units == 180 and knn.pool == 60
    assert sorted(read_texts(knn.path)) == sorted(texts)  # k > pool: all of it, once each
    random_ = select_tapt_data(
        str(task), str(domain), str(tmp_path / "random.jsonl"), method="random", size=60
    )
    assert sorted(read_texts(random_.path)) == sorted(texts)


def test_random_sample_is_a_subset_of_the_knn_pool_of_the_same_seed(mix, tmp_path):
    pooled = set(read_texts(select_knn(mix, tmp_path / "pool.jsonl", k=800, pool_size=300).path))
    sampled = select_tapt_data(
        mix.task,
        mix.domain,
        str(tmp_path / "random.jsonl"),
        method="random",
        size=100,
        pool_size=300,
    )
    assert len(pooled) == 300 and sampled.units == 100
    assert set(read_texts(sampled.path)) < pooled


def test_vampire_embedder_selects_the_task_topic(mix, tmp_path, monkeypatch):
    monkeypatch.setattr(vampire, "_MAX_EPOCHS", 20)  # 140 steps on 840 texts: a few seconds
    result = select_knn(mix, tmp_path / "knn.jsonl", embedder="vampire", dimension=None)
    texts = read_texts(result.path)
    # a topic model maps the task's examples close together: fewer distinct neighbours than LSA
    assert len(texts) >= 10 and on_topic(mix, texts) >= 0.8  # half the domain is on topic


def test_knn_output_is_distinct_domain_documents_in_corpus_order(mix, tmp_path):
    texts = read_texts(select_knn(mix, tmp_path / "knn.jsonl").path)
    positions = [mix.domain_texts.index(text) for text in texts]
    assert positions == sorted(set(positions))


def test_exact_search_finds_the_true_nearest_neighbours_across_chunks(mix, tmp_path):
    # Small chunks: the per-example top k must be merged correctly across 23 chunks.
    result = select_knn(mix, tmp_path / "knn.jsonl", chunk_size=35)
    # Brute force with the same embedder (the sample is the whole corpus when it is this small).
    embedder = LsaEmbedder(mix.domain_texts, dimension=DIMENSION, seed=0)
    documents, _ = embedder.embed(mix.domain_texts)
    queries, _ = embedder.embed([d.text for d in iter_documents(str(mix.task))])
    nearest = np.argsort(-(queries @ documents.T), axis=1)[:, :K]
    expected = {mix.domain_texts[i] for i in np.unique(nearest)}
    assert set(read_texts(result.path)) == expected


def test_approximate_search_selects_like_exact_search(mix, tmp_path):
    exact = set(read_texts(select_knn(mix, tmp_path / "exact.jsonl").path))
    result = select_knn(
        mix, tmp_path / "ivf.jsonl", approximate_above=100, nlist=8, nprobe=8, chunk_size=100
    )
    assert result.search == "approximate"
    approximate = set(read_texts(result.path))
    # Every cell probed: only the 8-bit quantisation differs from exact search, at near-ties.
    assert len(approximate & exact) >= 0.95 * len(exact)


def test_approximate_search_with_few_cells_probed_stays_on_topic(mix, tmp_path):
    result = select_knn(mix, tmp_path / "ivf.jsonl", approximate_above=0, nprobe=2)
    assert result.search == "approximate"
    assert on_topic(mix, read_texts(result.path)) >= 0.9


def test_random_sample_is_about_half_on_topic(mix, tmp_path):
    knn = select_knn(mix, tmp_path / "knn.jsonl")
    result = select_tapt_data(
        mix.task,
        mix.domain,
        str(tmp_path / "random.jsonl"),
        method="random",
        size=knn.units,
        unit="document",
    )
    texts = read_texts(result.path)
    assert result.units == len(texts) == knn.units and len(set(texts)) == len(texts)
    # Hypergeometric, n ~ 150 of 800 half on topic: standard deviation 0.037; 4 of them.
    assert abs(on_topic(mix, texts) - 0.5) <= 0.15


def test_random_sample_is_reproducible_and_defaults_to_k_per_example(mix, tmp_path):
    first = read_texts(
        select_tapt_data(
            mix.task, mix.domain, str(tmp_path / "a.jsonl"), k=3, method="random", seed=1
        ).path
    )
    again = read_texts(
        select_tapt_data(
            mix.task, mix.domain, str(tmp_path / "b.jsonl"), k=3, method="random", seed=1
        ).path
    )
    other = read_texts(
        select_tapt_data(
            mix.task, mix.domain, str(tmp_path / "c.jsonl"), k=3, method="random", seed=2
        ).path
    )
    assert len(first) == 3 * 40
    assert first == again and first != other


def test_without_faiss_knn_stops_before_reading_any_file_and_random_runs(
    mix, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    missing = str(tmp_path / "no_such_domain.txt")  # read first, it would raise DataError
    with pytest.raises(
        ImportError, match=r"TAPT data selection needs faiss: pip install faiss-cpu"
    ):
        select_tapt_data(mix.task, missing, str(tmp_path / "knn.jsonl"))
    assert not list(tmp_path.iterdir())
    random = tmp_path / "random.jsonl"
    result = select_tapt_data(
        mix.task, mix.domain, str(random), k=K, method="random", unit="document"
    )
    assert result.units == len(read_texts(result.path)) > 0


@pytest.mark.parametrize("name", ["out.jsonl.gz", "OUT.JSONL.GZ", "out.ndjson"])
def test_gzip_and_other_json_lines_names_as_the_readers_take_them(mix, tmp_path, name):
    result = select_knn(mix, tmp_path / name)
    written = [document.text for document in iter_documents(result.path)]
    assert written == read_texts(select_knn(mix, tmp_path / "out.jsonl").path)


def test_task_examples_without_words_are_skipped_with_a_warning(mix, tmp_path, caplog):
    task = tmp_path / "task.jsonl"
    # stop words only, and words of no domain text
    task.write_text(
        mix.task.read_text()
        + json.dumps({"text": "the of and"})
        + "\n"
        + json.dumps({"text": "zzyzx qwfpgj"})
        + "\n"
    )
    with caplog.at_level(logging.WARNING):
        select_tapt_data(
            str(task), mix.domain, str(tmp_path / "out.jsonl"), k=K, dimension=DIMENSION
        )
    assert (
        "2 task example(s) have no word the embedder knows (outside the English stop words, in "
        f"the texts it was fitted on) and are skipped, the first at {task}:41" in caplog.text
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"k": 0}, "`k` must be a positive number of neighbours per task example"),
        ({"method": "nearest"}, "`method` must be one of knn, random; got 'nearest'"),
        ({"unit": "word"}, "`unit` must be one of sentence, document; got 'word'"),
        ({"embedder": "bert"}, "`embedder` must be one of lsa, vampire; got 'bert'"),
        ({"pool_size": 0}, "`pool_size` must be positive; got 0"),
        ({"dimension": 0}, "`dimension` must be positive, or unset for the embedder's default"),
        ({"seed": -1}, "`seed` must be between 0 and 4294967295; got -1"),
        ({"seed": 2**32}, "`seed` must be between 0 and 4294967295; got 4294967296"),
        ({"size": 10}, "`size` applies to the random method only"),
        (
            {"method": "random", "size": 801},
            "cannot sample 801 sentences from a domain corpus of 800 distinct sentences",
        ),
        (
            {"method": "random", "size": 50, "pool_size": 40},
            "the random sample of 50 units exceeds `pool_size` (40)",
        ),
        (
            {"method": "random", "k": 2, "pool_size": 40},  # 2 x 40 task examples
            "the random sample of 80 units exceeds `pool_size` (40)",
        ),
        (
            {"approximate_above": 0, "nlist": 10000},
            "`nlist` (10000) exceeds the 800 sampled units",
        ),
    ],
)
def test_bad_arguments_are_named_and_nothing_is_written(mix, tmp_path, arguments, message):
    output = tmp_path / "out.jsonl"
    with pytest.raises(ConfigurationError) as error:
        select_tapt_data(mix.task, mix.domain, str(output), **arguments)
    assert message in str(error.value)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file


def test_bad_paths_are_named(mix, tmp_path):
    with pytest.raises(DataError, match="missing.txt: no such file"):
        select_tapt_data(mix.task, str(tmp_path / "missing.txt"), str(tmp_path / "out.jsonl"))
    with pytest.raises(ConfigurationError, match="must end in .jsonl or .jsonl.gz"):
        select_tapt_data(mix.task, mix.domain, str(tmp_path / "out.txt"))
    with pytest.raises(ConfigurationError, match="must end in .jsonl or .jsonl.gz"):
        select_tapt_data(mix.task, mix.domain, str(tmp_path / "out.jsonl.bz2"))
    with pytest.raises(ConfigurationError, match="is also an input"):
        select_tapt_data(mix.task, mix.domain, str(mix.task))
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(ConfigurationError, match="dir.jsonl is a directory; give a file"):
        select_tapt_data(mix.task, mix.domain, str(tmp_path / "dir.jsonl"))
    with pytest.raises(ConfigurationError, match="is a file, not a directory"):
        select_tapt_data(mix.task, mix.domain, str(mix.task / "out.jsonl"))


def test_selection_is_read_by_the_tapt_reader_as_extra_tapt_data(mix, tmp_path, tiny_model):
    # tapt.jsonnet reads EXTRA_TAPT_PATHS with this reader, after the task's own train.jsonl.
    readers = pytest.importorskip("dapt_plugin.data.dataset_readers.masked_lm_corpus")
    result = select_knn(mix, tmp_path / "knn.jsonl")
    reader = readers.MaskedLmCorpusReader(
        model_name=str(tiny_model),
        mode="line_by_line",
        max_length=64,
        cache_directory=str(tmp_path / "cache"),
    )  # tapt.jsonnet's mode
    instances = list(reader.read(f"{mix.task},{result.path}"))
    assert len(instances) == 40 + result.units
