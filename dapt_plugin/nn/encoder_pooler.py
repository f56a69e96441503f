"""
The pooler of a BERT-style checkpoint (BERT's tanh layer over the first token's vector, trained
in pre-training), which a masked LM loaded from that checkpoint leaves out, and its exports
would lose.
"""

import json
import re
from typing import Dict, Optional

import torch
import transformers
from transformers import PreTrainedModel

from dapt_plugin.common.console import quiet_logger

# the name of a pooler weight, with the model's prefix (`bert.pooler.dense.weight`) or without
POOLER_WEIGHT = re.compile(r"(^|\.)pooler\.")


def checkpoint_pooler(model: PreTrainedModel, model_name: str) -> Dict[str, torch.Tensor]:
    """
    The pooler weights of the checkpoint `model_name`, from which the masked LM `model` was
    loaded, named as in `model`'s own checkpoints (`bert.pooler.dense.weight`): written into an
    export beside `model`'s weights, they make the export's encoder (`AutoModel`) the checkpoint's
    with only what masked-LM training changed. None when the checkpoint has no pooler, or
    `model`'s kind of encoder has none (ELECTRA).

    Loads the checkpoint's encoder once more (`model`'s encoder class, so a model with its own
    code needs no new permission), without touching the global random generators, unless the
    names in its weight files show that it has no pooler (`checkpoint_has_pooler`).
    """
    if checkpoint_has_pooler(model_name) is False:
        return {}
    encoder_class = type(model.base_model)
    with torch.random.fork_rng(), quiet_logger(transformers.modeling_utils.logger):
        encoder, loading = encoder_class.from_pretrained(model_name, output_loading_info=True)
    pooler = {
        name: tensor.detach().clone()
        for name, tensor in encoder.state_dict().items()
        if name.startswith("pooler.")
    }
    if any(POOLER_WEIGHT.search(name) for name in loading["missing_keys"]):
        return {}  # initialised at random: the checkpoint has none
    return {f"{model.base_model_prefix}.{name}": tensor for name, tensor in pooler.items()}


# a checkpoint's weight files, the index of a sharded one first
_WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


def checkpoint_has_pooler(model_name: str) -> Optional[bool]:
    """
    Whether the checkpoint `model_name` (a directory, or a model-hub name in the local cache)
    holds pooler weights, read from its weight files' names without loading them; None where it
    has no weight files to tell (an archive's copy of an encoder: its config and tokenizer only).
    """
    from safetensors import safe_open
    from transformers.utils import cached_file

    for name in _WEIGHT_FILES:
        path = cached_file(
            model_name,
            name,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
        if path is None:
            continue
        if name.endswith(".json"):
            with open(path, encoding="utf-8") as handle:
                keys = list(json.load(handle)["weight_map"])
        elif name.endswith(".safetensors"):
            with safe_open(path, framework="pt") as weights:
                keys = list(weights.keys())
        else:
            keys = list(torch.load(path, map_location="meta", weights_only=True))
        return any(POOLER_WEIGHT.search(key) for key in keys)
    return None
