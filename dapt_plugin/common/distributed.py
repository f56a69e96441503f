"""
Where this process stands in a distributed run. A process outside one (no `torch.distributed`
process group) is worker 0 of 1. Whether a run is distributed, and whether this worker is the
primary one, are allennlp's `common.util.is_distributed` and `is_global_primary`.
"""

import torch.distributed as dist
from allennlp.common.util import is_distributed


def rank() -> int:
    """This worker's rank in the distributed run; 0 outside one."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of workers of the distributed run; 1 outside one."""
    return dist.get_world_size() if is_distributed() else 1
