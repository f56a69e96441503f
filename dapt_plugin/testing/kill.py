"""
Killing `allennlp` runs at chosen moments and comparing what they leave with an uninterrupted
run: the kill-and-recover tests and `benchmarks/kill_matrix.py`.

A run is killed by itself (`install_kill_at`, installed in its process before `allennlp` starts) with
SIGKILL just before a file or directory takes its final name, so the moment is exact and
repeatable: "between the epoch checkpoint and best.th" is `link:best.th`, "while model.tar.gz is
written" is `replace:model.tar.gz` (the complete temporary file is there, the archive is not), and
so on.
"""

import functools
import hashlib
import io
import json
import os
import re
import signal
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from safetensors.torch import load_file

from dapt_plugin.common.launch import run_allennlp_preloaded

# metrics that measure time or memory, which no two runs share
VOLATILE_METRICS = ("training_duration", "epoch_duration")
VOLATILE_SUFFIXES = ("_memory_MB", "_seconds")


def install_kill_at(spec: str) -> None:
    """
    Makes this process kill itself with SIGKILL at the moment `spec` names, as a preempted node or
    an out-of-memory kill would: `<operation>:<pattern>[:<n>]` is just before the n-th (default
    first) `os.replace` (operation `replace`) or `os.link` (operation `link`) whose destination's
    file name matches the regular expression `pattern` in full. A replace is how every file and
    directory of the plugin takes its final name, so the moment is "the new content is written but
    not in place".
    """
    operation, pattern, *count = spec.split(":")
    remaining = [int(count[0]) if count else 1]
    original = getattr(os, operation)

    def guarded(source, destination, *args, **kwargs):
        if re.fullmatch(pattern, os.path.basename(os.fspath(destination).rstrip(os.sep))):
            remaining[0] -= 1
            if remaining[0] == 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(source, destination, *args, **kwargs)

    setattr(os, operation, guarded)


def run_killed_at(
    args: Sequence[str],
    env: Dict[str, str],
    cwd: Path,
    kill_at: Optional[str] = None,
    log: Optional[Path] = None,
) -> int:
    """
    Runs `allennlp ARGS` in a process of its own (`common.launch.run_allennlp_preloaded`, one thread
    unless `env` says otherwise, output appended to `log` or dropped), killing it with SIGKILL at
    `kill_at` (see `install_kill_at`) if given. Returns the exit code (-9 when killed).
    """
    prepare = functools.partial(install_kill_at, kill_at) if kill_at is not None else None
    return run_allennlp_preloaded(
        args, {"OMP_NUM_THREADS": "1", **env}, cwd=cwd, log=log or os.devnull, prepare=prepare
    )


def without_volatile(metrics: Dict) -> Dict:
    return {
        k: v
        for k, v in metrics.items()
        if k not in VOLATILE_METRICS and not k.endswith(VOLATILE_SUFFIXES)
    }


def _digest(tensors: Dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(
            tensors[key].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def outcome(run: Path) -> Dict:
    """
    What a finished training run leaves that a user relies on, in comparable form: the final and
    per-epoch metrics less timings, a digest of the weights in `model.tar.gz`, and of the export
    and its `dapt_export.json` (less timings) when there is one.
    """
    result: Dict = {"metrics": without_volatile(json.loads((run / "metrics.json").read_text()))}
    for path in sorted(run.glob("metrics_epoch_*.json")):
        result[path.name] = without_volatile(json.loads(path.read_text()))
    with tarfile.open(run / "model.tar.gz") as archive:
        weights = torch.load(
            io.BytesIO(archive.extractfile("weights.th").read()), weights_only=True
        )
        result["archive_files"] = sorted(archive.getnames())
    result["archive_weights"] = _digest(weights)
    export = run / "exported_model"
    if export.exists():
        result["export_weights"] = _digest(load_file(str(export / "model.safetensors")))
        info = json.loads((export / "dapt_export.json").read_text())
        info["metrics"] = without_volatile(info.get("metrics") or {})
        # the command names the run's own directory; a resumed run's is its first command's
        assert "--recover" not in info.pop("command")
        result["dapt_export"] = info
    return result


def leftovers(run: Path) -> List[str]:
    """Files a killed writer left: temporary names, and training states without their model state."""
    found = [
        p.name
        for p in run.iterdir()
        if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name)
    ]
    for state in run.glob("training_state_e*_b*.th"):
        if not (run / state.name.replace("training_state", "model_state")).exists():
            found.append(state.name)
    return sorted(found)


KILLED = -signal.SIGKILL
