"""Helpers of the batch samplers' tests."""

import numpy as np
from allennlp.data import Instance
from allennlp.data.fields import LabelField, TextField
from allennlp.data.tokenizers import Token


def task_like_instances(count: int = 203, seed: int = 0):
    """Texts of 3 to 120 tokens, lognormal around 40, as a classification task's."""
    lengths = np.clip(np.random.default_rng(seed).lognormal(np.log(35), 0.55, count), 3, 120)
    return [
        Instance(
            {
                "tokens": TextField([Token(f"w{j}") for j in range(int(length))]),
                "label": LabelField("a"),
            }
        )
        for length in lengths
    ]


def padding_share(batches, instances) -> float:
    """The share of the positions of `batches` (each padded to its longest) that are padding."""
    lengths = [len(instance["tokens"]) for instance in instances]
    real = sum(lengths[i] for batch in batches for i in batch)
    computed = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - real / computed
