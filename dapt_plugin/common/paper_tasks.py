"""
The paper's nine classification tasks by name, as the original's `--dataset` gave them: where their
files are, their size and the paper's metric. `task_files(name)` finds a task's `train`, `dev` and
`test` jsonl files in the local mirror `$DAPT_PLUGIN_DATA` or downloads them once, with
`cached_path`, into AllenNLP's cache.
"""

import os
from dataclasses import dataclass
from typing import Dict, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.common.file_utils import CACHE_DIRECTORY, cached_path
from cached_path import find_latest_cached

# a directory or a URL (file://, https://) holding `<task>/train.jsonl`, `dev.jsonl`, `test.jsonl`
MIRROR_VARIABLE = "DAPT_PLUGIN_DATA"
SPLITS = ("train", "dev", "test")
# allenai/dont-stop-pretraining, environments/datasets.py: every task's `data_dir`
ORIGINAL_URL = "https://s3-us-west-2.amazonaws.com/allennlp/dont_stop_pretraining/data"


@dataclass(frozen=True)
class PaperTask:
    """One task of the paper: its domain (of Table 5), training set size and metric."""

    domain: str
    # `dataset_size` of the original's environments/datasets.py: examples in train.jsonl
    size: int
    # the paper's: micro F1 for ChemProt and RCT, macro F1 for the other tasks
    metric: str


TASKS: Dict[str, PaperTask] = {
    "chemprot": PaperTask("biomed", 4169, "micro_f1"),
    "rct-20k": PaperTask("biomed", 180040, "micro_f1"),
    "rct-sample": PaperTask("biomed", 500, "micro_f1"),
    "citation_intent": PaperTask("cs", 1688, "macro_f1"),
    "sciie": PaperTask("cs", 3219, "macro_f1"),
    "ag": PaperTask("news", 115000, "macro_f1"),
    "hyperpartisan_news": PaperTask("news", 500, "macro_f1"),
    "imdb": PaperTask("reviews", 20000, "macro_f1"),
    "amazon": PaperTask("reviews", 115251, "macro_f1"),
}


def paper_task(name: str) -> PaperTask:
    """The task `name`; an unknown name is a `ConfigurationError` listing the names."""
    if name not in TASKS:
        raise ConfigurationError(
            f"unknown task {name!r}; the paper's tasks are {', '.join(TASKS)} (for another task, "
            "give its own train, dev and test files)"
        )
    return TASKS[name]


def task_files(name: str) -> Dict[str, str]:
    """
    The `train`, `dev` and `test` files of the paper's task `name`: from the mirror
    `$DAPT_PLUGIN_DATA/<name>/` when it has the task, else downloaded once from the original's URL
    into AllenNLP's cache (offline, with `HF_HUB_OFFLINE=1`, only what is already cached).
    """
    paper_task(name)
    mirror = os.environ.get(MIRROR_VARIABLE, "")
    if mirror and "://" not in mirror:
        directory = os.path.join(os.path.expanduser(mirror), name)
        if os.path.isdir(directory):
            files = {split: os.path.join(directory, f"{split}.jsonl") for split in SPLITS}
            missing = [path for path in files.values() if not os.path.isfile(path)]
            if missing:
                raise ConfigurationError(
                    f"task {name!r}: the mirror {MIRROR_VARIABLE}={mirror} lacks {missing}; "
                    f"a task's mirror holds {', '.join(f'{s}.jsonl' for s in SPLITS)}"
                )
            return files
    base = mirror.rstrip("/") if "://" in mirror else ORIGINAL_URL
    return {split: _fetch(name, f"{base}/{name}/{split}.jsonl") for split in SPLITS}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def _fetch(name: str, url: str) -> str:
    cached: Optional[os.PathLike] = None
    error = "offline (HF_HUB_OFFLINE is set)"
    if _offline() and not url.startswith("file://"):
        cached = find_latest_cached(url, CACHE_DIRECTORY)
    else:
        try:
            return str(cached_path(url))
        except (OSError, ValueError, ConnectionError) as failure:
            error = f"{type(failure).__name__}: {failure}"
    if cached is not None:
        return str(cached)
    raise ConfigurationError(
        f"task {name!r}: cannot read {url} ({error}). Make a local mirror: put the task's "
        f"{', '.join(f'{s}.jsonl' for s in SPLITS)} (from {ORIGINAL_URL}/{name}/ on a machine "
        f"with network) in <dir>/{name}/ and set {MIRROR_VARIABLE}=<dir>"
    )
