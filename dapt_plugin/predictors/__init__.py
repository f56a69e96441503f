from dapt_plugin.predictors.text_classifier import DaptTextClassifierPredictor

__all__ = ["DaptTextClassifierPredictor"]
