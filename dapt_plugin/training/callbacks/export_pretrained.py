import json
import logging
import os
from typing import Any, Dict, Optional

import torch
from allennlp.common.checks import ConfigurationError
from safetensors.torch import load_file, save_file
from allennlp.training.callbacks.callback import TrainerCallback

from dapt_plugin.common.atomic import atomic_directory
from dapt_plugin.training.checkpointers.atomic_checkpointer import BEST_WEIGHTS

logger = logging.getLogger(__name__)


def save_verified(model, directory: str) -> None:
    """
    `model.save_pretrained(directory)` in one safetensors file, then a reload that must give back
    every tensor of `model`. transformers 4.49 drops tied duplicates from safetensors files and,
    on load, re-ties RoBERTa's `lm_head.bias` from the freshly initialised `lm_head.decoder.bias`,
    so an export would silently lose its trained output bias; such tensors are written into the
    file under their own names. Raises `RuntimeError` if the reload still differs.
    """
    model.save_pretrained(directory, max_shard_size="1000GB")
    expected = model.state_dict()

    def mismatched():
        # loading initialises weights from the global generators: keep the run's random stream
        # (dropout, shuffling) exactly as it would be without exports
        with torch.random.fork_rng():
            reloaded = type(model).from_pretrained(directory).state_dict()
        return [k for k, v in expected.items() if k in reloaded and not torch.equal(v.detach().cpu(), reloaded[k])]

    wrong = mismatched()
    if wrong:
        path = os.path.join(directory, "model.safetensors")
        tensors = load_file(path)
        tensors.update({k: expected[k].detach().cpu().clone() for k in wrong})
        save_file(tensors, path, metadata={"format": "pt"})
        still_wrong = mismatched()
        if still_wrong:
            raise RuntimeError(f"the export in {directory} does not reload to the trained weights: {still_wrong}")


def check_same_weights(model_class, export: str, weights_file: str) -> None:
    """
    Raises `RuntimeError` unless the export in `export`, loaded with `model_class.from_pretrained`,
    has exactly the masked-LM weights of `weights_file` (a `dapt_masked_lm` state dict such as
    `best.th`, the weights `model.tar.gz` archives): the next phase must start from the weights
    the run reports as its result.
    """
    expected = torch.load(weights_file, map_location="cpu", weights_only=True)
    with torch.random.fork_rng():  # loading initialises weights from the global generators
        exported = model_class.from_pretrained(export).state_dict()
    prefix = "mlm."
    differ = [key for key, value in expected.items() if key.startswith(prefix)
              and not torch.equal(value, exported.get(key[len(prefix):], torch.empty(0)))]
    if differ:
        raise RuntimeError(f"the export {export} does not hold the weights of {weights_file} (which "
                           f"model.tar.gz archives): {len(differ)} tensors differ, e.g. {differ[:3]}")


@TrainerCallback.register("export_pretrained")
class ExportPretrained(TrainerCallback):
    """
    Exports the adapted encoder of a `dapt_masked_lm` model in Hugging Face's `save_pretrained`
    layout (config, weights with the masked-LM head, tokenizer), so that the next phase (TAPT,
    the classifier) or any `AutoModelForMaskedLM.from_pretrained` user loads it by path.

    At the end of training it writes `<serialization_dir>/exported_model` from the weights the
    run ends with (the best validation epoch's when there is validation), and checks that it
    holds exactly the weights of `best.th`, which `model.tar.gz` archives; and, if `every_num_steps` is set, `<serialization_dir>/exported_model_step_<N>` every N
    optimizer steps. Each export is written to a temporary directory and renamed into place, so
    a killed run never leaves a partial export under those names. Only the primary worker
    writes. Nothing is exported when training fails.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.
    directory_name : `str`, optional (default = `"exported_model"`)
        Name of the final export inside the serialization directory.
    every_num_steps : `int`, optional (default = `None`)
        Also export every this many optimizer steps.

    Registered as a `TrainerCallback` with name "export_pretrained".
    """

    def __init__(self, serialization_dir: str, directory_name: str = "exported_model",
                 every_num_steps: Optional[int] = None) -> None:
        super().__init__(serialization_dir)
        if every_num_steps is not None and every_num_steps < 1:
            raise ConfigurationError(f"`every_num_steps` must be at least 1, or null; got {every_num_steps}")
        if not directory_name or os.sep in directory_name:
            raise ConfigurationError(f"`directory_name` must be a plain directory name; got {directory_name!r}")
        self.directory_name = directory_name
        self.every_num_steps = every_num_steps

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        if not (hasattr(trainer.model, "mlm") and hasattr(trainer.model, "tokenizer")):
            raise ConfigurationError(
                "the `export_pretrained` callback exports a `dapt_masked_lm` model; the model is a "
                f"{type(trainer.model).__name__}. Remove the callback from this config."
            )

    def on_batch(self, trainer, batch_inputs, batch_outputs, batch_metrics, epoch: int, batch_number: int,
                 is_training: bool, is_primary: bool = True, **kwargs) -> None:
        if not is_primary or not is_training or self.every_num_steps is None:
            return
        step = trainer._total_batches_completed
        if step % self.every_num_steps == 0:
            self.export(trainer.model, f"{self.directory_name}_step_{step}", {"step": step, "epoch": epoch})

    def on_end(self, trainer, metrics: Optional[Dict[str, Any]] = None, epoch: Optional[int] = None,
               is_primary: bool = True, **kwargs) -> None:
        if not is_primary or metrics is None:
            return
        target = self.export(trainer.model, self.directory_name, {"epoch": epoch, "metrics": metrics})
        check_same_weights(type(trainer.model.mlm), target, os.path.join(self.serialization_dir, BEST_WEIGHTS))

    def export(self, model, name: str, info: Dict[str, Any]) -> str:
        """Writes the export `name` atomically; returns its path."""
        target = os.path.join(self.serialization_dir, name)
        with atomic_directory(target) as tmp:
            save_verified(model.mlm, tmp)
            model.tokenizer.save_pretrained(tmp)
            with open(os.path.join(tmp, "dapt_export.json"), "w") as handle:
                json.dump({"base_model": model.model_name, **info}, handle, indent=2, default=str)
        logger.info("Exported the adapted model to %s (load it with from_pretrained, or use it as MODEL_NAME)", target)
        return target
