from dapt_plugin.data.samplers.length_sorted import LengthSortedBatchSampler
from dapt_plugin.data.samplers.seeded_bucket import SeededBucketBatchSampler
from dapt_plugin.data.samplers.seeded_shuffle import SeededShuffleBatchSampler

__all__ = ["LengthSortedBatchSampler", "SeededBucketBatchSampler", "SeededShuffleBatchSampler"]
