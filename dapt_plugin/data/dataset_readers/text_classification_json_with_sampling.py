import dataclasses
import json
import logging
import random
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from allennlp.common.checks import ConfigurationError
from allennlp.data.dataset_readers.dataset_reader import DatasetReader
from allennlp.data.fields import Field, LabelField, TextField
from allennlp.data.instance import Instance
from allennlp.data.token_indexers import SingleIdTokenIndexer, TokenIndexer
from allennlp.data.tokenizers import (
    PretrainedTransformerTokenizer,
    SpacyTokenizer,
    Token,
    Tokenizer,
)
from allennlp.data.vocabulary import Vocabulary

from dapt_plugin.common.pretrained import position_limit
from dapt_plugin.common.sampling import reservoir_sample
from dapt_plugin.data.documents import JsonLine, iter_json_lines, json_type
from dapt_plugin.data.text_files import DataError, iter_lines

logger = logging.getLogger(__name__)

_Example = Tuple[int, str, Union[str, int, None]]  # line number, text, label


def _count_added_tokens(tokenizer: Tokenizer) -> Tuple[int, int]:
    """
    How many tokens `tokenizer` adds before and after every text (1 and 1, `<s>` and `</s>`, for
    RoBERTa): an empty text gives just those, and a one-word text tells where they go.
    """
    added = [token.text for token in tokenizer.tokenize("")]
    word = [token.text for token in tokenizer.tokenize("word")]
    for num_start in range(len(added) + 1):
        num_end = len(added) - num_start
        if (
            word[:num_start] == added[:num_start]
            and word[len(word) - num_end :] == added[num_start:]
        ):
            return num_start, num_end
    raise ConfigurationError(
        f"cannot tell which of the tokens {added} that the tokenizer adds to every text come "
        "before and which after it, so `max_sequence_length` cannot keep them; set it to null "
        "and truncate in the tokenizer (`max_length` of a `pretrained_transformer` tokenizer)"
    )


class LocatedLabelField(LabelField):
    """
    A `LabelField` that remembers the file and line it came from, so that a label the vocabulary
    has never seen (a label at evaluation time that was absent from training) is reported there.
    """

    def __init__(self, label: Union[str, int], location: Tuple[str, int], **kwargs) -> None:
        super().__init__(label, **kwargs)
        self.location = location

    def index(self, vocab: Vocabulary) -> None:
        if not self._skip_indexing:
            known = vocab.get_token_to_index_vocabulary(self._label_namespace)
            if self.label not in known:
                raise DataError(
                    *self.location,
                    f"label {self.label!r} was never seen in training (known labels: "
                    f"{sorted(known)}); evaluate on data with the training label set, or "
                    "retrain with this label",
                )
        super().index(vocab)


@dataclasses.dataclass
class _Lengths:
    """Texts read, texts cut to `max_sequence_length`, and their tokens before and after."""

    texts: int = 0
    cut: int = 0
    tokens: int = 0
    kept: int = 0


@DatasetReader.register("text_classification_json_with_sampling")
class TextClassificationJsonWithSamplingReader(DatasetReader):
    """
    Reads a jsonl file of labelled texts for classification, one JSON object per line with a
    text field and (except at prediction time) a label field, lazily, line by line. Keeps the
    registered name and behaviour of the reader in the paper's code, so its configs still work.

    A label is a string or an integer (JSON `true`/`false` become the labels "True"/"False").
    A file gives every line a label, or none (data to predict on). Empty or whitespace-only
    texts are skipped with a warning that gives their number; every other problem with a line
    (invalid JSON, no text field, a text that is not a string, a label that is a list, an object
    or a decimal number, a line without a label in a labelled file) stops the run with an error
    naming the file and line, and a file with no text at all stops it with an error naming the file.

    # Parameters

    tokenizer : `Tokenizer`, optional (default = `SpacyTokenizer()`)
        Splits the text into tokens. Use a `pretrained_transformer` tokenizer with a transformer
        encoder.
    token_indexers : `Dict[str, TokenIndexer]`, optional (default = `{"tokens": SingleIdTokenIndexer()}`)
        How tokens become ids; must match the model's text field embedder.
    max_sequence_length : `int`, optional (default = `None`)
        Truncates each text to this many tokens, counting the special tokens the tokenizer adds
        (`<s>`, `</s>` for RoBERTa), which are kept at both ends. `None` keeps every token.
        The reader finds the added tokens by tokenizing an empty and a one-word text; a tokenizer
        whose added tokens do not show there as a fixed start and end is a configuration error,
        and so is, with a `pretrained_transformer` tokenizer, a length above its model's
        position limit (`max_position_embeddings`, less the positions RoBERTa skips).
    sample : `int`, optional (default = `None`)
        Reads a uniformly random subset of `sample` lines of each file instead of all of it,
        drawn in a single pass with reservoir sampling (memory grows with `sample`, not with the
        file). Lines with an empty text are not drawn, so a sample always gives `sample`
        instances; every line is still parsed, so a bad line stops the run whether it is drawn
        or not. The same subset is drawn in every epoch and, under the same seed, in every run.
        A `sample` larger than the number of lines with a text is an error.
    sample_seed : `int`, optional (default = `None`)
        Seed of the sampling. `None` derives it from Python's random state at construction,
        which the config's `random_seed` fixes, except in the process that builds the
        vocabulary of a distributed run (AllenNLP seeds only the workers): set `sample_seed`
        when sampling in distributed training, as `training_config/classifier.jsonnet` does.
    skip_label_indexing : `bool`, optional (default = `False`)
        Labels are already integer ids; do not build a label vocabulary.
    text_key : `str`, optional (default = `"text"`)
        Name of the JSON field holding the text.
    label_key : `str`, optional (default = `"label"`)
        Name of the JSON field holding the label.
    labelled : `bool`, optional (default = `False`)
        Every line of a file read must have a label: training and evaluation data (the paper's
        config sets it), where a file without labels would otherwise stop the run only at the
        first step, in AllenNLP's words. `False` also reads files without any label. Either way
        a file's lines have a label all or none, and `allennlp predict` needs none (it reads
        through the predictor, `text_to_instance`; with `--use-dataset-reader` it reads files
        through this reader, which then needs `labelled` false).

    Registered as a `DatasetReader` with name "text_classification_json_with_sampling".
    """

    def __init__(
        self,
        tokenizer: Optional[Tokenizer] = None,
        token_indexers: Optional[Dict[str, TokenIndexer]] = None,
        max_sequence_length: Optional[int] = None,
        sample: Optional[int] = None,
        sample_seed: Optional[int] = None,
        skip_label_indexing: bool = False,
        text_key: str = "text",
        label_key: str = "label",
        labelled: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(
            manual_distributed_sharding=True, manual_multiprocess_sharding=True, **kwargs
        )
        if sample is not None and sample <= 0:
            raise ConfigurationError(
                f"`sample` must be a positive number of lines, or null to read every line; got {sample}"
            )
        if max_sequence_length is not None and max_sequence_length <= 0:
            raise ConfigurationError(
                f"`max_sequence_length` must be positive, or null for no truncation; got {max_sequence_length}"
            )
        self._tokenizer = tokenizer or SpacyTokenizer()
        self._token_indexers = token_indexers or {"tokens": SingleIdTokenIndexer()}
        self._max_sequence_length = max_sequence_length
        self._sample = sample
        self._sample_seed = sample_seed if sample_seed is not None else random.randrange(2**31)
        self._skip_label_indexing = skip_label_indexing
        self._text_key = text_key
        self._label_key = label_key
        self._labelled = labelled
        self._num_end_tokens = 0
        self._lengths = _Lengths()  # of the texts of the file being read
        if max_sequence_length is not None:
            num_start_tokens, self._num_end_tokens = _count_added_tokens(self._tokenizer)
            if max_sequence_length < num_start_tokens + self._num_end_tokens + 1:
                raise ConfigurationError(
                    f"`max_sequence_length` ({max_sequence_length}; MAX_LENGTH in the configs) "
                    "leaves no room for text after the tokenizer's "
                    f"{num_start_tokens + self._num_end_tokens} special tokens; raise it"
                )
            if isinstance(self._tokenizer, PretrainedTransformerTokenizer):
                model = self._tokenizer.tokenizer
                try:
                    limit = position_limit(model.name_or_path, model.model_max_length)
                except OSError:  # a tokenizer without its model's config.json: no limit known
                    limit = model.model_max_length
                if max_sequence_length > limit:
                    raise ConfigurationError(
                        f"`max_sequence_length` ({max_sequence_length}; MAX_LENGTH in the configs) "
                        f"is above the position limit of {model.name_or_path!r}, {limit} tokens: "
                        f"a longer text would reach positions the model has no embedding for; set "
                        f"it to {limit} or less"
                    )
                # transformers warns of a text longer than the model takes ("will result in
                # indexing errors") as it tokenizes it whole; `_truncate` cuts it first
                model.deprecation_warnings[
                    "sequence-length-is-longer-than-the-specified-maximum"
                ] = True

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer of the texts (of the model's encoder, in the paper's configs)."""
        return self._tokenizer

    @property
    def max_sequence_length(self) -> Optional[int]:
        """The most tokens a text keeps, special tokens included (`None`: no cut)."""
        return self._max_sequence_length

    @property
    def text_key(self) -> str:
        """The JSON field holding the text, in training data and in data to predict on."""
        return self._text_key

    def _read(self, file_path: str) -> Iterator[Instance]:
        file_path = str(file_path)
        if self._sample is None:
            # Each worker parses only its own share of the lines.
            examples = self._parse_lines(file_path, self.shard_iterable(iter_lines(file_path)))
        else:
            # Every worker draws the same sample (same seed), then takes its share of it.
            examples = self.shard_iterable(
                self._sample_examples(
                    file_path, self._parse_lines(file_path, iter_lines(file_path))
                )
            )
        empty = True
        self._lengths = _Lengths()
        for line_number, text, label in examples:
            empty = False
            yield self.text_to_instance(text, label, location=(file_path, line_number))
        lengths = self._lengths
        if lengths.cut:
            share = lengths.kept / lengths.tokens
            (logger.warning if share < 0.95 else logger.info)(
                "%s: %d of %d texts are longer than `max_sequence_length` (MAX_LENGTH in the "
                "configs), %d tokens, and are cut to it, their end left out: the examples hold "
                "%.1f%% of the texts' tokens",
                file_path,
                lengths.cut,
                lengths.texts,
                self._max_sequence_length,
                100 * share,
            )
        if empty and not self._has_text(file_path):
            raise DataError(
                file_path,
                0,
                f"no examples: no line has a non-empty {self._text_key!r}; "
                f'give a jsonl file with one {{"{self._text_key}": ..., '
                f'"{self._label_key}": ...}} object per line',
            )

    def _parse_lines(self, file_path: str, lines: Iterable[Tuple[int, str]]) -> Iterator[_Example]:
        """
        `(line_number, text, label)` of every line with a text; blank lines are passed over, lines
        with an empty text skipped with a warning (`iter_json_lines`). The lines must all have a
        label or all have none.
        """
        first: Optional[Tuple[int, bool]] = (
            None  # the first line with a text, and whether it has a label
        )
        for line_number, item, text in self._json_lines(file_path, lines):
            label = self._label(file_path, line_number, item)
            if first is None:
                first = (line_number, label is not None)
                if self._labelled and label is None:
                    raise DataError(
                        file_path,
                        line_number,
                        f"{self._no_label(item)}; training and evaluation data need a "
                        "label on every line (only data to predict on, which `allennlp predict` "
                        "reads, has none)",
                    )
            elif first[1] and label is None:
                raise DataError(
                    file_path,
                    line_number,
                    f"{self._no_label(item)}, but line {first[0]} "
                    "has one; give every line of a labelled file a label (only data to "
                    "predict on has none)",
                )
            elif not first[1] and label is not None:
                raise DataError(
                    file_path,
                    line_number,
                    f"has a {self._label_key!r} field, but line "
                    f"{first[0]} has none; give every line a label, or none (data to "
                    "predict on)",
                )
            yield line_number, text, label

    def _no_label(self, item: Dict) -> str:
        """What a line without a label has: no label field, or `"label": null`."""
        if self._label_key in item:
            return f"{self._label_key!r} is null"
        return f"no {self._label_key!r} field"

    def _json_lines(
        self, file_path: str, lines: Optional[Iterable[Tuple[int, str]]] = None, **kwargs
    ) -> Iterator[JsonLine]:
        example = f'{{"{self._text_key}": ..., "{self._label_key}": ...}}'
        return iter_json_lines(file_path, lines, self._text_key, example, **kwargs)

    def _has_text(self, file_path: str) -> bool:
        """Whether any line of the whole file has a text (this worker's share may have none)."""
        return any(True for _ in self._json_lines(file_path, warn_empty=False))

    def _sample_examples(self, file_path: str, examples: Iterable[_Example]) -> List[_Example]:
        """`sample` of the examples, drawn uniformly in one pass (`reservoir_sample`), in file order."""
        seen, reservoir = reservoir_sample(examples, self._sample, random.Random(self._sample_seed))
        if seen < self._sample:
            raise DataError(
                file_path,
                0,
                f"`sample` (TRAIN_SAMPLE in classifier.jsonnet) is {self._sample} but the file has "
                f"only {seen} lines with a text; lower it, or unset it to read the whole file",
            )
        reservoir.sort(
            key=lambda example: example[0]
        )  # file order, so a sampled epoch reads like the file
        return reservoir

    def _label(self, file_path: str, line_number: int, item: Dict) -> Union[str, int, None]:
        label = item.get(self._label_key)
        if label is not None:
            if self._skip_label_indexing:
                if isinstance(label, bool) or not isinstance(label, int):
                    raise DataError(
                        file_path,
                        line_number,
                        f"label {label!r} is not an integer, "
                        "but `skip_label_indexing` is true; use integer labels or "
                        "set it to false",
                    )
            elif isinstance(label, (str, int)):
                label = str(label)
            else:
                raise DataError(
                    file_path,
                    line_number,
                    f"label {json.dumps(label)} is "
                    f"{json_type(label)}; a label must be a string or an integer "
                    "(one class per line: multi-label data is not supported)",
                )
        return label

    def _truncate(self, tokens: List[Token]) -> List[Token]:
        self._lengths.texts += 1
        self._lengths.tokens += len(tokens)
        if self._max_sequence_length is None or len(tokens) <= self._max_sequence_length:
            self._lengths.kept += len(tokens)
            return tokens
        self._lengths.cut += 1
        self._lengths.kept += self._max_sequence_length
        keep_end = self._num_end_tokens
        head = tokens[: self._max_sequence_length - keep_end]
        return head + (tokens[len(tokens) - keep_end :] if keep_end else [])

    def text_to_instance(  # type: ignore
        self,
        text: str,
        label: Union[str, int, None] = None,
        location: Tuple[str, int] = ("<input>", 0),
    ) -> Instance:
        """
        # Parameters

        text : `str`
            The text to classify.
        label : `Union[str, int]`, optional (default = `None`)
            Its label, if known.
        location : `Tuple[str, int]`, optional
            File and line the text came from, for error messages.
        """
        fields: Dict[str, Field] = {
            "tokens": TextField(self._truncate(self._tokenizer.tokenize(text)))
        }
        if label is not None:
            fields["label"] = LocatedLabelField(
                label, location, skip_indexing=self._skip_label_indexing
            )
        return Instance(fields)

    def apply_token_indexers(self, instance: Instance) -> None:
        instance.fields["tokens"].token_indexers = self._token_indexers  # type: ignore
