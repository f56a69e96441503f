import json
import re
import struct
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
from allennlp.commands.train import train_model_from_file
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.record_writer import masked_crc32c

from dapt_plugin.testing.cli import fresh_logging
from dapt_plugin.training.callbacks.training_curves import TrainingCurves
from tests.conftest import CONFIGS, classifier_env, mlm_env

# the curves of every step, of any model whose batches have token ids
STEP_TAGS = (
    "train/batch_loss",
    "train/learning_rate",
    "train/grad_norm",
    "train/tokens_per_second",
)
STEP_LINE = re.compile(
    r"training_curves - step (\d+)/(\d+) \(epoch (\d+)/(\d+)\) \| loss ([\d.]+) \| lr ([\d.e+-]+) "
    r"\| grad norm [\d.e+-]+ \| [\d,]+ tokens/s \| [\d:]+ elapsed, [\d:]+ left"
)


def read_scalars(directory: Path) -> Dict[str, List[Tuple[int, float]]]:
    """
    The scalars of the TensorBoard event files in `directory`, by tag, as (step, value) in file
    order. A record is a uint64 length, its masked CRC-32C, the `Event` protobuf and its CRC.
    """
    scalars: Dict[str, List[Tuple[int, float]]] = defaultdict(list)
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            header = data[offset : offset + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[offset + 8 : offset + 12])[0] == masked_crc32c(header)
            payload = data[offset + 12 : offset + 12 + length]
            assert struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])[
                0
            ] == masked_crc32c(payload)
            offset += 16 + length
            event = Event.FromString(payload)
            for value in event.summary.value:
                scalars[value.tag].append((event.step, value.simple_value))
    return scalars


@pytest.fixture
def restore_logging():
    """`allennlp train` in this process replaces the root logger's handlers with its own."""
    with fresh_logging():
        yield


def test_classifier_run_writes_curves_of_every_step_and_validation_of_every_epoch(
    tiny_model, tmp_path, monkeypatch, restore_logging
):
    for name, value in classifier_env(tiny_model, LOG_EVERY="2", LR_SCHEDULE="true").items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    train_model_from_file(str(CONFIGS / "classifier.jsonnet"), str(run))  # 2 epochs of 5 steps

    train = read_scalars(run / "log" / "train")
    for tag in (*STEP_TAGS, "train/epoch"):
        assert [step for step, _ in train[tag]] == list(range(1, 11)), tag
    assert all(
        value > 0 for _, value in train["train/grad_norm"] + train["train/tokens_per_second"]
    )
    rates = [value for _, value in train["train/learning_rate"]]
    assert rates[-1] < rates[1] and rates[1:] == sorted(
        rates[1:], reverse=True
    )  # warm-up, then decay
    assert [value for _, value in train["train/epoch"]] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0]
    )

    # validation at the step that ends each epoch, with the epoch's metrics
    validation = read_scalars(run / "log" / "validation")
    assert [step for step, _ in validation["validation/macro_f1"]] == [5, 10]
    for epoch, (_, value) in enumerate(validation["validation/macro_f1"]):
        expected = json.loads((run / f"metrics_epoch_{epoch}.json").read_text())[
            "validation_macro_f1"
        ]
        assert value == pytest.approx(expected, abs=1e-6)

    # every LOG_EVERY steps a line in out.log, its loss the mean batch loss since the last line
    lines = [
        STEP_LINE.search(line)
        for line in (run / "out.log").read_text().splitlines()
        if "training_curves - step" in line
    ]
    assert all(lines), lines
    assert [(int(m[1]), int(m[2]), int(m[3])) for m in lines] == [
        (2, 10, 1),
        (4, 10, 1),
        (6, 10, 2),
        (8, 10, 2),
        (10, 10, 2),
    ]
    losses = dict(train["train/batch_loss"])
    for match in lines:
        step = int(match[1])
        assert float(match[5]) == pytest.approx((losses[step - 1] + losses[step]) / 2, abs=1e-4)
        assert float(match[6]) == pytest.approx(dict(train["train/learning_rate"])[step], rel=1e-2)
    assert f"Training curves: tensorboard --logdir {run / 'log'}" in (run / "out.log").read_text()

    # `--recover` (here, of the finished run, within the same second) adds event files, and
    # leaves the first run's whole
    train_model_from_file(str(CONFIGS / "classifier.jsonnet"), str(run), recover=True)
    assert len(list((run / "log" / "train").glob("events.out.tfevents.*"))) == 2
    assert read_scalars(run / "log" / "train")["train/batch_loss"] == train["train/batch_loss"]


def test_masked_lm_run_writes_curves_with_tokens_per_second(
    tiny_model, tmp_path, monkeypatch, restore_logging
):
    for name, value in mlm_env(
        tiny_model, NUM_STEPS="6", NUM_CHECKPOINTS="2", LOG_EVERY="3"
    ).items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    train_model_from_file(str(CONFIGS / "dapt.jsonnet"), str(run))

    train = read_scalars(run / "log" / "train")
    for tag in STEP_TAGS:
        assert [step for step, _ in train[tag]] == [1, 2, 3, 4, 5, 6], tag
    steps = [int(m[1]) for m in STEP_LINE.finditer((run / "out.log").read_text())]
    assert steps == [3, 6]


def test_log_every_must_be_positive(tiny_model, monkeypatch):
    for name, value in classifier_env(tiny_model, LOG_EVERY="0").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(
        ConfigurationError, match="LOG_EVERY must be an integer of at least 1; got 0"
    ):
        Params.from_file(str(CONFIGS / "classifier.jsonnet"))


def test_only_the_primary_worker_writes_event_files(tmp_path):
    """Workers on one machine would open event files of the same name (time to the second, host)."""

    class Trainer:
        model = torch.nn.Linear(2, 2)
        _total_batches_completed = 0

    worker = TrainingCurves(str(tmp_path / "worker"))
    worker.on_start(Trainer(), is_primary=False)
    worker.on_end(Trainer(), is_primary=False)
    assert not (tmp_path / "worker" / "log").exists()
    primary = TrainingCurves(str(tmp_path / "primary"))
    primary.on_start(Trainer(), is_primary=True)
    primary.on_end(Trainer(), is_primary=True)
    assert list((tmp_path / "primary" / "log" / "train").glob("events.out.tfevents.*"))
