"""The data pipeline: readers, loaders, samplers and the token cache they share."""

from dapt_plugin.data import data_loaders, dataset_readers, samplers

__all__ = ["data_loaders", "dataset_readers", "samplers"]
