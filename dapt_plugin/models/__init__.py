from dapt_plugin.models.basic_classifier_with_f1 import BasicClassifierWithF1
from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm

__all__ = ["BasicClassifierWithF1", "DaptMaskedLm"]
