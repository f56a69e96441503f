import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from allennlp.common.checks import ConfigurationError
from allennlp.data.token_indexers import PretrainedTransformerIndexer
from allennlp.data.tokenizers import PretrainedTransformerTokenizer
from allennlp.models.archival import archive_model, load_archive
from allennlp.modules.token_embedders import PretrainedTransformerEmbedder

from dapt_plugin.commands.archive_untrained import archive_untrained
from dapt_plugin.common import pretrained
from dapt_plugin.common.archived_encoders import ENCODERS_DIRECTORY, archived_name
from tests.conftest import CONFIGS, add_custom_code, allennlp, classifier_env, mlm_env

FIX = (
    "give a directory written by `save_pretrained` (such as the `exported_model` directory of an MLM "
    "run, see README) or a model-hub name such as roberta-base"
)


def partial_copy(model: Path, destination: Path, keep) -> Path:
    destination.mkdir()
    for name in keep:
        shutil.copy(model / name, destination / name)
    return destination


def test_training_with_a_model_path_that_does_not_exist_names_it(tiny_model, tmp_path):
    process = allennlp(
        ["train", str(CONFIGS / "classifier.jsonnet"), "-s", str(tmp_path / "run")],
        env=classifier_env(tiny_model, MODEL_NAME="/nonexistent/dir"),
        check=False,
    )
    assert process.returncode != 0
    assert f"MODEL_NAME '/nonexistent/dir': no such directory; {FIX}" in process.stderr


@pytest.mark.parametrize("name", ["runs/dapt", "roberta-nonexistent"])
def test_a_hub_name_not_in_the_cache_while_offline_is_named(tiny_model, tmp_path, name):
    """A mistyped relative directory with one `/` reads as a hub name (the suite runs offline)."""
    process = allennlp(
        ["train", str(CONFIGS / "tapt.jsonnet"), "-s", str(tmp_path / "run")],
        env=mlm_env(tiny_model, MODEL_NAME=name, HF_HUB_OFFLINE="1"),
        check=False,
    )
    assert process.returncode == 1
    assert process.stderr.splitlines()[-1].startswith(
        f"Error: MODEL_NAME {name!r}: no such directory, and no model of that name in the local "
        f"Hugging Face cache, the only place the hub is read from offline (HF_HUB_OFFLINE); {FIX}"
    )


@pytest.fixture
def online_hub_without_models(monkeypatch):
    """Online mode, with the model hub a local server that has no repository at all."""
    import huggingface_hub.constants
    import huggingface_hub.file_download
    import transformers.utils.hub

    class NoRepository(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NoRepository)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(
        huggingface_hub.file_download,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(transformers.utils.hub, "_is_offline_mode", False)
    monkeypatch.setattr(pretrained, "is_offline_mode", lambda: False)
    yield
    server.shutdown()


def test_a_hub_name_the_hub_does_not_give_online_is_named(online_hub_without_models):
    """Online, transformers' reason (here: no such repository) in one line, not a traceback."""
    with pytest.raises(ConfigurationError) as error:
        pretrained.check_model_name("roberta-nonexistent")
    assert str(error.value) == (
        "MODEL_NAME 'roberta-nonexistent': no such directory, and the model hub did not give a "
        "model of that name (roberta-nonexistent is not a local folder and is not a valid model "
        "identifier listed on 'https://huggingface.co/models'); " + FIX
    )


def test_model_directory_without_weights_is_named_partial(tiny_model, tmp_path):
    model = partial_copy(
        tiny_model,
        tmp_path / "no_weights",
        ["config.json", "tokenizer.json", "vocab.json", "merges.txt"],
    )
    PretrainedTransformerTokenizer(str(model))  # the tokenizer is all there
    with pytest.raises(ConfigurationError) as error:
        PretrainedTransformerEmbedder(str(model))
    assert str(error.value) == (
        f"MODEL_NAME '{model}' is not a complete model directory: missing weights (model.safetensors or "
        f"pytorch_model.bin); it may be a partial copy or an interrupted export; {FIX}"
    )


def test_a_training_runs_directory_is_refused_naming_its_export(tiny_model, tmp_path):
    run = tmp_path / "dapt"
    run.mkdir()
    (run / "config.json").write_text('{"trainer": {}}')  # AllenNLP's training config
    (run / "out.log").write_text("")
    with pytest.raises(ConfigurationError) as error:
        PretrainedTransformerEmbedder(str(run))
    assert str(error.value) == (
        f"MODEL_NAME '{run}' is the directory of an `allennlp train` run, not a model; a masked-LM "
        "run writes its encoder to `exported_model` in it, which this one has not (yet) written"
    )
    shutil.copytree(tiny_model, run / "exported_model")
    with pytest.raises(ConfigurationError) as error:
        PretrainedTransformerEmbedder(str(run))
    assert str(error.value).endswith(f"its encoder is '{run / 'exported_model'}'")


def test_model_directory_without_tokenizer_is_named_partial(tiny_model, tmp_path):
    model = partial_copy(
        tiny_model, tmp_path / "no_tokenizer", ["config.json", "model.safetensors"]
    )
    with pytest.raises(
        ConfigurationError,
        match=r"missing tokenizer files \(tokenizer.json, vocab.json and merges.txt, vocab.txt, "
        r"or a sentencepiece model\)",
    ):
        PretrainedTransformerTokenizer(str(model))


@pytest.mark.parametrize("beside", [True, False])
def test_a_file_given_as_model_name_is_named_with_the_encoder_beside_it(
    tiny_model, tmp_path, beside
):
    """`MODEL_NAME=runs/dapt/model.tar.gz` was "no such directory", of a file that is there."""
    run = tmp_path / "dapt"
    run.mkdir()
    (run / "model.tar.gz").write_bytes(b"")
    if beside:
        shutil.copytree(tiny_model, run / "exported_model")
    with pytest.raises(ConfigurationError) as error:
        PretrainedTransformerEmbedder(str(run / "model.tar.gz"))
    assert str(error.value) == (
        f"MODEL_NAME '{run / 'model.tar.gz'}' is a file, not a model directory; "
        + (f"the encoder of the run it is in is '{run / 'exported_model'}'" if beside else FIX)
    )


# Model directories with their own code

REFUSED = (
    "MODEL_NAME '{model}' brings its own Python code (`auto_map` in config.json), which loading it "
    "would run; set TRUST_REMOTE_CODE=true (`trust_remote_code` in the config) only if you trust "
    "where the directory comes from"
)


@pytest.fixture
def custom(tiny_model, tmp_path) -> Path:
    model = tmp_path / "custom"
    shutil.copytree(tiny_model, model)
    add_custom_code(model, tmp_path / "code_ran")
    return model


@pytest.mark.parametrize(
    "build",
    [
        lambda name: PretrainedTransformerTokenizer(name),
        lambda name: PretrainedTransformerIndexer(name),
        lambda name: PretrainedTransformerEmbedder(name),
        lambda name: PretrainedTransformerEmbedder(
            name, transformer_kwargs={"trust_remote_code": False}
        ),
    ],
    ids=["tokenizer", "indexer", "embedder", "embedder_untrusted"],
)
def test_custom_model_code_is_refused_unless_trusted(custom, tmp_path, build):
    with pytest.raises(ConfigurationError) as error:
        build(str(custom))
    assert str(error.value) == REFUSED.format(model=custom)
    assert not (tmp_path / "code_ran").exists()


def test_a_trusted_custom_model_directory_loads(custom):
    tokenizer = PretrainedTransformerTokenizer(
        str(custom), tokenizer_kwargs={"trust_remote_code": True}
    )
    assert tokenizer.tokenize("the receptor")[0].text == "<s>"


def test_an_archive_whose_model_brings_code_is_refused(tiny_model, tmp_path, monkeypatch):
    """`allennlp evaluate` and `predict` load archives through the same functions."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    for name, value in mlm_env(model).items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    archive_untrained(str(CONFIGS / "dapt.jsonnet"), str(run))
    add_custom_code(model, tmp_path / "code_ran")
    archive = archive_model(str(run))  # the archive carries the model's config and code
    with pytest.raises(ConfigurationError) as error:
        load_archive(archive)
    # refused in the archive's copy of the model, extracted to a temporary directory
    copy = str(error.value).split("'")[1]
    assert copy.endswith(f"/{ENCODERS_DIRECTORY}/{archived_name(str(model))}")
    assert str(error.value) == REFUSED.format(model=copy)
    assert not (tmp_path / "code_ran").exists()
