import logging
import sys
import warnings

import pytest
import transformers
from allennlp.commands.train import train_model_from_file

from dapt_plugin.common.console import ConsoleFilter, logs_to_file, with_option_names
from dapt_plugin.testing.cli import fresh_logging
from tests.conftest import CONFIGS, classifier_env


def test_console_of_a_classifier_run_shows_progress_and_results_and_the_log_file_keeps_the_detail(
    tiny_model, tmp_path, monkeypatch, capsys
):
    for name, value in classifier_env(tiny_model, LOG_EVERY="5").items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught, fresh_logging():
        warnings.simplefilter("always")
        train_model_from_file(str(CONFIGS / "classifier.jsonnet"), str(run))
    console = capsys.readouterr()
    console_text = console.out + console.err
    log = (run / "out.log").read_text()

    # the detail: in out.log, not on the console
    for detail in (
        "allennlp.common.params - ",
        "Batch inputs",
        "tensor([",
        "The following parameters are Tunable",
        "allennlp.nn.initializers - ",
    ):
        assert detail in log, detail
        assert detail not in console_text, detail
    # what a user reads: progress, losses, metrics, where the outputs are
    for shown in (
        "Epoch 0/1",
        "training_curves - step 5/10 (epoch 1/2) | loss",
        "validation_macro_f1",
        f"Training curves: tensorboard --logdir {run / 'log'}",
        f"Model archive: {run / 'model.tar.gz'}",
    ):
        assert shown in console_text, shown
    assert console_text.count("\n") < 80, console_text  # 370 before (progress bars redraw with \r)
    # warnings that the user cannot act on: neither on the console nor in the log
    assert not [w for w in caught if "autocast" in str(w.message)], [str(w.message) for w in caught]
    for warning in ("does not match any parameter name", "FutureWarning"):
        assert warning not in console_text + log, warning


@pytest.mark.parametrize(
    "name, function, message, on_console",
    [
        ("allennlp.common.params", "pop", "trainer.num_epochs = 2", False),
        (
            "allennlp.training.callbacks.console_logger",
            "_log_fields",
            "batch_input/label (Shape: 8)",
            False,
        ),
        (
            "allennlp.common.util",
            "log_frozen_and_tunable_parameter_names",
            "_classification_layer.bias",
            False,
        ),
        ("faiss.loader", "<module>", "Loading faiss with AVX2 support.", False),
        ("allennlp.common.util", "dump_metrics", "Metrics: {...}", True),
        ("allennlp.training.callbacks.console_logger", "on_epoch", "loss | 0.677 | 0.721", True),
        ("dapt_plugin.experiment.runner", "_run", "phase 1 of 3 to run: dapt", True),
    ],
)
def test_console_filter_leaves_detail_to_the_log_files(name, function, message, on_console):
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None, func=function)
    assert ConsoleFilter().filter(record) is on_console
    record.levelno = logging.WARNING  # a warning always reaches the console
    assert ConsoleFilter().filter(record)


def test_unused_pooler_weights_are_not_reported_but_other_new_weights_are(tiny_model):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    modeling_logger = logging.getLogger("transformers.modeling_utils")
    modeling_logger.addHandler(handler)
    try:
        transformers.AutoModel.from_pretrained(
            str(tiny_model)
        )  # adds a pooler, unused by the classifier
        assert not [r for r in records if "newly initialized" in r.getMessage()]
        transformers.AutoModelForSequenceClassification.from_pretrained(
            str(tiny_model)
        )  # a new head
        assert [r for r in records if "newly initialized: ['classifier" in r.getMessage()]
    finally:
        modeling_logger.removeHandler(handler)


def test_logs_to_file_takes_a_block_s_output_off_the_console(tmp_path, capsys):
    console = logging.StreamHandler(sys.stderr)
    logger = logging.getLogger("tests.console")
    logger.setLevel(logging.INFO)
    logging.getLogger().addHandler(console)
    try:
        with logs_to_file(tmp_path / "out.log"):
            logger.info("evaluating")
            sys.stderr.write("progress 100%\n")
            logger.warning("a label never seen in training")
        logger.info("after the block")
    finally:
        logging.getLogger().removeHandler(console)
    text = (tmp_path / "out.log").read_text()
    assert "evaluating" in text and "progress 100%" in text and "a label never seen" in text
    assert "after the block" not in text
    err = capsys.readouterr().err
    assert "evaluating" not in err and "progress" not in err
    assert "a label never seen in training" in err and "after the block" in err


def test_a_back_end_error_names_the_commands_options():
    message = "the random sample of 9 units exceeds `pool_size` (4); raise `pool_size` or `k`"
    assert with_option_names(message, ["k", "pool_size", "seed"]) == (
        "the random sample of 9 units exceeds `--pool-size` (4); raise `--pool-size` or `--k`"
    )
    assert with_option_names("`size` and size", ["size"]) == "`--size` and size"


def test_a_checkpoints_unused_pooler_weights_are_not_reported_but_other_unused_weights_are():
    from dapt_plugin.compat import _UnusedPoolerFilter

    def unused(names):
        message = (
            "Some weights of the model checkpoint at m were not used when initializing "
            f"BertForMaskedLM: {names}\n- This IS expected if you are initializing ..."
        )
        record = logging.LogRecord(
            "transformers.modeling_utils", 30, __file__, 1, message, None, None
        )
        return _UnusedPoolerFilter().filter(record)

    assert not unused(["bert.pooler.dense.bias", "bert.pooler.dense.weight"])
    assert unused(["bert.pooler.dense.bias", "cls.seq_relationship.weight"])
