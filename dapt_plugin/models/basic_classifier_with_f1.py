from typing import Dict, Optional

import torch
from allennlp.data import TextFieldTensors, Vocabulary
from allennlp.models.basic_classifier import BasicClassifier
from allennlp.models.model import Model
from allennlp.modules import FeedForward, Seq2SeqEncoder, Seq2VecEncoder, TextFieldEmbedder
from allennlp.nn import InitializerApplicator
from allennlp.training.metrics import FBetaMeasure


@Model.register("basic_classifier_with_f1")
class BasicClassifierWithF1(BasicClassifier):
    """
    AllenNLP's `BasicClassifier` (embed, optionally contextualise, pool, dropout, feed-forward,
    linear) reporting the metrics of the paper: `accuracy`, `macro_f1` (the paper's metric for
    most tasks) and `micro_f1` (its metric for ChemProt and RCT), and optionally the F1 of every
    label. Keeps the registered name of the model in the paper's code.

    # Parameters

    vocab : `Vocabulary`
        Built by the trainer; holds the labels in `label_namespace`.
    text_field_embedder : `TextFieldEmbedder`
        Embeds the tokens; for the paper, a `pretrained_transformer` embedder of `MODEL_NAME`.
    seq2vec_encoder : `Seq2VecEncoder`
        Pools the token vectors into one vector; for the paper, `cls_pooler`.
    seq2seq_encoder : `Seq2SeqEncoder`, optional (default = `None`)
        Contextualises the embedded tokens before pooling.
    feedforward : `FeedForward`, optional (default = `None`)
        Applied to the pooled vector; for the paper, one 768-wide tanh layer.
    dropout : `float`, optional (default = `None`)
        Dropout on the pooled vector, before the feed-forward; the paper uses 0.1.
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

    Registered as a `Model` with name "basic_classifier_with_f1".
    """

    def __init__(
        self,
        vocab: Vocabulary,
        text_field_embedder: TextFieldEmbedder,
        seq2vec_encoder: Seq2VecEncoder,
        seq2seq_encoder: Optional[Seq2SeqEncoder] = None,
        feedforward: Optional[FeedForward] = None,
        dropout: Optional[float] = None,
        num_labels: Optional[int] = None,
        label_namespace: str = "labels",
        namespace: str = "tokens",
        report_per_label_f1: bool = False,
        initializer: InitializerApplicator = InitializerApplicator(),
        **kwargs,
    ) -> None:
        super().__init__(
            vocab,
            text_field_embedder,
            seq2vec_encoder,
            seq2seq_encoder=seq2seq_encoder,
            feedforward=feedforward,
            dropout=dropout,
            num_labels=num_labels,
            label_namespace=label_namespace,
            namespace=namespace,
            initializer=initializer,
            **kwargs,
        )
        self._macro_f1 = FBetaMeasure(average="macro")
        self._micro_f1 = FBetaMeasure(average="micro")
        self._per_label_f1 = FBetaMeasure() if report_per_label_f1 else None

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
