from dapt_plugin.training.callbacks.corpus_coverage import CorpusCoverage
from dapt_plugin.training.callbacks.export_pretrained import ExportPretrained
from dapt_plugin.training.callbacks.head_warmup import HeadWarmup
from dapt_plugin.training.callbacks.heldout_mlm_loss import HeldoutMlmLoss
from dapt_plugin.training.callbacks.metrics_checkpoint import MetricsCheckpoint
from dapt_plugin.training.callbacks.rng_checkpoint import RngCheckpoint
from dapt_plugin.training.callbacks.training_curves import TrainingCurves

__all__ = [
    "CorpusCoverage",
    "ExportPretrained",
    "HeadWarmup",
    "HeldoutMlmLoss",
    "MetricsCheckpoint",
    "RngCheckpoint",
    "TrainingCurves",
]
