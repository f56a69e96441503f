from dapt_plugin.data.data_loaders.eager_multiprocess import EagerMultiProcessDataLoader
from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches

__all__ = ["EagerMultiProcessDataLoader", "MaskedLmBatches"]
