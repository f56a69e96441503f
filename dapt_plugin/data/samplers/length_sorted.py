from typing import Iterator, List, Optional, Sequence

import numpy as np
from allennlp.data.instance import Instance
from allennlp.data.samplers.batch_sampler import BatchSampler

from dapt_plugin.data.samplers.seeded_bucket import instance_length
from dapt_plugin.data.samplers.seeded_shuffle import check_batch_size


@BatchSampler.register("length_sorted")
class LengthSortedBatchSampler(BatchSampler):
    """
    Batches for evaluation: the instances sorted by length (that of their longest sequence field,
    the text), longest first, and cut into batches of `batch_size`, so that a batch padded to its
    longest text holds almost no padding. Nothing is drawn at random: every pass gives the same
    batches, in the same order, whatever happened before it (`--recover` included). Texts of the
    same length keep the order of the data.

    Metrics do not depend on the order, but what is written per batch does: `allennlp evaluate
    --predictions-output-file` writes its lines (one per batch) in this order, not the file's.
    `allennlp predict` keeps the file's order.

    # Parameters

    batch_size : `int`
        Instances per batch; the last batch (of the shortest texts) may be smaller.

    Registered as a `BatchSampler` with name "length_sorted".
    """

    def __init__(self, batch_size: int) -> None:
        check_batch_size(batch_size)
        self.batch_size = batch_size

    def get_batch_indices(self, instances: Sequence[Instance]) -> Iterator[List[int]]:
        lengths = np.array([instance_length(instance) for instance in instances])
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def get_num_batches(self, instances: Sequence[Instance]) -> int:
        return -(-len(instances) // self.batch_size)

    def get_batch_size(self) -> Optional[int]:
        return self.batch_size
