"""
Self-contained archives: a `model.tar.gz` carries the configuration and tokenizer files of every
encoder directory its config names (`model_name` of tokenizers, token indexers, embedders, the
masked-LM reader and model), and loads from that copy, so it still loads after the directory
(e.g. `runs/dapt/exported_model`) is moved or deleted, from any working directory, offline.

Without this, the archive's `config.json` names the encoder by the path it had at training time,
and `allennlp evaluate`/`predict` failed with "MODEL_NAME 'runs/.../exported_model': no such
directory" once that path was gone (or relative to another directory).

Writing: before an archive is written, the files of each such directory except its weights (which
the archive's state dict already holds) are copied to `<serialization_dir>/encoders/<name>-<hash>/`,
which goes into the archive. Loading: every `model_name` the archive holds a copy for is read from
the extracted copy; the components of the model build their transformer from its config alone
(`load_weights: false`) and then receive the archived weights. `config.json` keeps the original
names, as the record of what the run started from. Model-hub names (`roberta-base`) are left as
they are: transformers finds them in its cache or on the hub, as before.

The patch of allennlp's `archive_model` and archive loading that calls `copy_encoders` and
`use_archived_encoders` is in `dapt_plugin/compat.py`.
"""

import hashlib
import json
import logging
import os
import shutil
from typing import Any, Iterator, List, Tuple

from allennlp.common import cached_transformers
from allennlp.common.params import Params

from dapt_plugin.common.atomic import atomic_directory, remove_leftovers
from dapt_plugin.common.pretrained import looks_like_path

logger = logging.getLogger(__name__)

ENCODERS_DIRECTORY = "encoders"

# Model components that can build their transformer from its config alone (`load_weights`).
_BUILT_FROM_CONFIG = {
    "pretrained_transformer",
    "pretrained_transformer_mismatched",
    "dapt_masked_lm",
}
# What a model directory holds besides its config and tokenizer: weights, never archived twice.
_WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".msgpack",
    ".onnx",
    ".gguf",
    ".index.json",
)


def archived_name(model_name: str) -> str:
    """The directory under `encoders/` that holds the copy of the encoder `model_name`."""
    base = os.path.basename(os.path.normpath(os.path.expanduser(model_name))) or "encoder"
    return f"{base}-{hashlib.sha256(model_name.encode('utf-8')).hexdigest()[:12]}"


def _model_name_holders(config: dict) -> Iterator[Tuple[dict, bool]]:
    """Every dict in `config` with a string `model_name`, and whether it is part of the model."""
    for key, value in config.items():
        for holder in _dicts_with_model_name(value):
            yield holder, key == "model"


def _dicts_with_model_name(value: Any) -> Iterator[dict]:
    if isinstance(value, dict):
        if isinstance(value.get("model_name"), str):
            yield value
        values = list(value.values())
    else:
        values = value if isinstance(value, list) else []
    for item in values:
        yield from _dicts_with_model_name(item)


def copy_encoders(serialization_dir: str) -> bool:
    """
    Copies the config and tokenizer files of every local encoder directory named in
    `<serialization_dir>/config.json` to `<serialization_dir>/encoders/`; returns whether that
    directory holds any copy. A directory that no longer exists keeps the copy made before.
    """
    with open(os.path.join(serialization_dir, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    names = {holder["model_name"] for holder, _ in _model_name_holders(config)}
    encoders = os.path.join(serialization_dir, ENCODERS_DIRECTORY)
    remove_leftovers(encoders)  # a copy that a kill interrupted would go into the archive
    for name in sorted(names):
        source = os.path.expanduser(name)
        if not looks_like_path(name) or not os.path.isdir(source):
            continue
        os.makedirs(encoders, exist_ok=True)
        with atomic_directory(os.path.join(encoders, archived_name(name))) as copy:
            for file_name in sorted(os.listdir(source)):
                path = os.path.join(source, file_name)
                if os.path.isfile(path) and not file_name.endswith(_WEIGHT_SUFFIXES):
                    shutil.copy(path, os.path.join(copy, file_name))
        logger.info("Archiving the config and tokenizer of %s", name)
    return os.path.isdir(encoders)


def use_archived_encoders(config: Params, serialization_dir: str) -> List[str]:
    """
    Points every `model_name` of `config` (in place) that has a copy under
    `<serialization_dir>/encoders/` to that copy, and has the model's components build their
    transformer from its config alone. Returns the copies used.
    """
    used = []
    for holder, in_model in _model_name_holders(config.params):
        copy = os.path.join(
            serialization_dir, ENCODERS_DIRECTORY, archived_name(holder["model_name"])
        )
        if not os.path.isdir(copy):
            continue
        if in_model:
            if holder.get("type") not in _BUILT_FROM_CONFIG:
                continue  # a component that needs the weights files: it keeps the original name
            holder["load_weights"] = False
        holder["model_name"] = copy
        used.append(copy)
    return used


def forget_copies(copies: List[str]) -> None:
    """
    Drops allennlp's cached transformers and tokenizers of `copies`: each load extracts the
    archive to a new temporary directory, so nothing would ever use them again.
    """
    for spec in [spec for spec in cached_transformers._model_cache if spec.model_name in copies]:
        del cached_transformers._model_cache[spec]
    for key in [key for key in cached_transformers._tokenizer_cache if key[0] in copies]:
        del cached_transformers._tokenizer_cache[key]
