"""
A trainer callback for the benchmarks (loaded with `--include-package step_timer`, `benchmarks/`
on `PYTHONPATH`): records, for every optimizer step the trainer runs, the wall-clock time at its
end, the non-padding tokens of its batches and the seconds the trainer spent waiting for the data
loader to hand over those batches. Each process appends to `<serialization_dir>/step_times.jsonl`
one line when training starts (`on_start`: the process's launch time and the time) and one line
per step, flushed at once, so a benchmark can watch a run and kill it at a chosen step.

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
from allennlp.training.callbacks.callback import TrainerCallback

from dapt_plugin.nn.token_counts import count_tokens


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

    def _write(self, record: Dict[str, Any]) -> None:
        with open(os.path.join(self.serialization_dir, "step_times.jsonl"), "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self.started = time.time()
        self._loader = _TimedLoader(trainer.data_loader)
        trainer.data_loader = self._loader
        if is_primary:
            mlm = getattr(trainer.model, "mlm", None)
            self._write(
                {
                    "event": "start",
                    "pid": os.getpid(),
                    "launched": self.launched,
                    "started": self.started,
                    "attention": getattr(
                        getattr(mlm, "config", None), "_attn_implementation", None
                    ),
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
        if not is_training:
            return
        now = time.time()
        tokens = int(count_tokens(batch_inputs, trainer.model.tokenizer.pad_token_id) or 0)
        waited = self._loader.waited - self._waited_before if self._loader is not None else 0.0
        self._waited_before += waited
        if is_primary:
            self._write(
                {
                    "event": "step",
                    "step": trainer._total_batches_completed,
                    "end": now,
                    "tokens": tokens,
                    "data_wait": waited,
                }
            )
