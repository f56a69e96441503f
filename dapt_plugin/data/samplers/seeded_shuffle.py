from typing import Iterator, List, Optional, Sequence

import numpy as np
from allennlp.common.checks import ConfigurationError
from allennlp.data.instance import Instance
from allennlp.data.samplers.batch_sampler import BatchSampler


def check_batch_size(batch_size: int) -> None:
    """Raises `ConfigurationError` unless `batch_size` is at least 1."""
    if batch_size < 1:
        raise ConfigurationError(f"`batch_size` must be at least 1; got {batch_size}")


@BatchSampler.register("seeded_shuffle")
class SeededShuffleBatchSampler(BatchSampler):
    """
    Batches of `batch_size` instances in a new random order in every pass, like a data loader's
    `shuffle: true`, except that the order of pass `k` is a function of `seed` and `k` alone.
    AllenNLP's shuffle draws from Python's global random generator, which dropout and everything
    else also draw from: after `allennlp train --recover`, the replay of the earlier passes
    shuffled them again from the restored generator and the resumed run trained on other batches
    than the uninterrupted one. With this sampler the replay draws nothing.

    # Parameters

    batch_size : `int`
        Instances per batch; the last batch of a pass may be smaller.
    seed : `int`, optional (default = `0`)
        Seed of the orders; the same seed gives the same batches in every run.
    drop_last : `bool`, optional (default = `False`)
        Leave out the last batch of a pass when it is smaller than `batch_size`.

    Registered as a `BatchSampler` with name "seeded_shuffle".
    """

    def __init__(self, batch_size: int, seed: int = 0, drop_last: bool = False) -> None:
        check_batch_size(batch_size)
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self._passes = 0

    def get_batch_indices(self, instances: Sequence[Instance]) -> Iterator[List[int]]:
        order = np.random.default_rng([self.seed, self._passes]).permutation(len(instances))
        self._passes += 1
        for start in range(0, self.get_num_batches(instances) * self.batch_size, self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def get_num_batches(self, instances: Sequence[Instance]) -> int:
        if self.drop_last:
            return len(instances) // self.batch_size
        return -(-len(instances) // self.batch_size)

    def get_batch_size(self) -> Optional[int]:
        return self.batch_size
