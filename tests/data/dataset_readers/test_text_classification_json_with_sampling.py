import json
import logging
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import List

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import prepare_environment
from allennlp.data import DatasetReader
from allennlp.data.tokenizers import PretrainedTransformerTokenizer, Token, WhitespaceTokenizer
from scipy.stats import chi2

from dapt_plugin.data.dataset_readers.text_classification_json_with_sampling import (
    TextClassificationJsonWithSamplingReader,
)
from dapt_plugin.data.text_files import DataError
from dapt_plugin.testing.text import write_jsonl, write_lines
from tests.conftest import TASK, allennlp, read_jsonl


def make_reader(**kwargs) -> TextClassificationJsonWithSamplingReader:
    return TextClassificationJsonWithSamplingReader(tokenizer=WhitespaceTokenizer(), **kwargs)


def read_error(path: Path, **reader_options) -> str:
    """The message of the `DataError` that reading `path` stops with."""
    with pytest.raises(DataError) as error:
        list(make_reader(**reader_options).read(path))
    return str(error.value)


def texts_of(instances) -> List[str]:
    return [" ".join(token.text for token in instance["tokens"].tokens) for instance in instances]


@pytest.fixture(scope="module")
def numbered_file(tmp_path_factory) -> Path:
    """100 lines whose texts are their line numbers: "line 1" ... "line 100"."""
    path = tmp_path_factory.mktemp("numbered") / "numbered.jsonl"
    write_jsonl(path, [{"text": f"line {i}", "label": "a"} for i in range(1, 101)])
    return path


# Reading


def test_reads_the_text_and_label_of_every_line():
    rows = read_jsonl(TASK / "train.jsonl")
    instances = list(make_reader().read(TASK / "train.jsonl"))
    assert texts_of(instances) == [row["text"] for row in rows]
    assert [instance["label"].label for instance in instances] == [row["label"] for row in rows]


def test_truncation_keeps_the_start_and_end_tokens(tiny_model):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_model))
    full = list(
        TextClassificationJsonWithSamplingReader(tokenizer=tokenizer).read(TASK / "train.jsonl")
    )
    truncated = list(
        TextClassificationJsonWithSamplingReader(tokenizer=tokenizer, max_sequence_length=8).read(
            TASK / "train.jsonl"
        )
    )
    assert any(len(instance["tokens"].tokens) > 8 for instance in full)
    for whole, cut in zip(full, truncated):
        whole_tokens = [token.text for token in whole["tokens"].tokens]
        cut_tokens = [token.text for token in cut["tokens"].tokens]
        assert whole_tokens[0] == "<s>" and whole_tokens[-1] == "</s>"
        if len(whole_tokens) <= 8:
            assert cut_tokens == whole_tokens
        else:
            assert cut_tokens == whole_tokens[:7] + ["</s>"]


def test_the_share_of_tokens_that_cut_texts_leave_out_is_logged(tiny_model, tmp_path, caplog):
    path = tmp_path / "long.jsonl"
    lines = [{"text": "word " * 100, "label": "a"}, {"text": "short", "label": "b"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    reader = TextClassificationJsonWithSamplingReader(
        tokenizer=PretrainedTransformerTokenizer(str(tiny_model)), max_sequence_length=16
    )
    with caplog.at_level(logging.INFO):
        instances = list(reader.read(str(path)))
    total = sum(len(reader.tokenizer.tokenize(line["text"])) for line in lines)
    kept = sum(len(instance["tokens"]) for instance in instances)
    warnings = [r for r in caplog.records if "are cut to it" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert warnings[0].getMessage() == (
        f"{path}: 1 of 2 texts are longer than `max_sequence_length` (MAX_LENGTH in the configs), "
        f"16 tokens, and are cut to it, their end left out: the examples hold "
        f"{100 * kept / total:.1f}% of the texts' tokens"
    )


def test_a_text_longer_than_the_model_takes_is_cut_without_transformers_warning(tiny_model, caplog):
    reader = TextClassificationJsonWithSamplingReader(
        tokenizer=PretrainedTransformerTokenizer(str(tiny_model)), max_sequence_length=64
    )
    with caplog.at_level(logging.WARNING):
        instance = reader.text_to_instance("word " * 3000)  # thousands of tokens
    assert len(instance["tokens"].tokens) == 64
    assert "indexing errors" not in caplog.text


def test_max_sequence_length_must_leave_room_for_text(tiny_model):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_model))
    with pytest.raises(
        ConfigurationError,
        match=r"`max_sequence_length` \(2; MAX_LENGTH in the configs\) leaves no room .* raise it",
    ):
        TextClassificationJsonWithSamplingReader(tokenizer=tokenizer, max_sequence_length=2)
    with pytest.raises(ConfigurationError, match="`max_sequence_length` must be positive.*got 0"):
        make_reader(max_sequence_length=0)


def test_max_sequence_length_must_fit_the_models_positions(tiny_model):
    tokenizer = PretrainedTransformerTokenizer(str(tiny_model))
    # 514 position embeddings, of which RoBERTa's position ids skip the first two
    TextClassificationJsonWithSamplingReader(tokenizer=tokenizer, max_sequence_length=512)
    with pytest.raises(
        ConfigurationError,
        match=r"`max_sequence_length` \(513; MAX_LENGTH in the configs\) is above the position "
        r"limit of '.*', 512 tokens: .* set it to 512 or less",
    ):
        TextClassificationJsonWithSamplingReader(tokenizer=tokenizer, max_sequence_length=513)


class WordCountTokenizer(WhitespaceTokenizer):
    """Appends a token that changes with the text, so no fixed end token can be kept."""

    def tokenize(self, text: str) -> List[Token]:
        tokens = super().tokenize(text)
        return tokens + [Token(f"<{len(tokens)} words>")]


def test_max_sequence_length_needs_added_tokens_it_can_locate():
    with pytest.raises(
        ConfigurationError,
        match=r"cannot tell which of the tokens \['<0 words>'\] .* set it to null",
    ):
        TextClassificationJsonWithSamplingReader(
            tokenizer=WordCountTokenizer(), max_sequence_length=8
        )


def test_reading_is_lazy(tmp_path):
    """Instances come out as lines are read: a bad line late in a file is only met when reached."""
    path = tmp_path / "late_error.jsonl"
    write_lines(path, [json.dumps({"text": "fine", "label": "a"})] * 3 + ["{broken"])
    instances = make_reader().read(path)
    assert texts_of([next(instances), next(instances), next(instances)]) == ["fine"] * 3
    with pytest.raises(DataError, match="late_error.jsonl:4: "):
        next(instances)


# Sampling


def test_same_seed_gives_the_same_sample(numbered_file):
    first = texts_of(make_reader(sample=10, sample_seed=3).read(numbered_file))
    second = texts_of(make_reader(sample=10, sample_seed=3).read(numbered_file))
    assert len(first) == 10
    assert first == second


def test_different_seeds_give_different_samples(numbered_file):
    samples = {
        tuple(texts_of(make_reader(sample=10, sample_seed=seed).read(numbered_file)))
        for seed in range(5)
    }
    assert len(samples) == 5


def test_every_epoch_reads_the_same_sample(numbered_file):
    reader = make_reader(sample=10, sample_seed=3)
    assert texts_of(reader.read(numbered_file)) == texts_of(reader.read(numbered_file))


def test_sample_keeps_file_order(numbered_file):
    numbers = [
        int(text.split()[1])
        for text in texts_of(make_reader(sample=10, sample_seed=3).read(numbered_file))
    ]
    assert numbers == sorted(numbers)


def test_every_line_is_drawn_with_the_same_probability(tmp_path):
    """
    2000 samples of 5 out of 20 lines, seeds 0..1999: each line should be drawn 500 times.
    Under uniform sampling without replacement, the Pearson statistic scaled by
    (lines - 1) / (lines - sample) follows chi-square with lines - 1 degrees of freedom; the test
    fails if counts this uneven have probability below 0.001. The seeds are fixed, so the result
    does not vary between runs; the usual reservoir off-by-one (drawing the slot of the i-th line,
    0-based, from [0, i) instead of [0, i]) fails it with p around 1e-13.
    """
    lines, sample, draws = 20, 5, 2000
    path = tmp_path / "twenty.jsonl"
    write_jsonl(path, [{"text": f"line {i}", "label": "a"} for i in range(lines)])
    counts = Counter(
        text
        for seed in range(draws)
        for text in texts_of(make_reader(sample=sample, sample_seed=seed).read(path))
    )
    expected = draws * sample / lines
    observed = [counts[f"line {i}"] for i in range(lines)]
    pearson = sum((count - expected) ** 2 / expected for count in observed)
    statistic = pearson * (lines - 1) / (lines - sample)
    assert chi2.sf(statistic, lines - 1) > 0.001, observed


def test_config_random_seed_fixes_the_default_sample_seed(numbered_file):
    """Without `sample_seed`, the config's `random_seed` decides the sample, as `allennlp train` seeds it."""

    def sample_under(random_seed: int) -> List[str]:
        prepare_environment(
            Params(
                {"random_seed": random_seed, "numpy_seed": random_seed, "pytorch_seed": random_seed}
            )
        )
        reader = DatasetReader.from_params(
            Params(
                {
                    "type": "text_classification_json_with_sampling",
                    "tokenizer": {"type": "whitespace"},
                    "sample": 10,
                }
            )
        )
        return texts_of(reader.read(numbered_file))

    assert sample_under(13) == sample_under(13)
    assert sample_under(13) != sample_under(14)


def test_sample_never_draws_lines_with_an_empty_text(tmp_path):
    path = tmp_path / "some_empty.jsonl"
    write_jsonl(path, [{"text": "" if i % 2 else f"line {i}", "label": "a"} for i in range(20)])
    texts = texts_of(make_reader(sample=10, sample_seed=0).read(path))
    assert sorted(texts) == sorted(f"line {i}" for i in range(0, 20, 2))


def test_sampling_holds_only_the_sample_in_memory(tmp_path):
    """Sampling 5 lines of a 5 MB file reads it in one pass without holding it."""
    path = tmp_path / "big.jsonl"
    write_jsonl(path, [{"text": f"line {i} " + "word " * 10, "label": "a"} for i in range(60_000)])
    assert path.stat().st_size > 5_000_000
    reader = make_reader(sample=5, sample_seed=0)
    tracemalloc.start()
    try:
        instances = list(reader.read(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(instances) == 5
    assert peak < 500_000


def test_sample_larger_than_the_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "small.jsonl"
    write_jsonl(path, [{"text": f"line {i}", "label": "a"} for i in range(5)])
    assert len(list(make_reader(sample=5).read(path))) == 5
    assert read_error(path, sample=6) == (
        f"{path}: `sample` (TRAIN_SAMPLE in classifier.jsonnet) is 6 but the file has only 5 "
        "lines with a text; lower it, or unset it to read the whole file"
    )


@pytest.mark.parametrize("sample", [0, -3])
def test_sample_must_be_positive(sample):
    with pytest.raises(
        ConfigurationError, match=f"`sample` must be a positive number of lines.*got {sample}"
    ):
        DatasetReader.from_params(
            Params({"type": "text_classification_json_with_sampling", "sample": sample})
        )


# Bad input

TEXT_KEY_FIX = "(or name the text field with `text_key`)"


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (
            '{"text": "cut off", "lab',
            "not valid JSON (Unterminated string starting at: column 21); "
            "each line must be one JSON object",
        ),
        (
            '{"label": "a"}',
            'no \'text\' field; each line needs {"text": ..., "label": ...} ' + TEXT_KEY_FIX,
        ),
        (
            '["a list"]',
            'no \'text\' field; each line needs {"text": ..., "label": ...} ' + TEXT_KEY_FIX,
        ),
        (
            '{"text": 5, "label": "a"}',
            "'text' is an integer, not a string; write the text in quotes",
        ),
    ],
    ids=["malformed_json", "no_text", "not_an_object", "text_not_a_string"],
)
@pytest.mark.parametrize("sample", [None, 2], ids=["whole_file", "sampled"])
def test_bad_line_stops_with_file_line_and_fix(tmp_path, bad_line, message, sample):
    path = tmp_path / "bad.jsonl"
    write_lines(
        path, ['{"text": "fine", "label": "a"}', bad_line, '{"text": "also fine", "label": "b"}']
    )
    assert read_error(path, sample=sample, sample_seed=0) == f"{path}:2: {message}"


def test_non_integer_label_with_skip_label_indexing_names_line_and_fix(tmp_path):
    path = tmp_path / "labels.jsonl"
    write_lines(path, ['{"text": "fine", "label": 1}', '{"text": "fine", "label": "b"}'])
    assert read_error(path, skip_label_indexing=True) == (
        f"{path}:2: label 'b' is not an integer, but `skip_label_indexing` is true; "
        "use integer labels or set it to false"
    )


def test_empty_text_is_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "empty.jsonl"
    write_lines(
        path,
        [
            '{"text": "first", "label": "a"}',
            '{"text": "  ", "label": "a"}',
            "",
            '{"text": "last", "label": "b"}',
        ],
    )
    with caplog.at_level(logging.WARNING):
        instances = list(make_reader().read(path))
    assert texts_of(instances) == ["first", "last"]
    warnings = [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ]
    assert warnings == [
        f"{path}: skipped 1 line(s) with an empty 'text' field"
    ]  # one warning per file


def test_evaluating_on_a_label_never_seen_in_training_names_file_and_line(
    trained_classifier, tmp_path
):
    path = tmp_path / "new_label.jsonl"
    write_lines(
        path,
        [
            '{"text": "a dose of luminox was added to the liver culture .", "label": "inhibitor"}',
            '{"text": "a dose of luminox was added to the heart culture .", "label": "modulator"}',
        ],
    )
    process = allennlp(
        ["evaluate", str(trained_classifier / "model.tar.gz"), str(path)], check=False
    )
    assert process.returncode != 0
    assert (
        f"{path}:2: label 'modulator' was never seen in training (known labels: "
        "['activator', 'inhibitor']); evaluate on data with the training label set, or retrain "
        "with this label"
    ) in process.stderr


@pytest.mark.parametrize("sample", [None, 2], ids=["whole_file", "sampled"])
def test_a_line_without_a_label_in_a_labelled_file_names_the_line(tmp_path, sample):
    path = tmp_path / "train.jsonl"
    write_lines(
        path,
        [
            '{"text": "first", "label": "a"}',
            '{"text": "second", "label": "b"}',
            '{"text": "third"}',
        ],
    )
    assert read_error(path, sample=sample, sample_seed=0) == (
        f"{path}:3: no 'label' field, but line 1 has one; give every line of a "
        "labelled file a label (only data to predict on has none)"
    )
    path.write_text(path.read_text().replace('"third"}', '"third", "label": null}'))
    assert read_error(path, sample=sample, sample_seed=0).startswith(
        f"{path}:3: 'label' is null, but line 1 has one;"
    )


def test_a_label_after_unlabelled_lines_names_the_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    write_lines(path, ['{"text": "first"}', '{"text": "second", "label": "b"}'])
    assert read_error(path) == (
        f"{path}:2: has a 'label' field, but line 1 has none; give every line a "
        "label, or none (data to predict on)"
    )


def test_a_file_without_labels_is_data_to_predict_on(tmp_path):
    path = tmp_path / "unlabelled.jsonl"
    write_lines(path, ['{"text": "first"}', '{"text": "second", "label": null}'])
    instances = list(make_reader().read(path))
    assert texts_of(instances) == ["first", "second"]
    assert all("label" not in instance.fields for instance in instances)


def test_a_labelled_reader_refuses_a_file_without_labels_and_predicts_without_one(tmp_path):
    path = tmp_path / "unlabelled.jsonl"
    write_lines(path, ["", '{"text": "first"}', '{"text": "second"}'])
    assert read_error(path, labelled=True) == (
        f"{path}:2: no 'label' field; training and evaluation data need a label on every line "
        "(only data to predict on, which `allennlp predict` reads, has none)"
    )
    assert "label" not in make_reader(labelled=True).text_to_instance("to predict").fields
    write_lines(path, ['{"text": "first", "label": null}'])
    assert read_error(path, labelled=True).startswith(f"{path}:1: 'label' is null; training")


@pytest.mark.parametrize(
    "label, message",
    [
        ('["a", "b"]', 'label ["a", "b"] is an array'),
        ('{"name": "a"}', 'label {"name": "a"} is an object'),
        ("0.5", "label 0.5 is a decimal number"),
    ],
)
def test_a_label_that_is_not_a_string_or_an_integer_names_the_line(tmp_path, label, message):
    path = tmp_path / "labels.jsonl"
    write_lines(path, ['{"text": "fine", "label": "a"}', f'{{"text": "fine", "label": {label}}}'])
    assert read_error(path) == (
        f"{path}:2: {message}; a label must be a string or an integer (one class "
        "per line: multi-label data is not supported)"
    )


def test_integer_and_boolean_labels_are_classes(tmp_path):
    path = tmp_path / "labels.jsonl"
    write_lines(path, ['{"text": "one", "label": 1}', '{"text": "two", "label": true}'])
    assert [instance["label"].label for instance in make_reader().read(path)] == ["1", "True"]


@pytest.mark.parametrize(
    "lines", [[], ["", "  "], ['{"text": " ", "label": "a"}']], ids=["empty", "blank", "empty_text"]
)
def test_a_file_without_examples_is_named(tmp_path, lines):
    path = tmp_path / "train.jsonl"
    write_lines(path, lines)
    assert read_error(path) == (
        f"{path}: no examples: no line has a non-empty 'text'; give a jsonl file "
        'with one {"text": ..., "label": ...} object per line'
    )


def test_a_directory_is_named(tmp_path):
    assert (
        read_error(tmp_path)
        == f"{tmp_path}: is a directory; give the files in it, e.g. {tmp_path}/*.txt"
    )
