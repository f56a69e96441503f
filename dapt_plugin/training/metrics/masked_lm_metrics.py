import math
from typing import Dict

from allennlp.nn.util import dist_reduce_sum
from allennlp.training.metrics import Metric


class MaskedLmMetrics(Metric):
    """
    The metrics of masked-LM training over the tokens selected for prediction: `mlm_loss` (mean
    cross-entropy per masked token, not per batch), `perplexity` (its exponential) and
    `mlm_accuracy` (share of masked tokens predicted exactly), summed over distributed workers.
    Its state is three numbers, so a checkpoint can carry it (see the `metrics_checkpoint`
    callback).
    """

    def __init__(self) -> None:
        self.reset()

    def __call__(self, loss: float, num_correct: float, num_masked: float) -> None:  # type: ignore
        """
        # Parameters

        loss : `float`
            Mean loss over the batch's masked tokens.
        num_correct : `float`
            Masked tokens whose most likely prediction is the original token.
        num_masked : `float`
            Tokens selected for prediction in the batch.
        """
        self._loss_sum += loss * num_masked
        self._correct += num_correct
        self._count += num_masked

    def get_metric(self, reset: bool = False) -> Dict[str, float]:
        loss_sum = dist_reduce_sum(self._loss_sum)
        correct = dist_reduce_sum(self._correct)
        count = dist_reduce_sum(self._count)
        metrics = {}
        if count:
            mean_loss = loss_sum / count
            metrics = {
                "mlm_loss": mean_loss,
                "perplexity": float(math.exp(min(mean_loss, 50.0))),
                "mlm_accuracy": correct / count,
            }
        if reset:
            self.reset()
        return metrics

    def reset(self) -> None:
        self._loss_sum = 0.0
        self._correct = 0.0
        self._count = 0.0
