import json
import logging
import os
from typing import Any, Dict, List, Optional

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dapt_plugin.common.atomic import atomic_directory
from dapt_plugin.common.config_variables import config_variables
from dapt_plugin.common.distributed import world_size
from dapt_plugin.data.text_files import expand_paths
from dapt_plugin.data.token_cache import file_sha256
from dapt_plugin.nn.encoder_pooler import checkpoint_pooler
from dapt_plugin.nn.token_counts import count_tokens
from dapt_plugin.training.callbacks.head_warmup import HeadWarmup
from dapt_plugin.training.checkpointers.atomic_checkpointer import BEST_WEIGHTS
from dapt_plugin.training.model_card import (
    command_line,
    config_of,
    file_facts,
    render_model_card,
    train_config_file,
    versions,
)

logger = logging.getLogger(__name__)


def save_verified(model, directory: str, extra: Optional[Dict[str, torch.Tensor]] = None) -> None:
    """
    `model.save_pretrained(directory)` in one safetensors file, with the tensors of `extra` beside
    `model`'s (weights the checkpoint keeps for other classes, such as the encoder's pooler), then
    a reload that must give back every tensor of `model`. transformers 4.49 drops tied duplicates
    from safetensors files and, on load, re-ties RoBERTa's `lm_head.bias` from the freshly
    initialised `lm_head.decoder.bias`, so an export would silently lose its trained output bias;
    such tensors are written into the file under their own names. Raises `RuntimeError` if the
    reload still differs, or the file lacks a tensor of `extra`.
    """
    expected = model.state_dict()
    model.save_pretrained(
        directory, max_shard_size="1000GB", state_dict={**expected, **(extra or {})}
    )
    path = os.path.join(directory, "model.safetensors")

    def mismatched():
        # loading initialises weights from the global generators: keep the run's random stream
        # (dropout, shuffling) exactly as it would be without exports
        with torch.random.fork_rng():
            reloaded = type(model).from_pretrained(directory).state_dict()
        return [
            k
            for k, v in expected.items()
            if k in reloaded and not torch.equal(v.detach().cpu(), reloaded[k])
        ]

    wrong = mismatched()
    if wrong:
        tensors = load_file(path)
        tensors.update({k: expected[k].detach().cpu().clone() for k in wrong})
        save_file(tensors, path, metadata={"format": "pt"})
        still_wrong = mismatched()
        if still_wrong:
            raise RuntimeError(
                f"the export in {directory} does not reload to the trained weights: {still_wrong}"
            )
    if extra:
        # only these tensors read back, not the whole file
        with safe_open(path, framework="pt") as written:
            names = set(written.keys())
            lost = [
                k
                for k, v in extra.items()
                if k not in names or not torch.equal(written.get_tensor(k), v)
            ]
        if lost:
            raise RuntimeError(f"the export in {directory} lacks the tensors {lost}")


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
    differ = [
        key
        for key, value in expected.items()
        if key.startswith(prefix)
        and not torch.equal(value, exported.get(key[len(prefix) :], torch.empty(0)))
    ]
    if differ:
        raise RuntimeError(
            f"the export {export} does not hold the weights of {weights_file} (which "
            f"model.tar.gz archives): {len(differ)} tensors differ, e.g. {differ[:3]}"
        )


@TrainerCallback.register("export_pretrained")
class ExportPretrained(TrainerCallback):
    """
    Exports the adapted encoder of a `dapt_masked_lm` model in Hugging Face's `save_pretrained`
    layout (config, weights with the masked-LM head, tokenizer), so that the next phase (TAPT,
    the classifier) or any `AutoModelForMaskedLM.from_pretrained` user loads it by path.

    A BERT-style checkpoint's pooler (a tanh layer over the first token's vector, trained in
    pre-training), which masked-LM training neither uses nor changes, is written into every export
    as the run's `MODEL_NAME` holds it, so that the encoder a classifier loads from the export
    (`AutoModel`, `CLASSIFIER_HEAD=bert`) differs from `MODEL_NAME`'s only in what DAPT or TAPT
    trained, not also in a pooler started at random.

    Every export holds a model card (`README.md`, as the Hub renders it) and `dapt_export.json`
    with the same facts in machine form (see `dapt_plugin/training/model_card.py`): base model,
    training and held-out files with sizes and content hashes, steps, tokens trained on (in a
    distributed run, the primary worker's times the number of workers), batch, learning rate,
    masking, head warm-up, final and held-out losses, versions, the command and the config.

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

    def __init__(
        self,
        serialization_dir: str,
        directory_name: str = "exported_model",
        every_num_steps: Optional[int] = None,
    ) -> None:
        super().__init__(serialization_dir)
        if every_num_steps is not None and every_num_steps < 1:
            raise ConfigurationError(
                f"`every_num_steps` must be at least 1, or null; got {every_num_steps}"
            )
        if not directory_name or os.sep in directory_name:
            raise ConfigurationError(
                f"`directory_name` must be a plain directory name; got {directory_name!r}"
            )
        self.directory_name = directory_name
        self.every_num_steps = every_num_steps
        self._tokens_seen = 0
        self._data: Optional[Dict[str, List[Dict[str, Any]]]] = None
        self._pooler: Dict[str, torch.Tensor] = {}  # `MODEL_NAME`'s, for every export
        # the variables of the config `allennlp train CONFIG` evaluates, as set: for the card's command
        config_file = train_config_file()
        names = (
            config_variables(config_file) if config_file and os.path.isfile(config_file) else set()
        )
        self._environment = {name: os.environ[name] for name in names if os.environ.get(name)}

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        if not (hasattr(trainer.model, "mlm") and hasattr(trainer.model, "tokenizer")):
            raise ConfigurationError(
                "the `export_pretrained` callback exports a `dapt_masked_lm` model; the model is a "
                f"{type(trainer.model).__name__}. Remove the callback from this config."
            )
        if is_primary:
            self._pooler = checkpoint_pooler(trainer.model.mlm, trainer.model.model_name)

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
        self._tokens_seen += int(
            count_tokens(batch_inputs, trainer.model.tokenizer.pad_token_id) or 0
        )
        if not is_primary or self.every_num_steps is None:
            return
        step = trainer._total_batches_completed
        if step % self.every_num_steps == 0:
            self.export(
                trainer, f"{self.directory_name}_step_{step}", {"step": step, "epoch": epoch}
            )

    def on_end(
        self,
        trainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if not is_primary or metrics is None:
            return
        target = self.export(trainer, self.directory_name, {"epoch": epoch, "metrics": metrics})
        check_same_weights(
            type(trainer.model.mlm), target, os.path.join(self.serialization_dir, BEST_WEIGHTS)
        )

    def export(self, trainer, name: str, info: Dict[str, Any]) -> str:
        """Writes the export `name` of the trainer's model atomically, with its model card; returns its path."""
        model = trainer.model
        target = os.path.join(self.serialization_dir, name)
        facts = {"base_model": model.model_name, **info, **self._facts(trainer)}
        with atomic_directory(target) as tmp:
            save_verified(model.mlm, tmp, extra=self._pooler)
            model.tokenizer.save_pretrained(tmp)
            with open(os.path.join(tmp, "dapt_export.json"), "w") as handle:
                json.dump(facts, handle, indent=2, default=str)
            with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as handle:
                handle.write(render_model_card(facts, name))
        logger.info(
            "Exported the adapted model to %s (load it with from_pretrained, or use it as MODEL_NAME)",
            target,
        )
        return target

    def _facts(self, trainer) -> Dict[str, Any]:
        """What the model card and `dapt_export.json` record of the run, less its metrics."""
        model, loader = trainer.model, trainer.data_loader
        if self._data is None:  # hashed once per run
            self._data = {"train": self._files(loader)}
            if trainer._validation_data_loader is not None:
                self._data["heldout"] = self._files(trainer._validation_data_loader)
        world = world_size()
        config = config_of(self.serialization_dir)
        return {
            "data": self._data,
            "training": {
                "steps": trainer._total_batches_completed,
                "tokens_seen": self._tokens_seen * world,
                "workers": world,
                "effective_batch": loader.batch_size
                * world
                * trainer._num_gradient_accumulation_steps,
                "max_length": loader.reader.max_length,
                "mode": loader.reader.mode,
                "learning_rate": trainer.optimizer.defaults["lr"],
                "masking": {
                    "mlm_probability": model.mlm_probability,
                    "mask_replace_prob": model.mask_replace_prob,
                    "random_replace_prob": model.random_replace_prob,
                    "whole_word_masking": model._word_starts is not None,
                },
                "head_missing_weights": len(model.missing_head_weights),
                "head_warmup_steps": self._head_warmup_steps(trainer),
            },
            "versions": versions(),
            "command": command_line(self._environment),
            "config": config,
        }

    @staticmethod
    def _files(loader) -> List[Dict[str, Any]]:
        return [file_facts(path, file_sha256(path)) for path in expand_paths(loader.data_path)]

    @staticmethod
    def _head_warmup_steps(trainer) -> int:
        return sum(c.steps for c in trainer._callbacks if isinstance(c, HeadWarmup))

    def state_dict(self) -> Dict[str, Any]:
        return {"tokens_seen": self._tokens_seen}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._tokens_seen = state_dict["tokens_seen"]
