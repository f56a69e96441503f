import copy
import logging
import math
import os
from typing import Any, Dict, List, Optional

import torch
from allennlp.common import util as common_util
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import is_distributed
from allennlp.training import util as training_util
from allennlp.training.callbacks.callback import TrainerCallback
from allennlp.training.metrics import Metric

from dapt_plugin.data.text_files import expand_paths
from dapt_plugin.data.token_cache import file_sha256

logger = logging.getLogger(__name__)


def _metric_objects(model: torch.nn.Module) -> Dict[str, Metric]:
    """Every AllenNLP `Metric` held by `model` or its submodules, by a stable name."""
    found = {}
    for module_name, module in model.named_modules():
        for attribute, value in vars(module).items():
            if isinstance(value, Metric):
                found[f"{module_name}.{attribute}" if module_name else attribute] = value
    return found


def _plain(value: Any) -> Any:
    """A copy of a metric's attribute that `torch.load(weights_only=True)` can read back."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return copy.copy(value)


@TrainerCallback.register("metrics_checkpoint")
class MetricsCheckpoint(TrainerCallback):
    """
    Makes the metrics of a run resumed with `allennlp train --recover` (`metrics.json`,
    `metrics_epoch_<N>.json`, and what callbacks such as `export_pretrained` record) those of
    the uninterrupted run, apart from timings and memory figures. AllenNLP keeps an epoch's
    running training loss and the model's metric accumulators in memory only, so without this
    an epoch resumed from a mid-epoch checkpoint reports its loss over all of its batches while
    summing only those after the resume, and a run resumed after its last checkpoint reports
    nothing but `best_epoch`.

    In each checkpoint it saves the training loss summed over the current epoch's batches, the
    state of every AllenNLP `Metric` of the model (accuracy, F1, masked-LM loss counts) and the
    metrics of the last completed epoch; on recovery it restores them, corrects the training
    loss of the resumed epoch, and fills in the final metrics when no epoch was left to train.
    A run that had stopped early (its patience ran out) ends where it stopped: AllenNLP checks
    the patience only after an epoch it trains, and went on training after such a recovery.
    Put it before callbacks that read the final metrics.

    It also keeps the SHA-256 of every file the run trains and validates on, as they were when
    it started, and refuses a recovery once one has changed (written over, or a glob or list
    that names other files): the resumed run would go on with other data than its earlier
    epochs had, end with weights no uninterrupted run gives, and record the new files' hashes
    only. They are compared by content, so a run started with relative paths still recovers
    where it was moved to. A file is hashed once per process; a masked-LM corpus's hash is the
    one its tokenization cache's key already needs.

    In a distributed run the checkpoint holds the primary worker's state only, which only the
    primary restores: the training metrics of an epoch resumed mid-way then count the other
    workers' batches from the resume on only, and its `training_loss` is AllenNLP's (the sum
    after the resume over all the epoch's batches). They are exact in single-process runs.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.

    Registered as a `TrainerCallback` with name "metrics_checkpoint".
    """

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self._model_metrics: Dict[str, Metric] = {}
        self._loss_sum = 0.0
        self._reg_loss_sum: Optional[float] = None
        self._last_epoch_metrics: Optional[Dict[str, Any]] = None
        self._restored: Optional[Dict[str, Any]] = None
        self._resumed_mid_epoch = False
        self._replayed_epoch_metrics: Optional[Dict[str, float]] = None
        self._epochs_trained = 0
        # `[path, sha256]` of each data file when the run started, in the order its data paths
        # name them
        self._input_files: Optional[List[List[str]]] = None

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self._model_metrics = _metric_objects(trainer.model)
        files = [
            [path, file_sha256(path)]
            for loader in (trainer.data_loader, trainer._validation_data_loader)
            for data_path in [getattr(loader, "data_path", None)]
            if data_path
            for path in expand_paths(data_path)
        ]
        started = (self._restored or {}).get("input_files")  # None: an earlier version's
        if started is not None and [h for _, h in started] != [h for _, h in files]:
            raise ConfigurationError(
                f"--recover: {_differences(started, files)} since the run in "
                f"{self.serialization_dir} started, where its earlier epochs read them as they "
                "were; put the files back as they were, or start a new run in a new directory"
            )
        self._input_files = files
        if self._restored is None:
            return
        if (
            trainer._start_after_batches_in_epoch_completed == 0
            and trainer._metric_tracker.should_stop_early()
        ):
            # the run had stopped early (its patience ran out) and was killed after its last
            # checkpoint: AllenNLP checks the patience only after an epoch it trains, and would
            # train on from the next one
            logger.info(
                "The run had run out of patience after epoch %d: recovering its end, with no "
                "more epochs",
                trainer._start_after_epochs_completed - 1,
            )
            trainer._num_epochs = trainer._start_after_epochs_completed
        # The checkpoint holds the primary worker's counters; on the other workers of a distributed
        # run, restoring them would count the primary's batches once per worker.
        if is_primary:
            device = next(trainer.model.parameters()).device
            for name, state in self._restored["model_metrics"].items():
                if name in self._model_metrics:
                    vars(self._model_metrics[name]).update(
                        {
                            k: v.to(device) if isinstance(v, torch.Tensor) else v
                            for k, v in state.items()
                        }
                    )
        batches_done = trainer._start_after_batches_in_epoch_completed
        self._resumed_mid_epoch = batches_done > 0
        try:
            batches_per_epoch = math.ceil(
                len(trainer.data_loader) / trainer._num_gradient_accumulation_steps
            )
        except TypeError:  # a data loader of unknown length
            batches_per_epoch = None
        if self._resumed_mid_epoch and batches_done == batches_per_epoch:
            # The checkpoint came after the epoch's last batch, before its validation: AllenNLP
            # reports no training metrics for an epoch it only replays, and would validate with
            # the training accumulators still full. Take the metrics now, which resets them.
            self._replayed_epoch_metrics = training_util.get_metrics(
                trainer.model,
                self._loss_sum,
                self._reg_loss_sum,
                None,
                None,
                batches_done,
                reset=True,
            )

    def on_batch(
        self,
        trainer,
        batch_inputs,
        batch_outputs,
        batch_metrics,
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if not is_training:
            return
        self._loss_sum += batch_metrics["batch_loss"]
        if "batch_reg_loss" in batch_metrics:
            self._reg_loss_sum = (self._reg_loss_sum or 0.0) + batch_metrics["batch_reg_loss"]

    def on_epoch(
        self, trainer, metrics: Dict[str, Any], epoch: int, is_primary: bool = True, **kwargs
    ) -> None:
        if self._resumed_mid_epoch and self._epochs_trained == 0 and not is_distributed():
            if self._replayed_epoch_metrics is not None:
                metrics.update(
                    {f"training_{k}": v for k, v in self._replayed_epoch_metrics.items()}
                )
            else:
                num_batches = trainer._batches_in_epoch_completed
                metrics["training_loss"] = self._loss_sum / num_batches
                if self._reg_loss_sum is not None:
                    metrics["training_reg_loss"] = self._reg_loss_sum / num_batches
            if is_primary and self.serialization_dir:
                # AllenNLP wrote this file before the callbacks ran (`dump_metrics`, which the
                # plugin makes atomic)
                common_util.dump_metrics(
                    os.path.join(self.serialization_dir, f"metrics_epoch_{epoch}.json"), metrics
                )
        self._epochs_trained += 1
        self._loss_sum = 0.0
        self._reg_loss_sum = None
        self._last_epoch_metrics = dict(metrics)

    def on_end(
        self,
        trainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if metrics is None or self._epochs_trained or self._restored is None:
            return
        # recovered after the last checkpoint: no epoch ran in this process. AllenNLP's own
        # `best_epoch` is then its metric tracker's, None in a run without validation, where the
        # uninterrupted run reported its last epoch's
        for key, value in (self._restored["last_epoch_metrics"] or {}).items():
            if metrics.get(key) is None:
                metrics[key] = value

    def state_dict(self) -> Dict[str, Any]:
        return {
            "loss_sum": self._loss_sum,
            "reg_loss_sum": self._reg_loss_sum,
            "model_metrics": {
                name: {k: _plain(v) for k, v in vars(metric).items()}
                for name, metric in self._model_metrics.items()
            },
            "last_epoch_metrics": self._last_epoch_metrics,
            "input_files": self._input_files,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._restored = state_dict
        self._loss_sum = state_dict["loss_sum"]
        self._reg_loss_sum = state_dict["reg_loss_sum"]
        self._last_epoch_metrics = state_dict["last_epoch_metrics"]


def _differences(started: List[List[str]], now: List[List[str]]) -> str:
    """What differs between two lists of `[path, sha256]`, in words."""
    if len(started) != len(now):
        return (
            f"the data paths name {len(now)} file(s) ({', '.join(path for path, _ in now)}), not "
            f"the {len(started)} they named ({', '.join(path for path, _ in started)})"
        )
    return "; ".join(
        f"{path} has changed" for (path, sha256), (_, was) in zip(now, started) if sha256 != was
    )
