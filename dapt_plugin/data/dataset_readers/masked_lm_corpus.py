import logging
import os
from collections import Counter
from typing import Dict, Iterator, Optional

import numpy as np
import torch
from allennlp.common import cached_transformers
from allennlp.common.checks import ConfigurationError
from allennlp.data.dataset_readers.dataset_reader import DatasetReader
from allennlp.data.fields import TensorField
from allennlp.data.instance import Instance
from transformers import PreTrainedTokenizerFast

from dapt_plugin.common.console import some_of
from dapt_plugin.common.pretrained import position_limit
from dapt_plugin.data.text_files import PathSpec, expand_paths
from dapt_plugin.data.token_cache import TokenCache, special_token_counts
from dapt_plugin.data.tokenized_corpus import MODES, TokenizedCorpus

logger = logging.getLogger(__name__)


@DatasetReader.register("masked_lm_corpus")
class MaskedLmCorpusReader(DatasetReader):
    """
    Reads unlabelled text for masked-LM pretraining (DAPT on a domain corpus, TAPT on a task's
    text): plain text with one document per line, or jsonl with a text field (so a task's
    `train.jsonl` is TAPT data as it is), each optionally gzip-compressed. The data path may be
    one file, a glob pattern, a comma-separated list, or a list. Blank lines are skipped.

    Each file is tokenized once, in batches, by the fast tokenizer of `model_name` and cached on
    disk as memory-mapped token ids (see `dapt_plugin/data/token_cache.py`): later epochs and
    later runs over the same file and tokenizer do no tokenization. No AllenNLP vocabulary is
    needed (use `"vocabulary": {"type": "empty"}`) and no Python object is made per token.

    Use it with the `masked_lm_batches` data loader, which batches the cached ids directly. With
    other data loaders, the reader yields one instance per example with an `input_ids`
    `TensorField`, sharded across distributed and data-loader workers.

    # Parameters

    model_name : `str`
        Model-hub name or `save_pretrained` directory whose tokenizer to use (a fast tokenizer
        with a mask token).
    mode : `str`, optional (default = `"document_windows"`)
        `"document_windows"`: every document cut into consecutive windows of `max_length` tokens,
        each with the document's special tokens, the last (shorter) one kept, none spanning two
        documents; one pass uses every token of every document once, and a document shorter than
        `max_length` is one example. `"packed"`: all documents concatenated with their special
        tokens and cut into blocks of exactly `max_length` tokens; the final partial block is
        dropped. `"line_by_line"`: one example per line, truncated to `max_length` tokens (the
        paper's GPU recipe; a longer document is trained on its opening only). All three read the
        same cache. Each run logs the share of the corpus's tokens one pass covers, and warns when
        more than 5% is left out.
    max_length : `int`, optional (default = `512`)
        Tokens per example, special tokens included; at most the model's position limit.
    text_key : `str`, optional (default = `"text"`)
        Field holding the text in jsonl files.
    cache_directory : `str`, optional (default = `$DAPT_PLUGIN_CACHE` or `~/.cache/dapt_plugin/tokenized`)
        Where tokenized corpora are cached.
    tokenization_batch_size : `int`, optional (default = `1000`)
        Documents per tokenizer call while building the cache.
    trust_remote_code : `bool`, optional (default = `False`)
        Allow a model directory to run its own tokenizer code; off unless you trust its source.

    Registered as a `DatasetReader` with name "masked_lm_corpus".
    """

    def __init__(
        self,
        model_name: str,
        mode: str = "document_windows",
        max_length: int = 512,
        text_key: str = "text",
        cache_directory: Optional[str] = None,
        tokenization_batch_size: int = 1000,
        trust_remote_code: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs
        )
        if mode not in MODES:
            raise ConfigurationError(f"`mode` must be one of {list(MODES)}; got {mode!r}")
        if tokenization_batch_size < 1:
            raise ConfigurationError(
                f"`tokenization_batch_size` must be at least 1; got {tokenization_batch_size}"
            )
        tokenizer = cached_transformers.get_tokenizer(
            model_name, trust_remote_code=trust_remote_code
        )
        if not isinstance(tokenizer, PreTrainedTokenizerFast):
            raise ConfigurationError(
                f"the tokenizer of {model_name!r} is not a fast (Rust) tokenizer; masked-LM "
                "pretraining needs one (install `tokenizers` and save the model with a tokenizer.json)"
            )
        if tokenizer.mask_token_id is None:
            raise ConfigurationError(
                f"the tokenizer of {model_name!r} has no mask token, so it cannot be used for masked-LM "
                "training; use a masked-LM model's tokenizer (RoBERTa, BERT, ...)"
            )
        limit = position_limit(model_name, tokenizer.model_max_length)
        self.special_tokens = special_token_counts(tokenizer)
        shortest = sum(self.special_tokens) + 1  # one content token besides the special tokens
        if not shortest <= max_length <= limit:
            raise ConfigurationError(
                f"`max_length` (MAX_LENGTH in the configs) must be between {shortest} and the "
                f"model's position limit {limit}; got {max_length}"
            )
        self.model_name = model_name
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_length = max_length
        self.cache = TokenCache(tokenizer, cache_directory, text_key, tokenization_batch_size)
        self._corpora: Dict[str, TokenizedCorpus] = {}

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id

    def corpus(self, data_path: PathSpec) -> TokenizedCorpus:
        """The examples of `data_path`, tokenizing (once) any file not yet in the cache."""
        key = str(data_path)
        if key not in self._corpora:
            paths = expand_paths(data_path)
            real = [os.path.realpath(path) for path in paths]
            times = Counter(real)
            repeated = sorted({path for path, r in zip(paths, real) if times[r] > 1})
            if repeated:
                logger.warning(
                    "%s names %s more than once (as a path, a pattern or a link): each copy is "
                    "trained on in every pass, and a document held out of it (for the held-out "
                    "loss, without HELDOUT_PATH) is trained on through another copy",
                    key,
                    some_of(repeated),
                )
            files = [self.cache.load(path) for path in paths]
            corpus = TokenizedCorpus(files, paths, self.mode, self.max_length, self.special_tokens)
            logger.info(
                "%s: %d %s examples of up to %d tokens; one pass covers %.1f%% of its %d tokens "
                "(special tokens not counted)",
                key,
                len(corpus),
                self.mode,
                self.max_length,
                100 * corpus.covered_share,
                corpus.num_content_tokens,
            )
            warning = corpus.coverage_warning()
            if warning:
                logger.warning(warning)
            self._corpora[key] = corpus
        return self._corpora[key]

    def _read(self, file_path: PathSpec) -> Iterator[Instance]:
        corpus = self.corpus(file_path)
        for index in self.shard_iterable(range(len(corpus))):
            yield self._instance(corpus[index])

    def _instance(self, ids: np.ndarray) -> Instance:
        tensor = torch.from_numpy(ids.astype(np.int64))
        return Instance(
            {"input_ids": TensorField(tensor, padding_value=self.pad_token_id, dtype=torch.long)}
        )

    def text_to_instance(self, text: str) -> Instance:  # type: ignore
        """
        # Parameters

        text : `str`
            One document; tokenized with special tokens and truncated to `max_length`.
        """
        ids = self.tokenizer(text, truncation=True, max_length=self.max_length)["input_ids"]
        return self._instance(np.asarray(ids))
