from dapt_plugin.data.dataset_readers.masked_lm_corpus import MaskedLmCorpusReader
from dapt_plugin.data.dataset_readers.text_classification_json_with_sampling import (
    TextClassificationJsonWithSamplingReader,
)

__all__ = ["MaskedLmCorpusReader", "TextClassificationJsonWithSamplingReader"]
