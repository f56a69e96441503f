import random
from typing import Any, Dict

import numpy as np
import torch
from allennlp.training.callbacks.callback import TrainerCallback


@TrainerCallback.register("rng_checkpoint")
class RngCheckpoint(TrainerCallback):
    """
    Saves the random number generators of Python, NumPy and PyTorch (CPU and every CUDA device)
    in each checkpoint and restores them on `allennlp train --recover`, so that a resumed run
    draws the same dropout masks as an uninterrupted one and ends with the same weights.
    AllenNLP only reseeds at start-up, which makes a resumed run diverge from the batch it
    resumes at. States are stored as tensors and plain lists, loadable with
    `torch.load(weights_only=True)`.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.

    Registered as a `TrainerCallback` with name "rng_checkpoint".
    """

    def state_dict(self) -> Dict[str, Any]:
        version, python_state, gauss = random.getstate()
        name, keys, position, has_gauss, cached_gauss = np.random.get_state()
        return {
            "python": [version, list(python_state), gauss],
            "numpy": [
                name,
                torch.from_numpy(keys.astype(np.int64)),
                position,
                has_gauss,
                cached_gauss,
            ],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        version, python_state, gauss = state_dict["python"]
        random.setstate((version, tuple(python_state), gauss))
        name, keys, position, has_gauss, cached_gauss = state_dict["numpy"]
        np.random.set_state(
            (name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss)
        )
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
