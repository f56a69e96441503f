import logging
from typing import Dict, List, Optional

import torch
from allennlp.common import Lazy
from allennlp.common.checks import ConfigurationError
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.basic_classifier import BasicClassifier
from allennlp.models.model import Model
from allennlp.modules import FeedForward, Seq2SeqEncoder, Seq2VecEncoder, TextFieldEmbedder
from allennlp.modules.seq2vec_encoders import ClsPooler
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder
from allennlp.nn import InitializerApplicator
from allennlp.nn.util import get_text_field_mask, get_token_ids_from_text_field_tensors
from allennlp.training.metrics import FBetaMeasure

from dapt_plugin.nn.encoder_pooler import checkpoint_has_pooler
from dapt_plugin.nn.selected_rows import encode_rows, encodes_rows

logger = logging.getLogger(__name__)


@Model.register("basic_classifier_with_f1")
class BasicClassifierWithF1(BasicClassifier):
    """
    AllenNLP's `BasicClassifier` (embed, optionally contextualise, pool, dropout, feed-forward,
    linear) reporting the metrics of the paper: `accuracy`, `macro_f1` (the paper's metric for
    most tasks) and `micro_f1` (its metric for ChemProt and RCT), and optionally the F1 of every
    label. Keeps the registered name of the model in the paper's code, and reads the widths of
    the pooler and the feed-forward from the encoder, so a config need not know the model's
    hidden size (configs of the paper's code, which give them, still work).

    # Parameters

    vocab : `Vocabulary`
        Built by the trainer; holds the labels in `label_namespace`.
    text_field_embedder : `TextFieldEmbedder`
        Embeds the tokens; for the paper, a `pretrained_transformer` embedder of `MODEL_NAME`.
    seq2vec_encoder : `Seq2VecEncoder`, optional (default = a `cls_pooler` as wide as its input)
        Pools the token vectors into one vector: by default the vector of the first token
        (`<s>`), as in the paper. One given in the config must take vectors as wide as the
        embedder's (or the `seq2seq_encoder`'s) output, else it is a `ConfigurationError`.
    seq2seq_encoder : `Seq2SeqEncoder`, optional (default = `None`)
        Contextualises the embedded tokens before pooling.
    feedforward : `FeedForward`, optional (default = `None`)
        Applied to the pooled vector; for the paper, one tanh layer as wide as the encoder
        (`{"num_layers": 1, "activations": "tanh"}`, no dropout of its own). `input_dim` and
        `hidden_dims` default to the width of the pooled vector; an `input_dim` that differs from
        it is a `ConfigurationError`.
    dropout : `float`, optional (default = `None`)
        Dropout on the pooled vector, before the feed-forward; the paper uses 0.1.
    feedforward_from_pooler : `bool`, optional (default = `False`)
        Starts the feed-forward's layer from the weights of the encoder's own pooler (BERT's:
        a tanh layer over the first token's vector, trained in pre-training), as
        `BertForSequenceClassification` does, instead of from random weights. Requires a
        `feedforward` of one tanh layer and a single `pretrained_transformer` embedder whose
        model has a pooler. An encoder adapted by DAPT or TAPT (an `exported_model`) has the
        pooler of the checkpoint it was adapted from, unchanged (masked-LM training does not use
        it); an encoder whose checkpoint has none gets transformers' random one.
    num_labels : `int`, optional (default = `None`)
        Number of labels; `None` takes the size of `label_namespace`.
    label_namespace : `str`, optional (default = `"labels"`)
        Vocabulary namespace of the labels.
    namespace : `str`, optional (default = `"tokens"`)
        Vocabulary namespace of the tokens, used to show them in predictions.
    report_per_label_f1 : `bool`, optional (default = `False`)
        Also report `f1_<label>` for every label.
    last_layer_at_read_positions : `bool`, optional (default = `True`)
        The paper's kind of model (one `pretrained_transformer` embedder of the last layer, no
        `seq2seq_encoder`, a `cls_pooler` of the first token) reads one vector per text from the
        encoder: run the encoder's last layer at the first token only (its keys and values at
        every token), where `dapt_plugin/nn/selected_rows.py` supports the encoder (BERT's
        layout: BERT, RoBERTa, XLM-R, CamemBERT). The same function with less computed; `False`
        runs the encoder's own forward over every position (its dropout draws masks for every
        position, so a training run differs from one with `True` as two seeds do).
    initializer : `InitializerApplicator`, optional
        Initialises the parameters of the new layers.

    Its default predictor is `dapt_text_classifier`: `allennlp predict` reads the jsonl files of
    training and returns each text's label and a probability per label name.

    Registered as a `Model` with name "basic_classifier_with_f1".
    """

    default_predictor = "dapt_text_classifier"

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        seq2vec_encoder: Optional[Seq2VecEncoder] = None,
        seq2seq_encoder: Optional[Seq2SeqEncoder] = None,
        feedforward: Optional[Lazy[FeedForward]] = None,
        dropout: Optional[float] = None,
        feedforward_from_pooler: bool = False,
        num_labels: Optional[int] = None,
        label_namespace: str = "labels",
        namespace: str = "tokens",
        report_per_label_f1: bool = False,
        last_layer_at_read_positions: bool = True,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        if seq2seq_encoder is None:
            width, source = (
                text_field_embedder.get_output_dim(),
                "the text field embedder (MODEL_NAME's encoder)",
            )
        else:
            width, source = seq2seq_encoder.get_output_dim(), "the `seq2seq_encoder`"
        if seq2vec_encoder is None:
            seq2vec_encoder = ClsPooler(width)
        elif seq2vec_encoder.get_input_dim() != width:
            raise ConfigurationError(
                f"`seq2vec_encoder` is {seq2vec_encoder.get_input_dim()} wide but {source} is {width} "
                "wide; remove `seq2vec_encoder` from the config: the default, a CLS pooler, takes the "
                "width of its input"
            )
        pooled = seq2vec_encoder.get_output_dim()
        head = (
            None
            if feedforward is None
            else feedforward.construct(input_dim=pooled, hidden_dims=pooled)
        )
        if head is not None and head.get_input_dim() != pooled:
            raise ConfigurationError(
                f"`feedforward.input_dim` is {head.get_input_dim()} but the pooled vector is {pooled} "
                "wide; remove `input_dim` and `hidden_dims` from `feedforward` in the config: they "
                "default to that width"
            )
        super().__init__(
            vocab,
            text_field_embedder,
            seq2vec_encoder,
            seq2seq_encoder=seq2seq_encoder,
            feedforward=head,
            dropout=dropout,
            num_labels=num_labels,
            label_namespace=label_namespace,
            namespace=namespace,
            initializer=initializer,
            **kwargs,
        )
        # the encoder's last layer at the first token only (`_first_token_vectors`)
        self._last_layer_at_first_token = last_layer_at_read_positions and not pooling_problems(
            self
        )
        if feedforward_from_pooler:  # after `initializer`, which would otherwise overwrite it
            self._copy_pooler()
        self._macro_f1 = FBetaMeasure(average="macro")
        self._micro_f1 = FBetaMeasure(average="micro")
        self._per_label_f1 = FBetaMeasure() if report_per_label_f1 else None

    @property
    def label_names(self) -> List[str]:
        """The names of the labels, in the order of the model's `logits` and `probs`."""
        names = self.vocab.get_index_to_token_vocabulary(self._label_namespace)
        return [names.get(index, str(index)) for index in range(self._num_labels)]

    def encoder(self) -> Optional[torch.nn.Module]:
        """The transformer of a single `pretrained_transformer` embedder; `None` otherwise."""
        embedders = list(self._text_field_embedder._token_embedders.values())
        if len(embedders) == 1 and isinstance(embedders[0], PretrainedTransformerEmbedder):
            return embedders[0].transformer_model
        return None

    def _copy_pooler(self) -> None:
        """Copies the weights of the encoder's pooler into the feed-forward's tanh layer."""
        problems = head_problems(self)
        if problems:
            raise ConfigurationError(
                f"`feedforward_from_pooler` needs BERT's kind of head, the first token's vector through "
                f"one tanh layer: {'; '.join(problems)}. Change the model, or set "
                "`feedforward_from_pooler` to false"
            )
        layer = self._feedforward._linear_layers[0]
        dense = getattr(getattr(self.encoder(), "pooler", None), "dense", None)
        if not isinstance(dense, torch.nn.Linear) or dense.weight.shape != layer.weight.shape:
            raise ConfigurationError(
                "`feedforward_from_pooler` starts the tanh layer from the encoder's own pooler, and "
                "MODEL_NAME's model has none that fits (a dense layer as wide as the encoder, as "
                "BERT's); set `feedforward_from_pooler` to false (CLASSIFIER_HEAD=roberta in "
                "training_config/classifier.jsonnet)"
            )
        with torch.no_grad():
            layer.weight.copy_(dense.weight)
            layer.bias.copy_(dense.bias)
        model_name = self.encoder().name_or_path
        if checkpoint_has_pooler(model_name) is False:
            logger.warning(
                "CLASSIFIER_HEAD=bert (`feedforward_from_pooler`): %s has no pooler weights, so "
                "the tanh layer starts at random, not from a pooler trained in pre-training; "
                "CLASSIFIER_HEAD=roberta is the head for an encoder without one",
                model_name,
            )

    def forward(  # type: ignore
        self, tokens: TextFieldTensors, label: Optional[torch.IntTensor] = None, **kwargs
    ) -> Dict[str, torch.Tensor]:
        """
        # Parameters

        tokens : `TextFieldTensors`
            From the reader's `tokens` field.
        label : `torch.IntTensor`, optional (default = `None`)
            Gold label ids, from the reader's `label` field.

        # Returns

        `logits`, `probs`, `token_ids`, and `loss` when `label` is given.
        """
        pooled = self._first_token_vectors(tokens)
        if pooled is None:
            embedded = self._text_field_embedder(tokens)
            mask = get_text_field_mask(tokens)
            if self._seq2seq_encoder is not None:
                embedded = self._seq2seq_encoder(embedded, mask=mask)
            pooled = self._seq2vec_encoder(embedded, mask=mask)
        if self._dropout is not None:
            pooled = self._dropout(pooled)
        if self._feedforward is not None:
            pooled = self._feedforward(pooled)
        logits = self._classification_layer(pooled)
        output = {
            "logits": logits,
            "probs": torch.nn.functional.softmax(logits, dim=-1),
            "token_ids": get_token_ids_from_text_field_tensors(tokens),
        }
        if label is not None:
            gold = label.long().view(-1)
            output["loss"] = self._loss(logits, gold)
            self._accuracy(logits, gold)
            self._macro_f1(logits, gold)
            self._micro_f1(logits, gold)
            if self._per_label_f1 is not None:
                self._per_label_f1(logits, gold)
        return output

    def _first_token_vectors(self, tokens: TextFieldTensors) -> Optional[torch.Tensor]:
        """
        The last layer's first-token vectors `(batch, width)`, computed with that layer at the
        first tokens only (`encode_rows`); `None` when the model pools otherwise, the encoder is
        not one `encode_rows` supports or `last_layer_at_read_positions` is off.
        """
        encoder = self.encoder()
        if not self._last_layer_at_first_token or not encodes_rows(encoder):
            return None
        (inputs,) = tokens.values()
        token_ids, type_ids = inputs["token_ids"], inputs.get("type_ids")
        batch, length = token_ids.shape
        rows = torch.arange(batch, device=token_ids.device) * length
        # all zeros means none, as the `pretrained_transformer` embedder passes them
        if type_ids is not None and not bool(type_ids.any()):
            type_ids = None
        return encode_rows(encoder, rows, token_ids, inputs["mask"], type_ids)

    def get_metrics(self, reset: bool = False) -> Dict[str, float]:
        metrics = super().get_metrics(reset)
        metrics["macro_f1"] = self._macro_f1.get_metric(reset)["fscore"]
        metrics["micro_f1"] = self._micro_f1.get_metric(reset)["fscore"]
        if self._per_label_f1 is not None:
            scores = self._per_label_f1.get_metric(reset)["fscore"]
            labels = self.vocab.get_index_to_token_vocabulary(self._label_namespace)
            for index, score in enumerate(scores):
                metrics[f"f1_{labels.get(index, str(index))}"] = score
        return metrics


def head_problems(model: BasicClassifierWithF1) -> List[str]:
    """
    What makes `model` other than the paper's kind of classifier (empty when it is that kind):
    one `pretrained_transformer` embedder of the last layer, no `seq2seq_encoder`, the first
    token's vector (`cls_pooler`), one tanh layer as wide as it, and the linear layer.
    """
    feedforward = model._feedforward
    problems = pooling_problems(model)
    if (
        feedforward is None
        or len(feedforward._linear_layers) != 1
        or not isinstance(feedforward._activations[0], torch.nn.Tanh)
    ):
        problems.append("its `feedforward` is not one tanh layer")
    elif feedforward._linear_layers[0].out_features != feedforward._linear_layers[0].in_features:
        problems.append("its `feedforward` layer changes the width")
    return problems


def pooling_problems(model: BasicClassifierWithF1) -> List[str]:
    """
    What keeps `model` from pooling the last layer's first token of a single transformer (empty
    when it does): one `pretrained_transformer` embedder of the last layer, no
    `seq2seq_encoder`, a `cls_pooler` of the first token.
    """
    embedders = list(model._text_field_embedder._token_embedders.values())
    problems = []
    if len(embedders) != 1 or not isinstance(embedders[0], PretrainedTransformerEmbedder):
        problems.append("the text field embedder is not a single `pretrained_transformer` embedder")
    elif embedders[0]._scalar_mix is not None or embedders[0]._max_length is not None:
        problems.append(
            "the embedder mixes layers (`last_layer_only: false`) or folds long texts (`max_length`)"
        )
    if model._seq2seq_encoder is not None:
        problems.append("it has a `seq2seq_encoder`")
    if (
        not isinstance(model._seq2vec_encoder, ClsPooler)
        or model._seq2vec_encoder._cls_is_last_token
    ):
        problems.append("it does not pool the first token (`cls_pooler`)")
    return problems
