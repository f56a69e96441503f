"""
dapt_plugin: "Don't Stop Pretraining" (Gururangan et al., ACL 2020) as an AllenNLP plugin.

AllenNLP imports this package (through `.allennlp_plugins`, the global plugins file or
`--include-package dapt_plugin`) but not its submodules, so every module that registers a
component is imported here.
"""
from dapt_plugin.version import VERSION as __version__  # noqa: F401
from dapt_plugin import compat
from dapt_plugin.common import config_env, pretrained

compat.apply_patches()
config_env.install()
pretrained.install()

# Registering modules; keep this list complete (plugin import is not recursive).
from dapt_plugin.data.dataset_readers.text_classification_json_with_sampling import (  # noqa: E402,F401
    TextClassificationJsonWithSamplingReader,
)
from dapt_plugin.models.basic_classifier_with_f1 import BasicClassifierWithF1  # noqa: E402,F401
from dapt_plugin.predictors.text_classifier import DaptTextClassifierPredictor  # noqa: E402,F401
from dapt_plugin.training.learning_rate_schedulers.linear_with_warmup_ratio import (  # noqa: E402,F401
    LinearWithWarmupRatio,
)
from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader  # noqa: E402,F401
from dapt_plugin.data.data_loaders.masked_lm_batches import MaskedLmBatches  # noqa: E402,F401
from dapt_plugin.data.data_loaders.eager_multiprocess import EagerMultiProcessDataLoader  # noqa: E402,F401
from dapt_plugin.data.samplers.seeded_shuffle import SeededShuffleBatchSampler  # noqa: E402,F401
from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm  # noqa: E402,F401
from dapt_plugin.training.callbacks.export_pretrained import ExportPretrained  # noqa: E402,F401
from dapt_plugin.commands.archive_untrained import ArchiveUntrained  # noqa: E402,F401
from dapt_plugin.commands.export_classifier import ExportClassifier  # noqa: E402,F401
from dapt_plugin.commands.vocab_overlap import VocabOverlap  # noqa: E402,F401
from dapt_plugin.commands.select_tapt_data import SelectTaptData  # noqa: E402,F401
from dapt_plugin.training.checkpointers.atomic_checkpointer import AtomicCheckpointer  # noqa: E402,F401
from dapt_plugin.training.callbacks.rng_checkpoint import RngCheckpoint  # noqa: E402,F401
from dapt_plugin.training.callbacks.metrics_checkpoint import MetricsCheckpoint  # noqa: E402,F401
from dapt_plugin.training.callbacks.head_warmup import HeadWarmup  # noqa: E402,F401
from dapt_plugin.training.callbacks.corpus_coverage import CorpusCoverage  # noqa: E402,F401
from dapt_plugin.training.callbacks.heldout_mlm_loss import HeldoutMlmLoss  # noqa: E402,F401
from dapt_plugin.training.optimizers.apex_fused_adam import ApexFusedAdam  # noqa: E402,F401
from dapt_plugin.commands.adapt import Adapt  # noqa: E402,F401
