import itertools
import logging
import os
import time
from collections import deque
from datetime import timedelta
from typing import Any, Dict, List, Optional, Union

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.data import TensorDict
from allennlp.training.callbacks.callback import TrainerCallback
from allennlp.training.callbacks.log_writer import LogWriterCallback
from allennlp.training.callbacks.tensorboard import TensorBoardCallback
from tensorboardX import SummaryWriter

from dapt_plugin.common.distributed import world_size
from dapt_plugin.nn.token_counts import count_tokens

logger = logging.getLogger(__name__)

_WRITERS = itertools.count()  # tells apart the event files this process opens


@TrainerCallback.register("training_curves")
class TrainingCurves(TensorBoardCallback):
    """
    The curves of a run, as Hugging Face's `Trainer` logs them, on AllenNLP's `tensorboard`
    callback (whose other options it keeps). TensorBoard event files in
    `<serialization dir>/log/train` and `log/validation` (`tensorboard --logdir <serialization
    dir>/log`), with optimizer steps as the x-axis of every curve:

    - every `summary_interval` steps: `train/batch_loss` (and `train/batch_loss_mov_avg`, over
      100 points), the model's metrics so far in the epoch (`train/batch_<metric>`),
      `train/learning_rate`, `train/grad_norm` (L2 norm of all gradients of the step; the
      trainer's own, before clipping, when its `grad_norm` is set), `train/tokens_per_second`
      (non-padding tokens of the step over its wall time, data loading included; in a
      distributed run, the primary's count times the number of workers) and `train/epoch`
      (fractional);
    - at the end of every epoch, its training and validation metrics (`train/<metric>`,
      `validation/<metric>`).

    Every `log_every` steps, one line in the log (`out.log`, and the console), e.g.
    `step 100/12500 (epoch 1/10) | loss 6.5123 | lr 4.98e-04 | grad norm 1.23 | 52,310 tokens/s |
    0:02:10 elapsed, 4:28:03 left`, the loss and tokens/s being the means over those steps. When
    training ends, the log says where the curves are.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.
    log_every : `int`, optional (default = `50`)
        Optimizer steps between two lines in the log (`LOG_EVERY` in the plugin's configs).
    summary_interval : `int`, optional (default = `1`)
        Optimizer steps between two TensorBoard points.
    should_log_learning_rate : `bool`, optional (default = `False`)
        Also the learning rate of every parameter (AllenNLP's `learning_rate/<parameter>`);
        `train/learning_rate` is written either way.
    should_log_parameter_statistics : `bool`, optional (default = `False`)
        Also the mean and standard deviation of every parameter and gradient (slow on large models).
    distribution_interval : `int`, optional (default = `None`)
        Steps between histograms of the parameters and of their updates (AllenNLP's option; slow).
    batch_size_interval : `int`, optional (default = `None`)
        Steps between two points of the batch size (AllenNLP's option).

    Registered as a `TrainerCallback` with name "training_curves".
    """

    def __init__(
        self,
        serialization_dir: str,
        log_every: int = 50,
        summary_interval: int = 1,
        should_log_learning_rate: bool = False,
        should_log_parameter_statistics: bool = False,
        distribution_interval: Optional[int] = None,
        batch_size_interval: Optional[int] = None,
    ) -> None:
        for name, value in (("log_every", log_every), ("summary_interval", summary_interval)):
            if value < 1:
                raise ConfigurationError(
                    f"`{name}` of the `training_curves` callback must be at least 1; got {value}"
                )
        # TensorBoardCallback's own __init__ opens its event files in every worker of a distributed
        # run, under the same file name (time to the second and host name) on one machine: the
        # primary opens them in `on_start`, alone.
        LogWriterCallback.__init__(
            self,
            serialization_dir,
            summary_interval=summary_interval,
            distribution_interval=distribution_interval,
            batch_size_interval=batch_size_interval,
            should_log_parameter_statistics=should_log_parameter_statistics,
            should_log_learning_rate=should_log_learning_rate,
        )
        self._train_log: Optional[SummaryWriter] = None
        self._validation_log: Optional[SummaryWriter] = None
        self.log_every = log_every
        # timing of the steps: the time and step count of the last step (or of the start)
        self._anchor: Optional[Dict[str, float]] = None
        self._start: Optional[Dict[str, float]] = None
        # sums since the last line of the log
        self._interval = {"loss": 0.0, "steps": 0, "tokens": 0.0, "seconds": 0.0}

    # -- hooks ------------------------------------------------------------------------------

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        super().on_start(trainer, is_primary=is_primary, **kwargs)
        if is_primary and self._train_log is None:
            # the file name holds the time to the second: a run resumed within it (`--recover`
            # in a new process, or a second run in this one) would truncate the first's file
            suffix = f".{os.getpid()}.{next(_WRITERS)}"
            log = os.path.join(self.serialization_dir, "log")
            self._train_log = SummaryWriter(os.path.join(log, "train"), filename_suffix=suffix)
            self._validation_log = SummaryWriter(
                os.path.join(log, "validation"), filename_suffix=suffix
            )
        self._set_anchor(trainer)

    def on_batch(
        self,
        trainer,
        batch_inputs: List[TensorDict],
        batch_outputs: List[Dict[str, Any]],
        batch_metrics: Dict[str, Any],
        epoch: int,
        batch_number: int,
        is_training: bool,
        is_primary: bool = True,
        batch_grad_norm: Optional[float] = None,
        **kwargs,
    ) -> None:
        if not is_training or not is_primary:
            return
        step = trainer._total_batches_completed
        # the step's wall time; not measured for the first step after a `--recover` replay
        seconds = None
        if self._anchor is not None and self._anchor["step"] == step - 1:
            seconds = time.monotonic() - self._anchor["time"]
        if self._start is None:  # what the elapsed time and the time left count from
            self._start = (
                dict(self._anchor)
                if seconds is not None
                else {"time": time.monotonic(), "step": step}
            )
        tokens = count_tokens(batch_inputs, _pad_token_id(trainer.model))
        if tokens is not None:
            tokens *= world_size()
        summary, line = step % self._summary_interval == 0, step % self.log_every == 0
        if batch_grad_norm is None and (summary or line):
            batch_grad_norm = _grad_norm(trainer.model)
        learning_rate = trainer.optimizer.param_groups[0]["lr"]
        super().on_batch(
            trainer,
            batch_inputs,
            batch_outputs,
            batch_metrics,
            epoch,
            batch_number,
            is_training=is_training,
            is_primary=is_primary,
            batch_grad_norm=batch_grad_norm,
            **kwargs,
        )
        if summary:
            scalars = {"learning_rate": learning_rate}
            if batch_grad_norm is not None:
                scalars["grad_norm"] = batch_grad_norm
            if tokens is not None and seconds:
                scalars["tokens_per_second"] = tokens / seconds
            steps_per_epoch = _steps_per_epoch(trainer)
            if steps_per_epoch:
                scalars["epoch"] = epoch + batch_number / steps_per_epoch
            self.log_scalars(scalars, log_prefix="train")

        self._interval["loss"] += batch_metrics.get("batch_loss", 0.0)
        self._interval["steps"] += 1
        if tokens is not None and seconds:
            self._interval["tokens"] += tokens
            self._interval["seconds"] += seconds
        if line:
            self._log_line(trainer, epoch, step, learning_rate, batch_grad_norm)
        self._set_anchor(trainer)

    def on_epoch(
        self, trainer, metrics: Dict[str, Any], epoch: int, is_primary: bool = True, **kwargs
    ) -> None:
        super().on_epoch(trainer, metrics, epoch, is_primary=is_primary, **kwargs)
        self._set_anchor(trainer)  # the next step's time leaves out validation

    def on_end(
        self,
        trainer,
        metrics: Dict[str, Any] = None,
        epoch: int = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        super().on_end(trainer, metrics=metrics, epoch=epoch, is_primary=is_primary, **kwargs)
        if is_primary:
            logger.info(
                "Training curves: tensorboard --logdir %s",
                os.path.join(self.serialization_dir, "log"),
            )

    def log_scalars(
        self,
        scalars: Dict[str, Union[int, float]],
        log_prefix: str = "",
        epoch: Optional[int] = None,
    ) -> None:
        # At the optimizer step for every scalar, the epoch's metrics too: AllenNLP puts those at
        # `epoch + 1` and the step's one step late, so that the curves of one run do not line up.
        step = self.trainer._total_batches_completed
        log = self._validation_log if log_prefix.startswith("validation") else self._train_log
        for key, value in scalars.items():
            log.add_scalar(f"{log_prefix}/{key}" if log_prefix else key, value, step)

    def state_dict(self) -> Dict[str, Any]:
        return {
            "batch_loss_moving_items": {
                key: list(items) for key, items in self._batch_loss_moving_items.items()
            },
            "interval": dict(self._interval),
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        for key, items in state_dict.get("batch_loss_moving_items", {}).items():
            self._batch_loss_moving_items[key] = deque(items)
            self._batch_loss_moving_sum[key] = sum(items)
        self._interval.update(state_dict.get("interval", {}))

    # -- helpers ----------------------------------------------------------------------------

    def _set_anchor(self, trainer) -> None:
        self._anchor = {"time": time.monotonic(), "step": trainer._total_batches_completed}

    def _log_line(
        self, trainer, epoch: int, step: int, learning_rate: float, grad_norm: Optional[float]
    ) -> None:
        steps_per_epoch = _steps_per_epoch(trainer)
        total = steps_per_epoch * trainer._num_epochs if steps_per_epoch else None
        parts = [
            f"step {step}"
            + (f"/{total}" if total else "")
            + f" (epoch {epoch + 1}/{trainer._num_epochs})"
        ]
        if self._interval["steps"]:
            parts.append(f"loss {self._interval['loss'] / self._interval['steps']:.4f}")
        parts.append(f"lr {learning_rate:.2e}")
        if grad_norm is not None:
            parts.append(f"grad norm {grad_norm:.3g}")
        if self._interval["seconds"]:
            parts.append(f"{self._interval['tokens'] / self._interval['seconds']:,.0f} tokens/s")
        assert self._start is not None
        elapsed = time.monotonic() - self._start["time"]
        timing = f"{timedelta(seconds=round(elapsed))} elapsed"
        done = step - self._start["step"]
        if total and done > 0:
            timing += f", {timedelta(seconds=round(elapsed / done * max(total - step, 0)))} left"
        parts.append(timing)
        logger.info("%s", " | ".join(parts))
        self._interval = {"loss": 0.0, "steps": 0, "tokens": 0.0, "seconds": 0.0}


def _pad_token_id(model) -> Optional[int]:
    return getattr(getattr(model, "tokenizer", None), "pad_token_id", None)


def _grad_norm(model) -> Optional[float]:
    """L2 norm of all gradients (after the optimizer step: unscaled, as AMP's scaler leaves them)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None and not p.grad.is_sparse]
    return float(torch.nn.utils.get_total_norm(grads)) if grads else None


def _steps_per_epoch(trainer) -> Optional[int]:
    try:
        return -(-len(trainer.data_loader) // trainer._num_gradient_accumulation_steps)
    except TypeError:  # a data loader without a length
        return None
