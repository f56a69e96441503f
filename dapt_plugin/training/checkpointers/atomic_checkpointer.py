import glob
import logging
import os
import re
from typing import Optional, Set, Tuple

import torch
from allennlp.common.util import is_global_primary
from allennlp.nn import util as nn_util
from allennlp.training.checkpointer import Checkpointer
from allennlp.training.trainer import Trainer, TrainerCheckpoint

from dapt_plugin.common.atomic import atomic_torch_save, remove_leftovers

logger = logging.getLogger(__name__)

BEST_WEIGHTS = "best.th"


@Checkpointer.register("atomic")
class AtomicCheckpointer(Checkpointer):
    """
    AllenNLP's checkpointer, made safe against a run being killed at any moment (SIGKILL, a
    preempted node, an out-of-memory kill), so that `allennlp train --recover` always finds a
    complete checkpoint and the best weights:

    - each file is written to a temporary name and renamed into place, so a checkpoint file is
      never partial (the default checkpointer writes in place);
    - the training state is written before the model state, and only a checkpoint with both
      files counts, so a kill between the two leaves the previous checkpoint as the latest;
    - when a run starts (or recovers), what killed writers left in the serialization directory
      is removed: temporary files, training states without their model state, partial exports;
    - `best.th` survives any kill. AllenNLP writes an epoch's checkpoint first and replaces
      `best.th` after it, so a kill in between (or during the replacement) loses the best epoch's
      weights once its checkpoint is pruned. On recovery from a checkpoint taken at the end of
      an epoch that was the best so far, `best.th` is rewritten (atomically) from that
      checkpoint's weights, and the recovered trainer is pointed at it;
    - checkpoints are read with `torch.load(weights_only=True)`: tensors and plain containers
      only, never arbitrary pickled objects.

    Takes the parameters of the default checkpointer (`save_completed_epochs`,
    `save_every_num_seconds`, `save_every_num_batches`, `keep_most_recent_by_count`,
    `keep_most_recent_by_age`).

    Registered as a `Checkpointer` with name "atomic".
    """

    def save_checkpoint(self, trainer: Trainer) -> None:
        state = trainer.get_checkpoint_state() if self._serialization_dir is not None else None
        if (
            state is not None
        ):  # None on a non-primary worker of a distributed run with an unsharded model
            point = (
                state.trainer_state["epochs_completed"],
                state.trainer_state["batches_in_epoch_completed"],
            )
            model_path = self._model_state_path(*point)
            if not os.path.isfile(model_path):
                atomic_torch_save(state.trainer_state, self._training_state_path(*point))
                atomic_torch_save(
                    state.model_state, model_path
                )  # its presence marks the checkpoint complete
        # the files exist now, so the default implementation writes nothing and only does its
        # bookkeeping and the pruning of old checkpoints
        super().save_checkpoint(trainer)

    def _find_all_checkpoints(self) -> Set[Tuple[int, int]]:
        return {
            point
            for point in super()._find_all_checkpoints()
            if os.path.isfile(self._training_state_path(*point))
        }

    def load_checkpoint(self) -> Optional[TrainerCheckpoint]:
        primary = is_global_primary()
        if self._serialization_dir is not None and primary:
            self._remove_leftovers()
        latest = self.find_latest_checkpoint()
        if latest is None:
            return None
        model_path, training_path = latest
        logger.info("Recovering from the checkpoint %s", model_path)
        device = nn_util.device_mapping(-1)
        model_state = torch.load(model_path, map_location=device, weights_only=True)
        training_state = torch.load(training_path, map_location=device, weights_only=True)
        self._restore_best_weights(model_state, training_state, write=primary)
        return TrainerCheckpoint(model_state, training_state)

    def _remove_leftovers(self) -> None:
        remove_leftovers(self._serialization_dir)
        pattern = re.compile(r"training_state_e(\d+)_b(\d+)\.th")
        for path in glob.glob(
            os.path.join(glob.escape(self._serialization_dir), "training_state_e*_b*.th")
        ):
            match = pattern.fullmatch(os.path.basename(path))
            if match and not os.path.isfile(
                self._model_state_path(int(match.group(1)), int(match.group(2)))
            ):
                logger.info(
                    "Removing %s: its model state was never written (the run was killed)", path
                )
                os.remove(path)

    def _restore_best_weights(self, model_state, training_state, write: bool) -> None:
        """
        Makes `best.th` hold the best epoch's weights, and the recovered trainer use it. The
        checkpoint of an epoch end records in its metric tracker whether that epoch was the
        best so far (always true without validation): then `best.th` must be its weights, which
        AllenNLP may not have written yet when the run was killed.
        """
        best_path = os.path.join(self._serialization_dir, BEST_WEIGHTS)
        at_epoch_end = (
            training_state["batches_in_epoch_completed"] == 0
            and training_state["epochs_completed"] > 0
        )
        # with a moving average, best.th holds the averaged weights, which the checkpoint does not
        averaged = "moving_average" in training_state
        if at_epoch_end and training_state["metric_tracker"]["is_best_so_far"] and not averaged:
            if write:
                atomic_torch_save(model_state, best_path)
            training_state["best_model_filename"] = best_path
        elif training_state["best_model_filename"] is not None:
            # the path recorded at save time; the directory may have moved since
            training_state["best_model_filename"] = best_path
