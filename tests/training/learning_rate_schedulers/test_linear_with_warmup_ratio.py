from typing import List

import pytest
import torch
from allennlp.common import Lazy, Params
from allennlp.common.checks import ConfigurationError
from allennlp.data import Instance, Vocabulary
from allennlp.data.data_loaders import SimpleDataLoader
from allennlp.data.fields import TensorField
from allennlp.models import Model
from allennlp.training import GradientDescentTrainer, TrainerCallback
from allennlp.training.learning_rate_schedulers import LearningRateScheduler
from allennlp.training.optimizers import Optimizer


class OneWeight(Model):
    def __init__(self) -> None:
        super().__init__(Vocabulary())
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor):  # type: ignore
        return {"loss": (self.weight * x).sum()}


class LearningRateRecorder(TrainerCallback):
    """Records the learning rate each optimizer step was taken with."""

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self.rates: List[float] = []

    def on_batch(
        self,
        trainer,
        batch_inputs,
        batch_outputs,
        batch_metrics,
        epoch,
        batch_number,
        is_training,
        is_primary=True,
        batch_grad_norm=None,
        **kwargs,
    ) -> None:
        if is_training:
            self.rates.append(trainer.optimizer.param_groups[0]["lr"])


def learning_rates(
    tmp_path, num_epochs: int, num_batches: int, accumulation: int = 1, **scheduler
) -> List[float]:
    """Trains with the scheduler as `allennlp train` builds it and returns the rate of every step."""
    loader = SimpleDataLoader(
        [Instance({"x": TensorField(torch.ones(1))}) for _ in range(num_batches)], batch_size=1
    )
    loader.index_with(Vocabulary())
    recorder = LearningRateRecorder(str(tmp_path))
    trainer = GradientDescentTrainer.from_partial_objects(
        model=OneWeight(),
        serialization_dir=str(tmp_path),
        data_loader=loader,
        num_epochs=num_epochs,
        num_gradient_accumulation_steps=accumulation,
        optimizer=Lazy(Optimizer, Params({"type": "sgd", "lr": 0.5})),
        learning_rate_scheduler=Lazy(
            LearningRateScheduler, Params({"type": "linear_with_warmup_ratio", **scheduler})
        ),
        callbacks=[Lazy(lambda serialization_dir: recorder)],
        enable_default_callbacks=False,
    )
    trainer.train()
    return recorder.rates


@pytest.mark.parametrize("accumulation", [1, 2])
def test_rises_to_peak_at_six_percent_then_decays_to_zero_at_the_last_step(tmp_path, accumulation):
    rates = learning_rates(
        tmp_path, num_epochs=2, num_batches=50 * accumulation, accumulation=accumulation
    )
    assert len(rates) == 100  # optimizer steps
    warmup = 6
    for step, rate in enumerate(rates, start=1):
        expected = step / warmup if step <= warmup else (100 - step) / (100 - warmup)
        assert rate == pytest.approx(0.5 * expected), step
    assert max(rates) == rates[warmup - 1] == pytest.approx(0.5)
    assert rates[-1] == 0.0


def test_warmup_ratio_is_configurable(tmp_path):
    rates = learning_rates(tmp_path, num_epochs=1, num_batches=20, warmup_ratio=0.25)
    assert rates.index(max(rates)) == 4
    assert rates[:5] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


@pytest.mark.parametrize("ratio", [-0.1, 1.0])
def test_warmup_ratio_out_of_range_is_a_configuration_error(ratio):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    with pytest.raises(
        ConfigurationError, match=rf"`warmup_ratio` must be in \[0, 1\); got {ratio}"
    ):
        LearningRateScheduler.from_params(
            Params({"type": "linear_with_warmup_ratio", "warmup_ratio": ratio}),
            optimizer=optimizer,
            num_epochs=2,
            num_steps_per_epoch=50,
        )


def test_a_data_loader_without_length_is_a_configuration_error():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    with pytest.raises(
        ConfigurationError, match="data loader has no length; set `batches_per_epoch`"
    ):
        LearningRateScheduler.from_params(
            Params({"type": "linear_with_warmup_ratio"}),
            optimizer=optimizer,
            num_epochs=2,
            num_steps_per_epoch=None,
        )
