import shutil
from pathlib import Path

import pytest
from allennlp.common.checks import ConfigurationError
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder

from tests.conftest import CONFIGS, allennlp, classifier_env

FIX = ("give a directory written by `save_pretrained` (such as the `exported_model` directory of an MLM "
       "run, see README) or a model-hub name such as roberta-base")


def partial_copy(model: Path, destination: Path, keep) -> Path:
    destination.mkdir()
    for name in keep:
        shutil.copy(model / name, destination / name)
    return destination


def test_training_with_a_model_path_that_does_not_exist_names_it(tiny_model, tmp_path):
    process = allennlp(
        ["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(tmp_path / "run")],
        env=classifier_env(tiny_model, MODEL_NAME="/nonexistent/dir"), check=False,
    )
    assert process.returncode != 0
    assert f"ConfigurationError: MODEL_NAME '/nonexistent/dir': no such directory; {FIX}" in process.stderr


def test_model_directory_without_weights_is_named_partial(tiny_model, tmp_path):
    model = partial_copy(tiny_model, tmp_path / "no_weights", ["config.json", "tokenizer.json", "vocab.json", "merges.txt"])
    PretrainedTransformerTokenizer(str(model))  # the tokenizer is all there
    with pytest.raises(ConfigurationError) as error:
        PretrainedTransformerEmbedder(str(model))
    assert str(error.value) == (
        f"MODEL_NAME '{model}' is not a complete model directory: missing weights (model.safetensors or "
        f"pytorch_model.bin); it may be a partial copy or an interrupted export; {FIX}"
    )


def test_model_directory_without_tokenizer_is_named_partial(tiny_model, tmp_path):
    model = partial_copy(tiny_model, tmp_path / "no_tokenizer", ["config.json", "model.safetensors"])
    with pytest.raises(ConfigurationError, match=r"missing tokenizer files \(tokenizer.json or vocab.json/merges.txt\)"):
        PretrainedTransformerTokenizer(str(model))
