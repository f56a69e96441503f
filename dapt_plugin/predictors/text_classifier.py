from typing import List

from allennlp.common.checks import ConfigurationError
from allennlp.common.util import JsonDict
from allennlp.data import DatasetReader, Instance
from allennlp.models import Model
from allennlp.predictors.predictor import Predictor

from dapt_plugin.data.documents import lone_surrogate
from dapt_plugin.data.text_files import DataError


@Predictor.register("dapt_text_classifier")
class DaptTextClassifierPredictor(Predictor):
    """
    Labels texts with a `basic_classifier_with_f1` model, whose default predictor it is, so
    `allennlp predict model.tar.gz test.jsonl` needs no other flag. Reads the jsonl of training:
    one JSON object per line with the text under the dataset reader's `text_key` (`"text"`);
    an `id` field is copied into the line's prediction, and other fields, such as a gold label,
    are ignored. Texts are tokenized and truncated as in training. Each prediction is

        {"label": "<most probable label>", "probabilities": {"<label>": <probability>, ...}}

    with a probability for every label the model knows (and the line's `"id"` first, if it has
    one).

    # Parameters

    model : `Model`
        A `basic_classifier_with_f1`, with its vocabulary of labels.
    dataset_reader : `DatasetReader`
        The reader of the model's archive (its validation reader, as for `allennlp evaluate`);
        its `text_key`, if it has one, names the field holding the text, else `"text"`.
    frozen : `bool`, optional (default = `True`)
        Put the model in evaluation mode and stop its gradients.

    Registered as a `Predictor` with name "dapt_text_classifier".
    """

    def __init__(self, model: Model, dataset_reader: DatasetReader, frozen: bool = True) -> None:
        if not hasattr(model, "label_names"):
            raise ConfigurationError(
                f"the dapt_text_classifier predictor needs a basic_classifier_with_f1 model; got "
                f"{type(model).__name__}; pass `--predictor` for this model's own predictor"
            )
        super().__init__(model, dataset_reader, frozen)
        self._text_key = getattr(dataset_reader, "text_key", "text")

    def predict(self, text: str) -> JsonDict:
        """The label and label probabilities of `text`."""
        return self.predict_json({self._text_key: text})

    def load_line(self, line: str) -> JsonDict:
        """
        A line to predict on, checked to hold a text: what it lacks is said by `allennlp predict`
        with the file and line (`compat._patch_predict_files`).
        """
        json_dict = super().load_line(line)
        self._text(json_dict)
        return json_dict

    def predict_json(self, inputs: JsonDict) -> JsonDict:
        return _with_id(inputs, super().predict_json(inputs))

    def predict_batch_json(self, inputs: List[JsonDict]) -> List[JsonDict]:
        outputs = super().predict_batch_json(inputs)
        return [_with_id(line, output) for line, output in zip(inputs, outputs)]

    def _json_to_instance(self, json_dict: JsonDict) -> Instance:
        return self._dataset_reader.text_to_instance(self._text(json_dict))

    def _text(self, json_dict: JsonDict) -> str:
        text = json_dict.get(self._text_key) if isinstance(json_dict, dict) else None
        if not isinstance(text, str):
            shown = str(json_dict)
            raise DataError(
                "<input>",
                0,
                f"no {self._text_key!r} string in {shown[:200]}; each line to "
                f'predict on needs {{"{self._text_key}": "..."}}',
            )
        problem = lone_surrogate(self._text_key, text)
        if problem is not None:
            raise DataError("<input>", 0, problem)
        return text

    def predict_instance(self, instance: Instance) -> JsonDict:
        return self._prediction(super().predict_instance(instance))

    def predict_batch_instance(self, instances: List[Instance]) -> List[JsonDict]:
        return [self._prediction(output) for output in super().predict_batch_instance(instances)]

    def _prediction(self, output: JsonDict) -> JsonDict:
        return {
            "label": output["label"],
            "probabilities": dict(zip(self._model.label_names, output["probs"])),
        }


def _with_id(line: JsonDict, prediction: JsonDict) -> JsonDict:
    """`prediction` of the input `line`, led by the line's `id` when it has one."""
    return {"id": line["id"], **prediction} if "id" in line else prediction
