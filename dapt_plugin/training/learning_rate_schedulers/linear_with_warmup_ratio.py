from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.learning_rate_schedulers import PolynomialDecay
from allennlp.training.learning_rate_schedulers.learning_rate_scheduler import LearningRateScheduler


@LearningRateScheduler.register("linear_with_warmup_ratio")
class LinearWithWarmupRatio(PolynomialDecay):
    """
    Linear warm-up from 0 to the optimizer's learning rate over the first `warmup_ratio` of all
    optimizer steps, then linear decay to 0 at the last step: the schedule of the paper (and of
    RoBERTa), given as a fraction so that a config needs no step count. The trainer supplies
    `num_epochs` and `num_steps_per_epoch` (optimizer steps, after gradient accumulation). The
    trainer sets the rate of step n (1-based) before taking it: n/W of the rate over W warm-up
    steps, then (N - n)/(N - W) of it, so the last of the N steps has rate 0.

    # Parameters

    optimizer : `torch.optim.Optimizer`
        Supplied by the trainer; no config entry.
    num_epochs : `int`
        Supplied by the trainer; no config entry.
    num_steps_per_epoch : `int`
        Supplied by the trainer; no config entry. It is known when the data loader has a length:
        always for a loader with `batches_per_epoch`, and for a lazy reader whose instances are
        all held in memory.
    warmup_ratio : `float`, optional (default = `0.06`)
        Fraction of all optimizer steps spent warming up; the paper uses 0.06.

    Registered as a `LearningRateScheduler` with name "linear_with_warmup_ratio".
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        num_epochs: int,
        num_steps_per_epoch: Optional[int],
        warmup_ratio: float = 0.06,
        last_epoch: int = -1,
    ) -> None:
        if not 0.0 <= warmup_ratio < 1.0:
            raise ConfigurationError(f"`warmup_ratio` must be in [0, 1); got {warmup_ratio}")
        if not num_steps_per_epoch:
            raise ConfigurationError(
                "`linear_with_warmup_ratio` needs the number of steps per epoch, but the data "
                "loader has no length; set `batches_per_epoch` in the data loader"
            )
        total_steps = num_epochs * num_steps_per_epoch
        super().__init__(
            optimizer,
            num_epochs,
            num_steps_per_epoch,
            power=1.0,
            warmup_steps=round(warmup_ratio * total_steps),
            end_learning_rate=0.0,
            last_epoch=last_epoch,
        )
