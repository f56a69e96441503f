import json

import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.data.text_files import DataError
from dapt_plugin.overlap.vocab_overlap import corpus_vocabulary, overlap_matrices, vocab_overlap


def write_corpus(path, word_counts):
    """One document per word, repeated `count` times, with stop words that must not count."""
    lines = [
        " ".join([word] * count + ["the", "and", "of"] * 5) for word, count in word_counts.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_top_words_are_the_most_frequent_non_stop_words_ties_alphabetical(tmp_path):
    path = write_corpus(tmp_path / "c.txt", {"zebra": 3, "apple": 3, "mango": 5, "kiwi": 1, "I": 9})
    vocabulary = corpus_vocabulary("c", path, top_k=3)
    # "the", "and", "of" are stop words; "I" is one character, not a word.
    assert vocabulary.top_words == ["mango", "apple", "zebra"]
    assert (vocabulary.documents, vocabulary.words, vocabulary.distinct_words) == (5, 12, 4)


def test_overlap_is_100_with_itself_0_when_disjoint_and_exact_when_partial(tmp_path):
    words = [f"word{i:02d}" for i in range(15)]
    # A: word00..word09, B: word05..word14, C: disjoint; counts decreasing so each set is exact.
    a = write_corpus(tmp_path / "a.txt", {w: 20 - i for i, w in enumerate(words[:10])})
    b = write_corpus(tmp_path / "b.txt", {w: 20 - i for i, w in enumerate(words[5:])})
    c = write_corpus(tmp_path / "c.txt", {f"other{i}": 3 for i in range(10)})
    vocabularies = [
        corpus_vocabulary(name, path, top_k=10)
        for name, path in [("A", a), ("A again", a), ("B", b), ("C", c)]
    ]
    percent, shared = overlap_matrices(vocabularies)
    assert percent[0][0] == percent[0][1] == 100.0
    assert percent[0][3] == percent[3][0] == 0.0
    assert shared[0][2] == 5
    assert percent[0][2] == percent[2][0] == pytest.approx(100 * 5 / 15)  # |A∩B| / |A∪B|


def test_top_k_cuts_each_vocabulary_before_comparing(tmp_path):
    # Same 10 words, but in reverse frequency order: the top 5 of each are disjoint.
    words = [f"word{i}" for i in range(10)]
    a = write_corpus(tmp_path / "a.txt", {w: 20 - i for i, w in enumerate(words)})
    b = write_corpus(tmp_path / "b.txt", {w: 10 + i for i, w in enumerate(words)})
    percent, _ = overlap_matrices(
        [corpus_vocabulary("a", a, top_k=5), corpus_vocabulary("b", b, top_k=5)]
    )
    assert percent[0][1] == 0.0
    percent, _ = overlap_matrices(
        [corpus_vocabulary("a", a, top_k=10), corpus_vocabulary("b", b, top_k=10)]
    )
    assert percent[0][1] == 100.0


def test_max_documents_reads_only_the_first_documents(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        "".join(json.dumps({"text": f"first{i}"}) + "\n" for i in range(3))
        + json.dumps({"text": "later"})
        + "\n"
    )
    vocabulary = corpus_vocabulary("c", str(path), max_documents=3)
    assert vocabulary.documents == 3 and "later" not in vocabulary.top_words


def _numbered_corpus(path, documents=200):
    """Document i holds the word `doc<i>` once: which documents were read shows in the words."""
    path.write_text("".join(f"doc{i:03d} common\n" for i in range(documents)))
    return str(path)


def test_a_sample_is_a_seeded_random_sample_of_the_whole_corpus(tmp_path):
    path = _numbered_corpus(tmp_path / "c.txt")

    def sampled(seed):
        vocabulary = corpus_vocabulary("c", path, top_k=1000, sample=20, seed=seed)
        assert vocabulary.documents == 20
        return {int(word[3:]) for word in vocabulary.top_words if word.startswith("doc")}

    first = sampled(0)
    assert len(first) == 20 and sampled(0) == first and sampled(1) != first
    assert max(first) >= 20  # not the first 20 documents
    assert max(first) >= 100 and min(first) < 100  # drawn from all of it: P(fail) < 1e-5
    # a sample larger than the corpus is the whole corpus
    assert corpus_vocabulary("c", path, top_k=1000, sample=500).documents == 200


def test_min_df_gives_the_released_scripts_vocabulary(tmp_path):
    from sklearn.feature_extraction.text import CountVectorizer

    lines = [
        "Kinase kinase inhibits the receptor",
        "the receptor receptor binds the ligand ligand ligand ligand",
        "a kinase and a receptor",
        "kinase, receptor; ligand",
        "protein",
        "protein phosphorylation",
    ]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines) + "\n")
    vocabulary = corpus_vocabulary("c", str(path), top_k=None, min_df=3)
    # scripts/vocab_overlap.py: CountVectorizer(min_df=3, stop_words="english") fitted on the lines
    released = CountVectorizer(min_df=3, stop_words="english").fit(lines)
    assert set(vocabulary.top_words) == set(released.vocabulary_) == {"kinase", "receptor"}
    # "ligand" is frequent (5 times) but in 2 documents only; most frequent first (5, 4)
    assert vocabulary.top_words == ["receptor", "kinase"]


def test_writes_json_and_a_png_heatmap(tmp_path):
    a = write_corpus(tmp_path / "a.txt", {"alpha": 2, "beta": 1})
    b = write_corpus(tmp_path / "b.txt", {"alpha": 2, "gamma": 1})
    json_path, png_path = vocab_overlap({"Biomedical papers": a, "News": b}, str(tmp_path / "out"))
    result = json.loads(open(json_path).read())
    assert result["names"] == ["Biomedical papers", "News"]
    assert result["overlap_percent"][0][1] == pytest.approx(100 / 3)
    assert result["shared_words"] == [[2, 1], [1, 2]]
    assert result["corpora"][1]["top_words"] == ["alpha", "gamma"]
    with open(png_path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "vocab_overlap.json",
        "vocab_overlap.png",
    ]


def test_errors_name_the_problem(tmp_path):
    a = write_corpus(tmp_path / "a.txt", {"alpha": 2})
    with pytest.raises(DataError, match="missing.txt: no such file"):
        vocab_overlap({"a": a, "b": str(tmp_path / "missing.txt")}, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # checked before anything is read or written
    with pytest.raises(ConfigurationError, match="`top_k` must be a positive number; got 0"):
        vocab_overlap({"a": a}, str(tmp_path / "out"), top_k=0)
    with pytest.raises(ConfigurationError, match="give one of `top_k` .* and `min_df`"):
        vocab_overlap({"a": a}, str(tmp_path / "out"), min_df=3)  # top_k is 10000 by default
    with pytest.raises(ConfigurationError, match="`max_documents` .* and `sample` .*not both"):
        vocab_overlap({"a": a}, str(tmp_path / "out"), max_documents=2, sample=2)
    stop_words_only = tmp_path / "stop.txt"
    stop_words_only.write_text("the and of\n")
    with pytest.raises(DataError, match="no words outside the English stop words"):
        vocab_overlap({"stop": str(stop_words_only)}, str(tmp_path / "out"))


def test_a_failure_while_writing_leaves_no_output_and_no_temporary_file(tmp_path, monkeypatch):
    from dapt_plugin.overlap import vocab_overlap as module

    def failing_plot(*args):
        raise RuntimeError("killed while drawing")

    a = write_corpus(tmp_path / "a.txt", {"alpha": 2})
    monkeypatch.setattr(module, "plot_overlap", failing_plot)
    with pytest.raises(RuntimeError, match="killed while drawing"):
        vocab_overlap({"a": a}, str(tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_when_the_json_is_flushed_leaves_no_heatmap_either(tmp_path, monkeypatch):
    import errno
    import os

    from dapt_plugin.common import atomic

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    a = write_corpus(tmp_path / "a.txt", {"alpha": 2})
    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        vocab_overlap({"a": a}, str(tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []


def test_an_output_dir_that_is_a_file_or_under_one_is_refused_before_any_corpus_is_read(
    tmp_path,
):
    a = write_corpus(tmp_path / "a.txt", {"alpha": 2})
    with pytest.raises(ConfigurationError, match="a.txt is a file; give a directory"):
        vocab_overlap({"a": a}, a)
    with pytest.raises(ConfigurationError, match="a.txt is a file, not a directory"):
        vocab_overlap({"a": a}, str(tmp_path / "a.txt" / "out"))


def test_an_output_that_is_a_corpus_file_is_refused_and_the_corpus_kept(tmp_path):
    corpus = write_corpus(tmp_path / "vocab_overlap.json", {"alpha": 2})  # a .json corpus name
    before = (tmp_path / "vocab_overlap.json").read_bytes()
    with pytest.raises(ConfigurationError) as error:
        vocab_overlap({"a": str(tmp_path / "*.json")}, str(tmp_path))
    assert error.value.message == (
        f"the output {tmp_path / 'vocab_overlap.json'} is a file of corpus a {corpus}, which "
        "writing it would replace; give another output file"
    )
    assert (tmp_path / "vocab_overlap.json").read_bytes() == before


def test_a_corpus_with_no_word_in_min_df_documents_says_how_low_min_df_must_go(tmp_path):
    task = tmp_path / "task.jsonl"
    task.write_text('{"text": "alpha beta gamma"}\n{"text": "alpha epsilon"}\n')
    with pytest.raises(ConfigurationError) as error:
        vocab_overlap({"Task": str(task)}, str(tmp_path / "out"), top_k=None, min_df=3)
    assert str(error.value) == (
        "corpus 'Task': no word outside the English stop words is in 3 of its 2 document(s) (at "
        "most 2); lower `min_df` to 2 or less, or give it more documents"
    )
