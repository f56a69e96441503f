"""
The pooler of a BERT-style checkpoint (BERT's tanh layer over the first token's vector, trained
in pre-training), which a masked LM loaded from that checkpoint leaves out, and its exports
would lose.
"""

import re
from typing import Dict

import torch
import transformers
from transformers import PreTrainedModel

from dapt_plugin.common.console import quiet_logger


def checkpoint_pooler(model: PreTrainedModel, model_name: str) -> Dict[str, torch.Tensor]:
    """
    The pooler weights of the checkpoint `model_name`, from which the masked LM `model` was
    loaded, named as in `model`'s own checkpoints (`bert.pooler.dense.weight`): written into an
    export beside `model`'s weights, they make the export's encoder (`AutoModel`) the checkpoint's
    with only what masked-LM training changed. None when the checkpoint has no pooler, or
    `model`'s kind of encoder has none (ELECTRA).

    Loads the checkpoint's encoder once more (`model`'s encoder class, so a model with its own
    code needs no new permission), without touching the global random generators.
    """
    encoder_class = type(model.base_model)
    with torch.random.fork_rng(), quiet_logger(transformers.modeling_utils.logger):
        encoder, loading = encoder_class.from_pretrained(model_name, output_loading_info=True)
    pooler = {
        name: tensor.detach().clone()
        for name, tensor in encoder.state_dict().items()
        if name.startswith("pooler.")
    }
    # named with the model's prefix or without, as the checkpoint names its weights
    if any(re.search(r"(^|\.)pooler\.", name) for name in loading["missing_keys"]):
        return {}  # initialised at random: the checkpoint has none
    return {f"{model.base_model_prefix}.{name}": tensor for name, tensor in pooler.items()}
