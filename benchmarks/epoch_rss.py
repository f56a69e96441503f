"""
A trainer callback for `benchmarks/memory.py` (loaded with `--include-package epoch_rss`,
`benchmarks/` on `PYTHONPATH`): appends the process's resident set size (`psutil`'s RSS, in MiB)
to `<serialization_dir>/rss.jsonl` when training starts and at the end of every epoch.
"""

import json
import os

import psutil
from allennlp.training.callbacks.callback import TrainerCallback


@TrainerCallback.register("epoch_rss")
class EpochRss(TrainerCallback):
    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        self._record(epoch=0)

    def on_epoch(self, trainer, metrics, epoch: int, is_primary: bool = True, **kwargs) -> None:
        self._record(epoch=epoch + 1)

    def _record(self, epoch: int) -> None:
        rss = psutil.Process(os.getpid()).memory_info().rss / 2**20
        with open(os.path.join(self.serialization_dir, "rss.jsonl"), "a") as handle:
            handle.write(json.dumps({"epoch": epoch, "rss_mb": rss}) + "\n")
