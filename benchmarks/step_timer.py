"""
A trainer callback for the benchmarks (loaded with `--include-package step_timer`, `benchmarks/`
on `PYTHONPATH`): records, for every optimizer step the trainer runs, the wall-clock time at its
end (after the GPU has finished it, on a GPU), the non-padding tokens of its batches, the
query-key pairs of their attention and their masked positions (what its model FLOPs depend on,
`_flops.py`) and the seconds the trainer spent waiting for the data
loader to hand over those batches, and, where the batches have a text field's mask (the
classifier's), the examples and the positions the model computed (padding included). Each process
appends to `<serialization_dir>/step_times.jsonl` one line when training starts (`on_start`: the
process's launch time and the time), one line per step, flushed at once, so a benchmark can watch a
run and kill it at a chosen step, and one line when training ends (`on_end`, after the last
validation), with the real tokens and the positions of every validation batch of the run (where
they have a text field's mask). Each step's line also has the process's CPU time at its end
(`cpu`), steadier than wall-clock time on a machine that other jobs share.

Throughput is taken between the end of the first step and the end of the last, so start-up
(imports, model building, the tokenization cache) and the first step's one-off costs are left out.
Replayed batches of `--recover` are skipped by the trainer before any callback sees them, so in a
recovered run the first entry is the first new step.
"""

import json
import os
import time
from typing import Any, Dict, Optional

import psutil
import torch
from _flops import BatchCounts, batch_counts
from allennlp.training.callbacks.callback import TrainerCallback

from dapt_plugin.nn.token_counts import count_tokens, real_token_mask


def _text_mask(batch: Dict[str, Any]) -> Optional[torch.Tensor]:
    """The mask of a batch's text field (`{"tokens": {"roberta": {"mask", ...}}}`), or None."""
    for value in batch.values():
        if isinstance(value, dict):
            mask = value.get("mask")
            if isinstance(mask, torch.Tensor):
                return mask
            mask = _text_mask(value)
            if mask is not None:
                return mask
    return None


def _flop_counts(batch_inputs, batch_outputs, pad_token_id: Optional[int]) -> BatchCounts:
    """
    What the model FLOPs of a step depend on (`_flops.batch_counts`), over its batches: the real
    tokens of each, and the masked positions where the model returns masked-LM labels.
    """
    total = BatchCounts(*[0] * len(BatchCounts._fields))
    for batch, output in zip(batch_inputs, batch_outputs):
        mask = real_token_mask(batch, pad_token_id)
        if mask is not None:
            labels = output.get("labels")
            is_mlm = isinstance(labels, torch.Tensor) and labels.shape == mask.shape
            total += batch_counts(mask, labels if is_mlm else None)
    return total


class _TimedLoader:
    """Wraps the trainer's data loader and adds up the time spent in `next()`."""

    def __init__(self, loader) -> None:
        self._loader = loader
        self.waited = 0.0

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self):
        iterator = iter(self._loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self.waited += time.perf_counter() - start
                return
            self.waited += time.perf_counter() - start
            yield batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


@TrainerCallback.register("step_timer")
class StepTimer(TrainerCallback):
    def __init__(self, serialization_dir: str) -> None:
        super().__init__(serialization_dir)
        self.launched = psutil.Process(os.getpid()).create_time()
        self.started: Optional[float] = None
        self._loader: Optional[_TimedLoader] = None
        self._waited_before = 0.0
        # the real tokens and the positions of the validation batches' texts
        self._validation = {"tokens": 0, "positions": 0}

    def _write(self, record: Dict[str, Any]) -> None:
        with open(os.path.join(self.serialization_dir, "step_times.jsonl"), "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self.started = time.time()
        self._loader = _TimedLoader(trainer.data_loader)
        trainer.data_loader = self._loader
        if is_primary:
            # the first Hugging Face model inside (the masked LM's, the classifier's encoder)
            config = next(
                (
                    module.config
                    for module in trainer.model.modules()
                    if hasattr(getattr(module, "config", None), "_attn_implementation")
                ),
                None,
            )
            self._write(
                {
                    "event": "start",
                    "pid": os.getpid(),
                    "launched": self.launched,
                    "started": self.started,
                    "attention": getattr(config, "_attn_implementation", None),
                    "fused_adamw": bool(trainer.optimizer.defaults.get("fused")),
                    "threads": torch.get_num_threads(),
                }
            )

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
        masks = [mask for mask in map(_text_mask, batch_inputs) if mask is not None]
        if not is_training:
            self._validation["tokens"] += sum(int(mask.sum()) for mask in masks)
            self._validation["positions"] += sum(mask.numel() for mask in masks)
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.time()
        tokenizer = getattr(trainer.model, "tokenizer", None)
        tokens = int(count_tokens(batch_inputs, getattr(tokenizer, "pad_token_id", None)) or 0)
        counts = _flop_counts(batch_inputs, batch_outputs, getattr(tokenizer, "pad_token_id", None))
        waited = self._loader.waited - self._waited_before if self._loader is not None else 0.0
        self._waited_before += waited
        if is_primary:
            self._write(
                {
                    "event": "step",
                    "step": trainer._total_batches_completed,
                    "end": now,
                    "cpu": time.process_time(),
                    "tokens": tokens,
                    "data_wait": waited,
                    **{field: getattr(counts, field) for field in BatchCounts._fields[1:]},
                    **(
                        {
                            "examples": sum(mask.shape[0] for mask in masks),
                            "positions": sum(mask.numel() for mask in masks),
                        }
                        if masks
                        else {}
                    ),
                }
            )

    def on_end(self, trainer, is_primary: bool = True, **kwargs) -> None:
        if is_primary:
            self._write(
                {
                    "event": "end",
                    "end": time.time(),
                    "validation_tokens": self._validation["tokens"],
                    "validation_positions": self._validation["positions"],
                }
            )
