"""
What decides whether `allennlp adapt` may reuse a phase's earlier run: a fingerprint of everything
that determines the phase (its resolved config, the contents of its input files and the
fingerprints of the phases it starts from), and, when the fingerprint changed, a description of
what changed for the log.

File contents are hashed once: `FileHashes` keeps each file's sha256 with its size and its
modification and status-change times, so a re-run over a corpus of tens of GB costs a `stat` per
file.
"""

import hashlib
import json
import logging
import os
from typing import Any, Dict, Iterable, Optional, Set

from dapt_plugin.common.atomic import atomic_file
from dapt_plugin.common.console import some_of
from dapt_plugin.data.token_cache import file_sha256

logger = logging.getLogger(__name__)

_LOG_HASHING_ABOVE = 1 << 30  # bytes; hashing a larger file takes long enough to say so


class FileHashes:
    """
    The sha256 of files, remembered by path, size, modification time and status-change time
    (nanoseconds). The last is the system's: a file written anew with its old size and its old
    modification time (`cp -p`, `rsync -a`, `touch -r`) is hashed again.

    # Parameters

    memo_path : `str`
        JSON file of the hashes computed before; read if it exists, written by `save`.
    """

    def __init__(self, memo_path: str) -> None:
        self.memo_path = memo_path
        self._memo: Dict[str, Dict[str, Any]] = {}
        if os.path.isfile(memo_path):
            with open(memo_path, encoding="utf-8") as handle:
                self._memo = json.load(handle)

    def sha256(self, path: str) -> str:
        key = os.path.abspath(path)
        stat = os.stat(key)
        version = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns,
        }
        known = self._memo.get(key)
        if known and all(known.get(name) == value for name, value in version.items()):
            return known["sha256"]
        if stat.st_size > _LOG_HASHING_ABOVE:
            logger.info(
                "hashing %s (%.1f GB) for the phases' fingerprints", path, stat.st_size / 1e9
            )
        digest = file_sha256(key)
        self._memo[key] = {**version, "sha256": digest}
        return digest

    def of(self, paths: Iterable[str]) -> Dict[str, str]:
        """`{path: sha256}` of files, and of every file under the directories among `paths`."""
        hashes = {}
        for path in paths:
            if os.path.isdir(path):
                for root, directories, files in os.walk(path):
                    directories.sort()
                    for name in sorted(files):
                        hashes[os.path.join(root, name)] = self.sha256(os.path.join(root, name))
            else:
                hashes[path] = self.sha256(path)
        return hashes

    def save(self) -> None:
        with atomic_file(self.memo_path) as handle:
            json.dump(self._memo, handle, indent=1, sort_keys=True)


# Settings that change where a run caches its data, how often it logs, checkpoints or exports
# along the way, or how many processes build its batches, never what it trains: a change of one
# alone runs no phase again (a new DAPT_PLUGIN_CACHE retrained every phase). (component type,
# key) -> the value they count as: the configs' default, so that earlier fingerprints hold.
_RUN_ONLY_SETTINGS = {
    ("masked_lm_corpus", "cache_directory"): None,
    ("masked_lm_batches", "num_workers"): 0,
    ("atomic", "save_every_num_batches"): None,
    ("atomic", "save_every_num_seconds"): None,
    ("export_pretrained", "every_num_steps"): None,
    ("training_curves", "log_every"): 50,
}


def determining_config(config: Any) -> Any:
    """`config` with its run-only settings (`_RUN_ONLY_SETTINGS`) at their defaults."""
    if isinstance(config, dict):
        kind = config.get("type")
        return {
            key: _RUN_ONLY_SETTINGS[(kind, key)]
            if (kind, key) in _RUN_ONLY_SETTINGS
            else determining_config(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [determining_config(value) for value in config]
    return config


# the variables that set them, left out of the reasons a phase is run again
RUN_ONLY_VARIABLES = (
    "DAPT_PLUGIN_CACHE",
    "NUM_WORKERS",
    "CHECKPOINT_EVERY_BATCHES",
    "CHECKPOINT_EVERY_SECONDS",
    "EXPORT_EVERY_STEPS",
    "LOG_EVERY",
)


def fingerprint(
    config: Dict[str, Any],
    inputs: Dict[str, str],
    upstream: Dict[str, str],
    whole: bool = False,
) -> str:
    """
    sha256 of a phase's resolved `config` (less its run-only settings, `determining_config`,
    unless `whole`), its `inputs` (`{path: sha256}`) and `upstream` (`{phase: fingerprint}` of
    the phases it starts from). `whole` gives the fingerprint of the versions before run-only
    settings were left out, which the markers of their experiments hold.
    """
    canonical = json.dumps(
        {
            "config": config if whole else determining_config(config),
            "inputs": inputs,
            "upstream": upstream,
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def describe_changes(
    old: Dict[str, Any], new: Dict[str, Any], variables: Optional[Set[str]] = None
) -> str:
    """
    What differs between two records of a phase (each with `settings`, `config`, `inputs` and
    `upstream`), in words: the variables among `variables` (those its config reads) that changed,
    else the config keys; the input files; the phases it starts from.
    """
    reasons = []
    if determining_config(old["config"]) != determining_config(new["config"]):
        changed = [
            f"{name} {old['settings'].get(name, 'unset')} -> {new['settings'].get(name, 'unset')}"
            for name in sorted(set(old["settings"]) | set(new["settings"]))
            if (variables is None or name in variables)
            and name not in RUN_ONLY_VARIABLES
            and old["settings"].get(name) != new["settings"].get(name)
        ]
        if not changed:
            old_config = _flatten(determining_config(old["config"]))
            new_config = _flatten(determining_config(new["config"]))
            changed = [
                f"{key} {_short(old_config.get(key, 'unset'))} -> {_short(new_config.get(key, 'unset'))}"
                for key in sorted(set(old_config) | set(new_config))
                if old_config.get(key) != new_config.get(key)
            ]
        reasons.append(f"the resolved config changed ({some_of(changed)})")
    if old["inputs"] != new["inputs"]:
        changed = sorted(
            path
            for path in set(old["inputs"]) | set(new["inputs"])
            if old["inputs"].get(path) != new["inputs"].get(path)
        )
        reasons.append(f"input files changed ({some_of(changed)})")
    for name in sorted(set(old["upstream"]) | set(new["upstream"])):
        if old["upstream"].get(name) != new["upstream"].get(name):
            reasons.append(f"it starts from {name}, which changed")
    return "; ".join(reasons) or "its fingerprint changed"


def _short(value: Any, length: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= length else text[: length - 3] + "..."


def _flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    """`{"a.b.0.c": leaf}`: every leaf of dictionaries and lists, by its path of keys and indices."""
    if isinstance(value, (dict, list)) and value:
        flat: Dict[str, Any] = {}
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}
