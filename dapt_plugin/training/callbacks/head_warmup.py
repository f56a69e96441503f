import logging
import time
from typing import Any, Dict, Optional

import torch
import torch.distributed as dist
from allennlp.common.checks import ConfigurationError
from allennlp.nn import util as nn_util
from allennlp.training.callbacks.callback import TrainerCallback

from dapt_plugin.common.distributed import world_size
from dapt_plugin.nn.masked_lm_heads import head_parameters

logger = logging.getLogger(__name__)

DEFAULT_PASSES = 3
DEFAULT_MAX_STEPS = 1000


def warm_up_head(model, loader, num_steps: int, learning_rate: float) -> float:
    """
    Trains the masked-LM head of `model` (a `dapt_masked_lm`) alone for `num_steps` optimizer
    steps on batches `0 .. num_steps - 1` of `loader` (a `masked_lm_batches` loader, whose batch
    `n` is a function of `n` alone, so the main training's batches are not disturbed), with
    AdamW at a constant `learning_rate`. Every other parameter, the word embeddings that the
    head's output projection shares included, is left untouched (no gradient, no weight decay).
    Returns the mean masked-LM loss of the last tenth of the steps.
    """
    named_head = head_parameters(model.mlm)
    head = list(named_head.values())
    head_ids = {id(p) for p in head}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    # as the configs' optimizer: no weight decay on biases and normalisation weights
    no_decay = [
        p for name, p in named_head.items() if name.endswith("bias") or "norm" in name.lower()
    ]
    decay = [p for p in head if id(p) not in {id(q) for q in no_decay}]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    world = world_size()
    device = next(model.parameters()).device
    losses = []
    was_training = model.training
    for p in frozen:
        p.requires_grad_(False)
    try:
        model.train()
        for step in range(num_steps):
            batch = nn_util.move_to_device(loader.batch(step), device)
            loss = model(**batch)["loss"]
            loss.backward()
            if world > 1:  # every worker trains the same head
                for p in head:
                    dist.all_reduce(p.grad)
                    p.grad /= world
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)
        model.get_metrics(reset=True)  # the warm-up is not part of the first epoch's metrics
    tail = losses[-max(1, len(losses) // 10) :]
    return sum(tail) / len(tail) if tail else float("nan")


@TrainerCallback.register("head_warmup")
class HeadWarmup(TrainerCallback):
    """
    When the checkpoint a `dapt_masked_lm` run starts from has no trained masked-LM head (many
    released encoders are saved without it: sentence-transformers models, ELECTRA
    discriminators turned encoders, task fine-tuned models), transformers initialises the head at
    random, and DAPT/TAPT would push the gradients of a random head into the trained encoder. This
    callback first trains the head alone, with the encoder (and the word embeddings the head's
    output projection shares) frozen, before the first step of the normal recipe; with a complete
    head it does nothing. `metrics.json` and the export's `dapt_export.json` record
    `head_missing_weights` (how many head tensors the checkpoint lacked),
    `head_warmup_steps` and `head_warmup_seconds` (training time outside AllenNLP's
    `training_duration`, which `allennlp adapt` counts as training).

    The warm-up uses the training batches `0, 1, ...` of the `masked_lm_batches` loader at the
    per-device batch size, the optimizer's learning rate held constant, AdamW without schedule,
    and is not counted in the run's steps or epochs. A run recovered with `--recover` after the
    warm-up does not repeat it (the warmed head is in the checkpoint).

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.
    num_steps : `int`, optional (default = `None`)
        Optimizer steps of the warm-up; 0 leaves a random head as it is (with a warning). `None`:
        three passes over the training data, at most 1,000 steps.
    learning_rate : `float`, optional (default = `None`)
        Learning rate of the warm-up; `None` takes the run's optimizer's (`LR`).

    Registered as a `TrainerCallback` with name "head_warmup".
    """

    def __init__(
        self,
        serialization_dir: str,
        num_steps: Optional[int] = None,
        learning_rate: Optional[float] = None,
    ) -> None:
        super().__init__(serialization_dir)
        if num_steps is not None and num_steps < 0:
            raise ConfigurationError(
                f"`num_steps` (HEAD_WARMUP_STEPS) must be at least 0, or null for "
                f"the default; got {num_steps}"
            )
        if learning_rate is not None and learning_rate <= 0:
            raise ConfigurationError(
                f"`learning_rate` must be positive, or null for the run's; got {learning_rate}"
            )
        self.num_steps = num_steps
        self.learning_rate = learning_rate
        self._done = False
        self._steps = 0
        self._seconds = 0.0
        self._missing = 0

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        model = trainer.model
        if not hasattr(model, "missing_head_weights"):
            raise ConfigurationError(
                f"the `head_warmup` callback trains the head of a `dapt_masked_lm` model; the model is a "
                f"{type(model).__name__}. Remove the callback from this config."
            )
        self._missing = len(model.missing_head_weights)
        if not self._missing and self.num_steps and is_primary:
            logger.info(
                "HEAD_WARMUP_STEPS=%d has no effect: the checkpoint has its trained masked-LM head",
                self.num_steps,
            )
        if self._done or not self._missing:
            return
        loader = trainer.data_loader
        if not hasattr(loader, "batch"):
            raise ConfigurationError(
                "the `head_warmup` callback needs the `masked_lm_batches` data loader"
            )
        steps = self.num_steps
        if steps is None:
            steps = min(DEFAULT_PASSES * loader.batches_per_pass, DEFAULT_MAX_STEPS)
        if steps == 0:
            logger.warning(
                "HEAD_WARMUP_STEPS=0: training starts with the random head; the encoder "
                "will take its gradients"
            )
        else:
            learning_rate = self.learning_rate or trainer.optimizer.defaults["lr"]
            logger.info(
                "Training the masked-LM head alone for %d steps (encoder frozen, lr %g)",
                steps,
                learning_rate,
            )
            start = time.perf_counter()
            loss = warm_up_head(model, loader, steps, learning_rate)
            self._seconds = time.perf_counter() - start
            logger.info("Head warm-up done: masked-LM loss %.4f over its last steps", loss)
        self._steps = steps
        self._done = True

    @property
    def steps(self) -> int:
        """Optimizer steps the head was trained alone for (0 without a warm-up)."""
        return self._steps

    def on_end(
        self,
        trainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if metrics is not None:
            metrics["head_missing_weights"] = self._missing
            metrics["head_warmup_steps"] = self._steps
            metrics["head_warmup_seconds"] = self._seconds

    def state_dict(self) -> Dict[str, Any]:
        return {"done": self._done, "steps": self._steps, "seconds": self._seconds}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._done = state_dict["done"]
        self._steps = state_dict["steps"]
        self._seconds = state_dict.get("seconds", 0.0)  # not in a checkpoint of an earlier version
