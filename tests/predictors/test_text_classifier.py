"""`dapt_text_classifier`: the default predictor of `basic_classifier_with_f1`."""

import io
import json
import os
import shutil
import stat
import sys

import pytest
from allennlp.commands.evaluate import evaluate_from_archive
from allennlp.commands.predict import _PredictManager
from allennlp.common.checks import ConfigurationError
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.models.archival import load_archive
from allennlp.predictors import Predictor

from dapt_plugin.data.text_files import DataError
from dapt_plugin.predictors.text_classifier import DaptTextClassifierPredictor
from tests.conftest import TASK, allennlp, read_jsonl

LABELS = {"inhibitor", "activator"}


@pytest.fixture(scope="module")
def predictor(trained_classifier):
    return Predictor.from_archive(load_archive(str(trained_classifier / "model.tar.gz")))


def test_is_the_classifiers_default_and_returns_label_and_probability_per_label(predictor):
    assert isinstance(predictor, DaptTextClassifierPredictor)
    # a line of the training data, with its gold label and a field of the user's own
    line = {**read_jsonl(TASK / "dev.jsonl")[0], "source": "pubmed", "id": "dev-0"}
    prediction = predictor.predict_json(line)
    assert list(prediction) == ["id", "label", "probabilities"] and prediction["id"] == "dev-0"
    assert set(prediction["probabilities"]) == LABELS
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert prediction["label"] == max(
        prediction["probabilities"], key=prediction["probabilities"].get
    )
    assert {"id": "dev-0", **predictor.predict(line["text"])} == prediction
    # in a batch too, each line's own id, and none for a line without one
    batch = predictor.predict_batch_json([line, {"text": line["text"]}, {"id": 7, "text": "x"}])
    assert [output.get("id") for output in batch] == ["dev-0", None, 7]


def test_predictions_score_as_evaluation_does_and_do_not_depend_on_the_batch(
    predictor, trained_classifier
):
    lines = read_jsonl(TASK / "test.jsonl")
    batched = predictor.predict_batch_json(lines)
    for line, prediction in zip(lines[:5], batched):
        single = predictor.predict_json(line)
        assert single["label"] == prediction["label"]
        assert single["probabilities"] == pytest.approx(prediction["probabilities"], abs=1e-6)
    accuracy = sum(p["label"] == line["label"] for p, line in zip(batched, lines)) / len(lines)
    metrics = evaluate_from_archive(
        str(trained_classifier / "model.tar.gz"), str(TASK / "test.jsonl")
    )
    assert accuracy == pytest.approx(metrics["accuracy"])


def test_reads_the_text_where_the_readers_text_key_says(predictor, trained_classifier):
    archive = load_archive(
        str(trained_classifier / "model.tar.gz"),
        overrides={"validation_dataset_reader.text_key": "sentence"},
    )
    line = read_jsonl(TASK / "dev.jsonl")[0]
    assert Predictor.from_archive(archive).predict_json(
        {"sentence": line["text"]}
    ) == predictor.predict_json(line)


def test_a_line_without_text_is_named(predictor):
    with pytest.raises(DataError) as error:
        predictor.predict_json({"sentence": "the compound inhibits it ."})
    assert str(error.value) == (
        "<input>: no 'text' string in {'sentence': 'the compound inhibits it .'}; "
        'each line to predict on needs {"text": "..."}'
    )


def test_a_model_without_label_names_is_refused(predictor):
    with pytest.raises(ConfigurationError) as error:
        DaptTextClassifierPredictor(Model(Vocabulary()), predictor._dataset_reader)
    assert str(error.value) == (
        "the dapt_text_classifier predictor needs a basic_classifier_with_f1 model; got "
        "Model; pass `--predictor` for this model's own predictor"
    )


def test_allennlp_predict_reads_the_task_jsonl_with_no_other_flag(trained_classifier, predictor):
    process = allennlp(
        ["predict", str(trained_classifier / "model.tar.gz"), str(TASK / "test.jsonl")]
    )
    predictions = [
        json.loads(line.split("prediction:", 1)[1])
        for line in process.stdout.splitlines()
        if line.startswith("prediction:")
    ]
    lines = read_jsonl(TASK / "test.jsonl")
    assert len(predictions) == len(lines)
    for line, prediction in zip(lines, predictions):
        expected = predictor.predict_json(line)
        assert prediction["label"] == expected["label"]
        assert prediction["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)


@pytest.mark.parametrize(
    "line, message",
    [
        (
            b"{bad",
            "2: not valid JSON (Expecting property name enclosed in double quotes: column 2)",
        ),
        (b'{"label": "x"}', "2: no 'text' string in {'label': 'x'}; each line to predict on"),
        (b'{"text": "\xff"}', "2: not valid UTF-8 (byte 10 of the line); re-encode the file"),
    ],
)
def test_allennlp_predict_names_the_file_and_line_of_a_bad_input_line(
    trained_classifier, tmp_path, line, message
):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n' + line + b"\n")
    output = tmp_path / "predictions.jsonl"
    arguments = [str(path), "--silent", "--output-file", str(output)]
    process = allennlp(
        ["predict", str(trained_classifier / "model.tar.gz"), *arguments], check=False
    )
    assert process.returncode == 1
    assert f"Error: {path}:{message}" in process.stderr


def test_allennlp_predict_refuses_an_output_file_that_is_its_input_or_its_model(
    trained_classifier, tmp_path
):
    path = tmp_path / "test.jsonl"
    path.write_text((TASK / "test.jsonl").read_text())
    archive = tmp_path / "model.tar.gz"
    shutil.copy(trained_classifier / "model.tar.gz", archive)
    for output, what in [
        (path, f"the input file {path}"),
        (archive, f"the model archive {archive}"),
    ]:
        process = allennlp(
            ["predict", str(archive), str(path), "--output-file", str(output)], check=False
        )
        assert process.returncode == 1
        assert (
            f"Error: --output-file {output} is {what}, which writing it would replace; give "
            "another output file"
        ) in process.stderr
    assert path.read_text() == (TASK / "test.jsonl").read_text()
    assert archive.read_bytes() == (trained_classifier / "model.tar.gz").read_bytes()


def predict_manager(predictor, input_file, output_file):
    return _PredictManager(predictor, str(input_file), output_file, 2, False, False)


def test_allennlp_predict_writes_its_output_whole_or_not_at_all(predictor, tmp_path):
    good = [{"text": "fine"}, {"text": "also fine"}, {"text": "and this"}]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in good) + "{bad\n")
    output = tmp_path / "out" / "predictions.jsonl"
    with pytest.raises(DataError, match="test.jsonl:4: not valid JSON"):
        predict_manager(predictor, path, str(output)).run()
    # the predictions of the first lines were written (batches of 2), but not under the name
    assert list((tmp_path / "out").iterdir()) == []
    path.write_text("".join(json.dumps(line) + "\n" for line in good))
    predict_manager(predictor, path, str(output)).run()
    assert [line["label"] for line in read_jsonl(output)] == [
        predictor.predict_json(line)["label"] for line in good
    ]
    assert os.listdir(tmp_path / "out") == ["predictions.jsonl"]


def test_allennlp_predict_reads_standard_input_as_a_file_and_names_a_lone_surrogate(
    predictor, tmp_path, monkeypatch
):
    first = b'\xef\xbb\xbf{"text": "fine"}\r\n'  # a BOM and CRLF, as a file's
    half_a_pair = b'{"text": "half \\ud800 a pair"}\n'
    output = tmp_path / "predictions.jsonl"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(first + half_a_pair)))
    with pytest.raises(DataError) as error:
        predict_manager(predictor, "-", str(output)).run()
    assert str(error.value) == (
        "standard input:2: 'text' holds a lone surrogate escape (\\ud800, character 6), half of "
        "a UTF-16 pair and not a character; remove it or write the whole pair"
    )
    assert not output.exists()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(first)))
    predict_manager(predictor, "-", str(output)).run()
    assert read_jsonl(output) == [
        {
            **predictor.predict_json({"text": "fine"}),
            "probabilities": pytest.approx(
                predictor.predict_json({"text": "fine"})["probabilities"]
            ),
        }
    ]


def test_allennlp_predict_refuses_an_output_that_is_the_file_of_standard_input(
    predictor, tmp_path, monkeypatch
):
    path = tmp_path / "test.jsonl"
    path.write_text((TASK / "test.jsonl").read_text())
    with open(path) as redirected:  # `allennlp predict ... - --output-file test.jsonl < test.jsonl`
        monkeypatch.setattr(sys, "stdin", redirected)
        with pytest.raises(ConfigurationError) as error:
            predict_manager(predictor, "-", str(path))
    assert error.value.message == (
        f"--output-file {path} is the file of standard input, {path}, which writing it would "
        "replace; give another output file"
    )


def test_allennlp_predict_refuses_a_missing_input_or_an_output_it_cannot_write(predictor, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="input file .*missing.jsonl not found"):
        predict_manager(predictor, tmp_path / "missing.jsonl", str(tmp_path / "out.jsonl"))
    for output, message in [
        (tmp_path, "is a directory; give a file"),
        (tmp_path / "notes.txt" / "out.jsonl", "notes.txt is a file, not a directory"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            predict_manager(predictor, TASK / "test.jsonl", str(output))
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_allennlp_predict_refuses_a_batch_size_below_1_and_a_model_without_a_predictor(
    predictor, tiny_model, tmp_path, monkeypatch
):
    from dapt_plugin.commands.archive_untrained import archive_untrained
    from tests.conftest import CONFIGS, mlm_env

    with pytest.raises(ConfigurationError, match="--batch-size must be 1 or more; got 0"):
        _PredictManager(predictor, str(TASK / "test.jsonl"), None, 0, False, False)
    for name, value in mlm_env(tiny_model).items():
        monkeypatch.setenv(name, value)
    masked_lm = archive_untrained(str(CONFIGS / "dapt.jsonnet"), str(tmp_path / "base"))
    base = Predictor.from_archive(load_archive(masked_lm))
    with pytest.raises(ConfigurationError, match=r"model \(DaptMaskedLm\) has no predictor"):
        _PredictManager(base, str(TASK / "test.jsonl"), None, 1, False, False)


def test_allennlp_predict_writes_a_pipe_as_it_comes_and_a_symbolic_links_target(
    predictor, tmp_path
):
    import threading

    expected = len(read_jsonl(TASK / "test.jsonl"))
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(
        target=lambda: received.extend(open(pipe).read().splitlines()), daemon=True
    )
    reader.start()
    predict_manager(predictor, TASK / "test.jsonl", str(pipe)).run()
    reader.join(timeout=60)
    assert len(received) == expected and stat.S_ISFIFO(os.lstat(pipe).st_mode)
    target, link = tmp_path / "predictions.jsonl", tmp_path / "latest.jsonl"
    target.write_text("an earlier run's\n")
    link.symlink_to(target)
    predict_manager(predictor, TASK / "test.jsonl", str(link)).run()
    assert link.is_symlink() and len(read_jsonl(target)) == expected


def test_allennlp_predict_with_the_dataset_reader_leaves_its_input_to_the_reader(predictor):
    # the reader reads globs and lists of files, which are no one path
    _PredictManager(predictor, str(TASK / "*.jsonl"), None, 1, False, True)
