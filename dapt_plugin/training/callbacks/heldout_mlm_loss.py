import logging
import time
from typing import Any, Dict, Optional

import torch
from allennlp.training.callbacks.callback import TrainerCallback

logger = logging.getLogger(__name__)


def heldout_loss(model, loader) -> Optional[float]:
    """
    The masked-LM loss of `model` (a `dapt_masked_lm`) over every batch of `loader`, per masked
    token, with the evaluation masks (a function of each batch's ids), so two models measured on
    the same loader see the same masks. None when the loader has no masked token.
    """
    was_training = model.training
    model.eval()
    model.get_metrics(reset=True)
    try:
        with torch.no_grad():
            for batch in loader:
                model(**batch)
        return model.get_metrics(reset=True).get("mlm_loss")
    finally:
        model.train(was_training)


@TrainerCallback.register("heldout_mlm_loss")
class HeldoutMlmLoss(TrainerCallback):
    """
    Says whether a masked-LM run moved the model in the right direction: the masked-LM loss on
    held-out text of the model it starts from (after the head warm-up, when there is one) and of
    the model it ends with (the weights of `model.tar.gz` and the export), with the same masks.
    Both go to the log, to `metrics.json` and to the export's `dapt_export.json` as
    `heldout_mlm_loss_start`, `heldout_mlm_loss_end` and `heldout_mlm_loss_change` (end minus
    start: negative is better); a run that ends worse than it started is logged as a warning.
    `heldout_mlm_loss_seconds` is the time both measurements took (evaluation outside AllenNLP's
    `training_duration`, which `allennlp adapt` counts as evaluation).

    The held-out text is the validation data when the config has some (`HELDOUT_PATH`); otherwise
    the share of the training data that the `masked_lm_batches` loader holds out
    (`hold_out: "exclude"`; the examples of 1% of the documents, at most 2,000 documents, never
    trained on). Put it after
    `head_warmup` and before `export_pretrained`.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.

    Registered as a `TrainerCallback` with name "heldout_mlm_loss".
    """

    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self._loader = None
        self._start: Optional[float] = None
        self._measured_start = False
        self._seconds = 0.0

    def _heldout_loader(self, trainer):
        if trainer._validation_data_loader is not None:
            return trainer._validation_data_loader
        if getattr(trainer.data_loader, "hold_out", None) == "exclude":
            held_out = trainer.data_loader.held_out_loader()
            return held_out if held_out.num_examples else None  # a corpus of too few documents
        return None

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self._loader = self._heldout_loader(trainer)
        if self._loader is None:
            every = getattr(trainer.data_loader, "hold_out_every", None)
            logger.warning(
                "No held-out text (no HELDOUT_PATH, and the training data loader holds none "
                "out%s): the run cannot tell whether it improved the model's masked-LM loss; "
                "give HELDOUT_PATH",
                f": one document in {every} at most, none of fewer" if every else "",
            )
            return
        if not self._measured_start:  # on --recover, the start was measured before the kill
            self._start = self._measure(trainer.model)
            self._measured_start = True
            if self._start is not None:
                logger.info("Held-out masked-LM loss before training: %.4f", self._start)

    def on_end(
        self,
        trainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if metrics is None or self._loader is None or self._start is None:
            return
        end = self._measure(trainer.model)
        if end is None:
            return
        metrics.update(
            heldout_mlm_loss_start=self._start,
            heldout_mlm_loss_end=end,
            heldout_mlm_loss_change=end - self._start,
            heldout_mlm_loss_seconds=self._seconds,
        )
        if end > self._start:
            logger.warning(
                "Held-out masked-LM loss went UP from %.4f to %.4f: this run moved the model away "
                "from the held-out text (check the learning rate, the data, and the head warm-up)",
                self._start,
                end,
            )
        else:
            logger.info(
                "Held-out masked-LM loss: %.4f before, %.4f after training (%.4f)",
                self._start,
                end,
                end - self._start,
            )

    def _measure(self, model) -> Optional[float]:
        start = time.perf_counter()
        try:
            return heldout_loss(model, self._loader)
        finally:
            self._seconds += time.perf_counter() - start

    def state_dict(self) -> Dict[str, Any]:
        return {
            "start": self._start,
            "measured_start": self._measured_start,
            "seconds": self._seconds,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._start = state_dict["start"]
        self._measured_start = state_dict["measured_start"]
        self._seconds = state_dict.get("seconds", 0.0)  # not in a checkpoint of an earlier version
