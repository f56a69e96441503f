from typing import Any, Dict, Optional

from allennlp.common.checks import ConfigurationError
from allennlp.training.callbacks.callback import TrainerCallback


@TrainerCallback.register("corpus_coverage")
class CorpusCoverage(TrainerCallback):
    """
    Records in `metrics.json` (and, placed before `export_pretrained`, in the export's
    `dapt_export.json`) the share of the corpus's tokens that one pass over the training data
    trains on, special tokens not counted, as the `masked_lm_corpus` reader computes it for its
    `mode` (MLM_MODE): `corpus_tokens_trained_share`, 1.0 for `document_windows`, 1.0 less the
    dropped final block for `packed`, less for `line_by_line` when documents are longer than
    `max_length`, and less the documents that the validation data holds out of the corpus when it
    has no file of its own (no `HELDOUT_PATH`). With a validation file,
    `validation_corpus_tokens_covered_share` likewise. The reader logs the corpus's share when it
    reads the data (before any is held out), and warns when more than 5% is left out.

    # Parameters

    serialization_dir : `str`
        Supplied by the trainer.

    Registered as a `TrainerCallback` with name "corpus_coverage".
    """

    def on_start(self, trainer, is_primary: bool = True, **kwargs) -> None:
        if not hasattr(trainer.data_loader, "corpus"):
            raise ConfigurationError(
                f"the `corpus_coverage` callback reads the corpus of the `masked_lm_batches` data loader; the "
                f"data loader is a {type(trainer.data_loader).__name__}. Remove the callback from this config."
            )

    def on_end(
        self,
        trainer,
        metrics: Optional[Dict[str, Any]] = None,
        epoch: Optional[int] = None,
        is_primary: bool = True,
        **kwargs,
    ) -> None:
        if metrics is None:
            return
        metrics["corpus_tokens_trained_share"] = trainer.data_loader.covered_share
        validation = trainer._validation_data_loader
        # a loader that holds out part of the training data reads the training corpus: not its own share
        if getattr(validation, "data_path", None) not in (None, trainer.data_loader.data_path):
            metrics["validation_corpus_tokens_covered_share"] = validation.corpus.covered_share
