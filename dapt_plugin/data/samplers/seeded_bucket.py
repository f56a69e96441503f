from typing import Iterator, List, Sequence

import numpy as np
from allennlp.common.checks import ConfigurationError
from allennlp.data.fields import SequenceField
from allennlp.data.instance import Instance
from allennlp.data.samplers.batch_sampler import BatchSampler

from dapt_plugin.data.samplers.seeded_shuffle import SeededShuffleBatchSampler


def instance_length(instance: Instance) -> int:
    """The length of an instance's longest sequence field (the text, for the classifier)."""
    return max(
        (len(field) for field in instance.fields.values() if isinstance(field, SequenceField)),
        default=0,
    )


def check_padding_noise(padding_noise: float) -> None:
    """Raises `ConfigurationError` unless `padding_noise` is in `[0, 1)`."""
    if not 0 <= padding_noise < 1:
        raise ConfigurationError(f"`padding_noise` must be in [0, 1); got {padding_noise}")


def noisy_length_order(
    lengths: np.ndarray, padding_noise: float, rng: np.random.Generator
) -> np.ndarray:
    """
    The indices that sort `lengths`, each multiplied by a factor drawn from `rng` in
    `[1 - padding_noise, 1 + padding_noise]`, so that items of nearby lengths mix; ties keep their
    order.
    """
    noise = rng.uniform(1 - padding_noise, 1 + padding_noise, len(lengths))
    return np.argsort(np.asarray(lengths, dtype=np.float64) * noise, kind="stable")


@BatchSampler.register("seeded_bucket")
class SeededBucketBatchSampler(SeededShuffleBatchSampler):
    """
    Batches of instances of about the same length, in a new random order in every pass, as
    AllenNLP's `bucket` sampler (and the original repository's bucket iterator) make them, so that
    a batch padded to its longest text holds little padding; except that, as with `seeded_shuffle`,
    pass `k` is a function of `seed` and `k` alone, so the replay of `allennlp train --recover`
    draws nothing and a resumed run trains on the batches of the uninterrupted one.

    Each pass sorts the instances by their length (of their longest sequence field, the text)
    times a random factor in `[1 - padding_noise, 1 + padding_noise]`, cuts the sorted list into
    batches and shuffles the batches. The noise mixes instances of nearby lengths, so that batches
    differ between passes; ties are broken at random.

    # Parameters

    batch_size : `int`
        Instances per batch; the last batch of a pass may be smaller.
    seed : `int`, optional (default = `0`)
        Seed of the orders; the same seed gives the same batches in every run.
    padding_noise : `float`, optional (default = `0.1`, as AllenNLP's `bucket` sampler)
        How far (as a share of its length) the length an instance is sorted by may be moved at
        random; in `[0, 1)`. `0` sorts by the exact length.
    drop_last : `bool`, optional (default = `False`)
        Leave out `number of instances % batch_size` instances, drawn at random in each pass, so
        that every batch is full.

    Registered as a `BatchSampler` with name "seeded_bucket".
    """

    def __init__(
        self, batch_size: int, seed: int = 0, padding_noise: float = 0.1, drop_last: bool = False
    ) -> None:
        super().__init__(batch_size, seed=seed, drop_last=drop_last)
        check_padding_noise(padding_noise)
        self.padding_noise = padding_noise

    def get_batch_indices(self, instances: Sequence[Instance]) -> Iterator[List[int]]:
        rng = np.random.default_rng([self.seed, self._passes])
        self._passes += 1
        num_batches = self.get_num_batches(instances)
        # a random order first, cut to the instances of this pass, so that ties break at random
        chosen = rng.permutation(len(instances))[: num_batches * self.batch_size]
        lengths = np.array([instance_length(instances[i]) for i in chosen])
        ordered = chosen[noisy_length_order(lengths, self.padding_noise, rng)]
        for batch in rng.permutation(num_batches):
            yield ordered[batch * self.batch_size : (batch + 1) * self.batch_size].tolist()
