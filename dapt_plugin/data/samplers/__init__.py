from dapt_plugin.data.samplers.seeded_shuffle import SeededShuffleBatchSampler

__all__ = ["SeededShuffleBatchSampler"]
