import logging
import os
import tempfile
from typing import Any, Optional, Set, Tuple

import torch
from allennlp.nn import util as nn_util
from allennlp.training.checkpointer import Checkpointer
from allennlp.training.trainer import Trainer, TrainerCheckpoint

logger = logging.getLogger(__name__)


def atomic_torch_save(obj: Any, path: str) -> None:
    """`torch.save` to a temporary file beside `path`, then a rename: `path` is never partial."""
    handle, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@Checkpointer.register("atomic")
class AtomicCheckpointer(Checkpointer):
    """
    AllenNLP's checkpointer, made safe against a run being killed at any moment (SIGKILL, a
    preempted node, an out-of-memory kill), so that `allennlp train --recover` always finds a
    complete checkpoint:

    - each file is written to a temporary name and renamed into place, so a checkpoint file is
      never partial (the default checkpointer writes in place);
    - the training state is written before the model state, and only a checkpoint with both
      files counts, so a kill between the two leaves the previous checkpoint as the latest;
    - checkpoints are read with `torch.load(weights_only=True)`: tensors and plain containers
      only, never arbitrary pickled objects.

    Takes the parameters of the default checkpointer (`save_completed_epochs`,
    `save_every_num_seconds`, `save_every_num_batches`, `keep_most_recent_by_count`,
    `keep_most_recent_by_age`).

    Registered as a `Checkpointer` with name "atomic".
    """

    def save_checkpoint(self, trainer: Trainer) -> None:
        state = trainer.get_checkpoint_state() if self._serialization_dir is not None else None
        if state is not None:  # None on a non-primary worker of a distributed run with an unsharded model
            point = (state.trainer_state["epochs_completed"], state.trainer_state["batches_in_epoch_completed"])
            model_path = self._model_state_path(*point)
            if not os.path.isfile(model_path):
                atomic_torch_save(state.trainer_state, self._training_state_path(*point))
                atomic_torch_save(state.model_state, model_path)  # its presence marks the checkpoint complete
        # the files exist now, so the default implementation writes nothing and only does its
        # bookkeeping and the pruning of old checkpoints
        super().save_checkpoint(trainer)

    def _find_all_checkpoints(self) -> Set[Tuple[int, int]]:
        return {point for point in super()._find_all_checkpoints()
                if os.path.isfile(self._training_state_path(*point))}

    def load_checkpoint(self) -> Optional[TrainerCheckpoint]:
        latest = self.find_latest_checkpoint()
        if latest is None:
            return None
        model_path, training_path = latest
        logger.info("Recovering from the checkpoint %s", model_path)
        device = nn_util.device_mapping(-1)
        return TrainerCheckpoint(
            torch.load(model_path, map_location=device, weights_only=True),
            torch.load(training_path, map_location=device, weights_only=True),
        )
