"""
What `allennlp adapt` shows of a running phase: the `training_curves` progress lines of its log
files, in-process on fake logs written as AllenNLP writes them.
"""

import logging
import time

from dapt_plugin.common.console import LOG_FORMAT
from dapt_plugin.experiment.progress import PhaseProgress
from dapt_plugin.training.callbacks import training_curves

STEP_10 = (
    "step 10/40 (epoch 1/2) | loss 6.5123 | lr 4.98e-04 | grad norm 1.23 | 52,310 tokens/s | "
    "0:00:10 elapsed, 0:00:30 left"
)
STEP_20 = "step 20/40 (epoch 1/2) | loss 6.1000 | lr 4.90e-04 | 0:00:20 elapsed, 0:00:20 left"
STEP_30 = "step 30 (epoch 2/2) | loss 5.9000 | lr 4.80e-04 | 0:00:30 elapsed"


def _line(logger_name: str, message: str, level: int = logging.INFO, prefix: str = "") -> str:
    """A line of `out.log` as AllenNLP's file handler writes it."""
    record = logging.LogRecord(logger_name, level, __file__, 1, message, None, None)
    return prefix + logging.Formatter(LOG_FORMAT).format(record) + "\n"


CURVES = training_curves.logger.name


def test_the_progress_of_a_phase_is_exactly_its_progress_lines_once_each_and_complete(
    tmp_path, caplog
):
    log = tmp_path / "out.log"
    # what a run resumed with --recover finds in its out.log: not shown again
    log.write_text(_line(CURVES, "step 5/40 (epoch 1/2) | loss 7.0000 | 0:00:05 elapsed"))
    progress = PhaseProgress(tmp_path, "dapt")
    with open(log, "a") as handle:
        handle.write(_line("allennlp.common.params", "trainer.num_epochs = 2"))
        handle.write(_line(CURVES, STEP_10))
        handle.write(_line("allennlp.training.gradient_descent_trainer", "step 3 of something"))
        handle.write(_line(CURVES, "Training curves: tensorboard --logdir log"))
        handle.write(_line(CURVES, "step 15/40 (epoch 1/2) is not ok", level=logging.WARNING))
        handle.write(_line(CURVES, STEP_20)[:40])  # a line being written
    with caplog.at_level(logging.INFO, logger="dapt_plugin.experiment.progress"):
        assert progress.poll() == [STEP_10]
        with open(log, "a") as handle:
            handle.write(_line(CURVES, STEP_20)[40:])
        assert progress.poll() == [STEP_20]
        assert progress.poll() == []
    assert progress.lines == [STEP_10, STEP_20]
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("INFO", f"dapt: {STEP_10}"),
        ("WARNING", "dapt: step 15/40 (epoch 1/2) is not ok"),  # a warning of the plugin's
        ("INFO", f"dapt: {STEP_20}"),
    ]


def test_the_plugins_warnings_are_shown_once_per_experiment_and_no_others(tmp_path, caplog):
    head = "roberta-base has no trained masked-LM head (6 of its tensors are missing ...)"
    shown = set()
    for phase in ("dapt", "tapt"):
        directory = tmp_path / phase
        directory.mkdir()
        progress = PhaseProgress(directory, phase, shown=shown)
        (directory / "out.log").write_text(
            _line("dapt_plugin.models.dapt_masked_lm", head, level=logging.WARNING)
            + _line("allennlp.training.util", "patience None", level=logging.WARNING)
            + _line("dapt_plugin.data.documents", f"{phase}.txt: skipped", level=logging.WARNING)
            + _line("dapt_plugin.models.dapt_masked_lm", "loaded", level=logging.INFO)
        )
        with caplog.at_level(logging.INFO, logger="dapt_plugin.experiment.progress"):
            assert progress.poll() == []
    assert [record.getMessage() for record in caplog.records] == [
        f"dapt: {head}",
        "dapt: dapt.txt: skipped",
        "tapt: tapt.txt: skipped",  # the same warning is shown once, in the first phase
    ]


def test_the_follower_shows_lines_while_the_run_goes_on_and_what_came_last_when_it_ends(
    tmp_path,
):
    worker_log = tmp_path / "out_worker0.log"  # a distributed run's primary logs here
    with PhaseProgress(tmp_path, "classifier/dapt/seed_0", interval=0.01) as progress:
        (tmp_path / "out.log").write_text(_line("allennlp.commands.train", "starting workers"))
        worker_log.write_text(_line(CURVES, STEP_10, prefix="0 | "))
        deadline = time.monotonic() + 5
        while not progress.lines and time.monotonic() < deadline:
            time.sleep(0.01)
        assert progress.lines == [STEP_10]  # read while the run goes on
        with open(worker_log, "a") as handle:
            handle.write(_line(CURVES, STEP_30, prefix="0 | "))
    assert progress.lines == [STEP_10, STEP_30]  # the last line, read when the run ended
