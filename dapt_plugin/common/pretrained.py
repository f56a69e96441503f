"""
Checks on a `MODEL_NAME` before transformers sees it (every load through allennlp's
`cached_transformers` makes them: see `dapt_plugin/compat.py`). transformers treats a name it cannot find
on disk as a model-hub id and, offline, fails with a message about the hub; a path that does not
exist, or an export that lacks its weights or tokenizer, deserves an error that says so. And a
model directory with its own Python code (`auto_map`) is loaded only when the caller passes
`trust_remote_code=True` (`TRUST_REMOTE_CODE=true` in the configs): transformers would otherwise
ask on a terminal whether to run the code.
"""

import json
import os
from typing import Iterable, Optional

from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig
from transformers.utils import cached_file, is_offline_mode

# models whose position ids start after the padding index, so that `max_position_embeddings`
# holds that many positions no token can take
_POSITIONS_AFTER_PADDING = ("roberta", "xlm-roberta", "camembert", "longformer")

_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)
_FIX = (
    "give a directory written by `save_pretrained` (such as the `exported_model` directory of an "
    "MLM run, see README) or a model-hub name such as roberta-base"
)


def looks_like_path(name: str) -> bool:
    """True for names that can only be paths: absolute, `./`, `~`, or with more than one `/`."""
    return name.startswith((os.sep, ".", "~")) or name.count("/") > 1 or os.path.exists(name)


def check_model_name(
    name: str, parts: Iterable[str] = ("model", "tokenizer"), loading: bool = True
) -> None:
    """
    Raises `ConfigurationError` when `name` is a path that does not exist, or a directory missing
    what `parts` ("config": config; "model": config and weights; "tokenizer": config and
    tokenizer files) needs; when `loading` it, also for a model-hub name that neither the local
    Hugging Face cache nor the hub gives (offline, `HF_HUB_OFFLINE`, the cache alone), where
    transformers failed with a traceback (a mistyped relative directory with one `/`,
    `runs/dapt`, reads as a hub name).
    """
    if not looks_like_path(name):
        if loading:
            try:
                # the local cache first: no request to the hub for a model it holds
                cached_file(name, "config.json", local_files_only=True)
                return
            except (OSError, ValueError):
                pass
            try:
                cached_file(name, "config.json")
            except (OSError, ValueError) as error:  # not there, or not even a valid hub name
                if is_offline_mode():
                    raise ConfigurationError(
                        f"MODEL_NAME {name!r}: no such directory, and no model of that name in "
                        f"the local Hugging Face cache, the only place the hub is read from "
                        f"offline (HF_HUB_OFFLINE); {_FIX}"
                    ) from None
                # transformers' first line says why: no connection, no such repository, ...
                reason = str(error).strip().split("\n")[0] or type(error).__name__
                raise ConfigurationError(
                    f"MODEL_NAME {name!r}: no such directory, and the model hub did not give a "
                    f"model of that name ({reason}); {_FIX}"
                ) from None
        return
    path = os.path.expanduser(name)
    if os.path.isfile(path):  # the run's `model.tar.gz`, its `best.th`, a weights file...
        export = os.path.join(os.path.dirname(name), "exported_model")
        raise ConfigurationError(
            f"MODEL_NAME {name!r} is a file, not a model directory; "
            + (
                f"the encoder of the run it is in is {export!r}"
                if os.path.isdir(os.path.join(os.path.dirname(path), "exported_model"))
                else _FIX
            )
        )
    if not os.path.isdir(path):
        raise ConfigurationError(f"MODEL_NAME {name!r}: no such directory; {_FIX}")
    files = set(os.listdir(path))
    if parts and "config.json" in files and files & {"out.log", "model.tar.gz", "best.th"}:
        # `allennlp train`'s directory, whose config.json is the training config
        export = os.path.join(name, "exported_model")
        raise ConfigurationError(
            f"MODEL_NAME {name!r} is the directory of an `allennlp train` run, not a model; "
            + (
                f"its encoder is {export!r}"
                if os.path.isdir(os.path.join(path, "exported_model"))
                else "a masked-LM run writes its encoder to `exported_model` in it, which this "
                "one has not (yet) written"
            )
        )
    missing = []
    if parts and "config.json" not in files:
        missing.append("config.json")
    if "model" in parts and not files.intersection(_WEIGHT_FILES):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if "tokenizer" in parts and not files.intersection(_TOKENIZER_FILES):
        missing.append(
            "tokenizer files (tokenizer.json, vocab.json and merges.txt, vocab.txt, or a "
            "sentencepiece model)"
        )
    if missing:
        raise ConfigurationError(
            f"MODEL_NAME {name!r} is not a complete model directory: missing {', '.join(missing)}; "
            f"it may be a partial copy or an interrupted export; {_FIX}"
        )


def check_remote_code(name: str, trust_remote_code: bool) -> None:
    """
    Raises `ConfigurationError` when `name` is a model directory that brings its own code
    (`auto_map` in its `config.json` or `tokenizer_config.json`) and `trust_remote_code` is off.
    """
    if trust_remote_code or not looks_like_path(name):
        return
    for file_name in ("config.json", "tokenizer_config.json"):
        path = os.path.join(os.path.expanduser(name), file_name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                if "auto_map" in json.load(handle):
                    raise ConfigurationError(
                        f"MODEL_NAME {name!r} brings its own Python code (`auto_map` in {file_name}), "
                        "which loading it would run; set TRUST_REMOTE_CODE=true (`trust_remote_code` "
                        "in the config) only if you trust where the directory comes from"
                    )


def position_limit(model_name: str, model_max_length: Optional[int] = None) -> int:
    """
    The most tokens, special tokens included, that `model_name` takes in one sequence: its
    `max_position_embeddings` (less the positions RoBERTa and kin skip), at most the tokenizer's
    `model_max_length` when given (the loaded tokenizer's; transformers' "no limit" is a huge
    number); 10**9 when neither bounds it. Read from `config.json` alone: no model code runs.
    """
    config, _ = PretrainedConfig.get_config_dict(model_name)
    limit = config.get("max_position_embeddings") or 10**9
    if config.get("model_type") in _POSITIONS_AFTER_PADDING:
        limit -= (config.get("pad_token_id") or 0) + 1
    if model_max_length is not None and model_max_length < 10**6:
        limit = min(limit, model_max_length)
    return limit
