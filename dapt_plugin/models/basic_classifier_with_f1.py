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
from allennlp.training.metrics import FBetaMeasure


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
        model has a pooler. An encoder adapted by DAPT or TAPT (an `exported_model`) has a new,
        random pooler, since masked-LM training has none: its layer starts from that.
    num_labels : `int`, optional (default = `None`)
        Number of labels; `None` takes the size of `label_namespace`.
    label_namespace : `str`, optional (default = `"labels"`)
        Vocabulary namespace of the labels.
    namespace : `str`, optional (default = `"tokens"`)
        Vocabulary namespace of the tokens, used to show them in predictions.
    report_per_label_f1 : `bool`, optional (default = `False`)
        Also report `f1_<label>` for every label.
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
        if feedforward_from_pooler:  # after `initializer`, which would otherwise overwrite it
            _copy_pooler(text_field_embedder, head)
        self._macro_f1 = FBetaMeasure(average="macro")
        self._micro_f1 = FBetaMeasure(average="micro")
        self._per_label_f1 = FBetaMeasure() if report_per_label_f1 else None

    @property
    def label_names(self) -> List[str]:
        """The names of the labels, in the order of the model's `logits` and `probs`."""
        names = self.vocab.get_index_to_token_vocabulary(self._label_namespace)
        return [names.get(index, str(index)) for index in range(self._num_labels)]

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
        output = super().forward(tokens, label)
        if label is not None:
            gold = label.long().view(-1)
            self._macro_f1(output["logits"], gold)
            self._micro_f1(output["logits"], gold)
            if self._per_label_f1 is not None:
                self._per_label_f1(output["logits"], gold)
        return output

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


def _copy_pooler(embedder: TextFieldEmbedder, feedforward: Optional[FeedForward]) -> None:
    """Copies the weights of the pooler of `embedder`'s transformer into `feedforward`'s layer."""
    embedders = list(getattr(embedder, "_token_embedders", {}).values())
    transformer = (
        embedders[0].transformer_model
        if len(embedders) == 1 and isinstance(embedders[0], PretrainedTransformerEmbedder)
        else None
    )
    dense = getattr(getattr(transformer, "pooler", None), "dense", None)
    if not isinstance(dense, torch.nn.Linear):
        raise ConfigurationError(
            "`feedforward_from_pooler` needs a single `pretrained_transformer` token embedder whose model "
            "has a pooler with a dense layer (BERT's); this one has none: set `feedforward_from_pooler` "
            "to false (CLASSIFIER_HEAD=roberta in training_config/classifier.jsonnet)"
        )
    layers = [] if feedforward is None else feedforward._linear_layers
    if (
        len(layers) != 1
        or not isinstance(feedforward._activations[0], torch.nn.Tanh)
        or layers[0].weight.shape != dense.weight.shape
    ):
        raise ConfigurationError(
            "`feedforward_from_pooler` needs a `feedforward` of one tanh layer as wide as the encoder "
            '(`{"num_layers": 1, "activations": "tanh"}`), which the pooler\'s weights fit; change '
            "`feedforward` or set `feedforward_from_pooler` to false"
        )
    with torch.no_grad():
        layers[0].weight.copy_(dense.weight)
        layers[0].bias.copy_(dense.bias)
