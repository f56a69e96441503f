"""`training_config/classifier.jsonnet`: the paper's fine-tuning recipe, set from the environment."""

import json
import random
import re
import shutil

import pytest
import torch
from allennlp.commands.train import TrainModel
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.common.util import prepare_environment
from allennlp.data import DataLoader, DatasetReader, Vocabulary
from allennlp.models import Model
from allennlp.models.archival import load_archive
from transformers import BertConfig

from dapt_plugin.common.paper_tasks import SPLITS
from dapt_plugin.data.text_files import DataError
from tests.conftest import CONFIGS, SMALL, TASK, allennlp, classifier_env, tiny_encoder

CONFIG = str(CONFIGS / "classifier.jsonnet")


@pytest.fixture
def environment(tiny_model, monkeypatch):
    """Sets the config's variables in this process, as the shell does for `allennlp train`."""

    def set_environment(**overrides: str) -> None:
        for name, value in classifier_env(tiny_model, **overrides).items():
            monkeypatch.setenv(name, value)

    return set_environment


@pytest.mark.process
def test_trains_with_two_cpu_workers(tiny_model, tmp_path):
    run = tmp_path / "run"
    allennlp(
        ["train", CONFIG, "-s", str(run)],
        env=classifier_env(tiny_model, CUDA_DEVICES="-1,-1", EFFECTIVE_BATCH="16"),
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"training_worker_0_memory_MB", "training_worker_1_memory_MB"} <= set(metrics)
    assert {"validation_accuracy", "validation_macro_f1", "validation_micro_f1"} <= set(metrics)
    archive = load_archive(run / "model.tar.gz")
    assert set(archive.model.vocab.get_token_to_index_vocabulary("labels")) == {
        "inhibitor",
        "activator",
    }


def test_unlabelled_training_or_validation_data_is_refused_naming_its_file_and_line(
    environment, tmp_path
):
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text('{"text": "a sentence"}\n')
    environment()
    params = Params.from_file(CONFIG)
    for key in ("dataset_reader", "validation_dataset_reader"):
        reader = DatasetReader.from_params(params[key].duplicate())
        with pytest.raises(DataError, match=f"^{unlabelled}:1: no 'label' field; training and "):
            list(reader.read(str(unlabelled)))


def test_missing_required_variable_is_named(environment, monkeypatch):
    environment()
    monkeypatch.delenv("TRAIN_PATH")
    with pytest.raises(
        ConfigurationError,
        match="environment variable TRAIN_PATH is not set: the labelled training data",
    ):
        Params.from_file(CONFIG)


def test_task_names_one_of_the_papers_tasks_whose_files_it_trains_and_tests_on(
    tiny_model, tmp_path
):
    mirror = tmp_path / "mirror"
    (mirror / "chemprot").mkdir(parents=True)
    for split in SPLITS:
        shutil.copy(TASK / f"{split}.jsonl", mirror / "chemprot" / f"{split}.jsonl")
    env = classifier_env(tiny_model, TASK="chemprot", DAPT_PLUGIN_DATA=str(mirror), NUM_EPOCHS="1")
    del env["TRAIN_PATH"], env["DEV_PATH"]
    run = tmp_path / "run"
    allennlp(["train", CONFIG, "-s", str(run)], env=env)
    config = json.loads((run / "config.json").read_text())
    files = {split: str(mirror / "chemprot" / f"{split}.jsonl") for split in SPLITS}
    assert (
        config["train_data_path"],
        config["validation_data_path"],
        config["test_data_path"],
    ) == (files["train"], files["dev"], files["test"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test_micro_f1", "test_macro_f1"} <= set(metrics)


def test_task_beside_its_files_or_an_unknown_task_is_refused(environment, monkeypatch):
    environment(TASK="chemprot")
    with pytest.raises(ConfigurationError) as error:
        Params.from_file(CONFIG)
    assert error.value.message == (
        "classifier.jsonnet: TASK=chemprot gives the task's files, and TRAIN_PATH, DEV_PATH are "
        "set too; set TASK or TRAIN_PATH, DEV_PATH, TEST_PATH, not both"
    )
    monkeypatch.delenv("TRAIN_PATH")
    monkeypatch.delenv("DEV_PATH")
    monkeypatch.setenv("TASK", "chemprott")
    with pytest.raises(ConfigurationError, match="unknown task 'chemprott'; the paper's tasks"):
        Params.from_file(CONFIG)
    # a config that does not read the three files leaves TASK alone: nothing is looked up
    monkeypatch.setenv("TAPT_PATH", str(TASK / "unlabeled.jsonl"))
    assert Params.from_file(str(CONFIGS / "tapt.jsonnet"))["train_data_path"].endswith(
        "unlabeled.jsonl"
    )


def test_training_sample_depends_only_on_seed(environment):
    """
    A distributed run builds its vocabulary in a process AllenNLP has not seeded, so the sample
    must not depend on the process's random state: only on SEED.
    """

    def training_sample(seed: str, process_state: int):
        environment(TRAIN_SAMPLE="10", SEED=seed)
        random.seed(process_state)
        reader = DatasetReader.from_params(Params.from_file(CONFIG).pop("dataset_reader"))
        return [instance["tokens"].tokens for instance in reader.read(TASK / "train.jsonl")]

    assert training_sample("1", process_state=0) == training_sample("1", process_state=1)
    assert training_sample("1", process_state=0) != training_sample("2", process_state=0)


def test_a_test_label_never_seen_in_training_stops_the_run(tiny_model, tmp_path):
    test = tmp_path / "test.jsonl"
    test.write_text(
        json.dumps({"text": "a dose of the compound .", "label": "inhibitor"})
        + "\n"
        + json.dumps({"text": "the trial compared it .", "label": "antagonist"})
        + "\n"
    )
    process = allennlp(
        ["train", CONFIG, "-s", str(tmp_path / "run")],
        check=False,
        env=classifier_env(tiny_model, NUM_EPOCHS="1", TEST_PATH=str(test)),
    )
    assert process.returncode != 0
    assert f"{test}:2: label 'antagonist' was never seen in training" in process.stderr


def test_a_boolean_variable_must_be_true_or_false(environment, monkeypatch):
    environment(USE_AMP="yes")
    with pytest.raises(
        ConfigurationError,
        match="environment variable USE_AMP must be true or false \\(or 1 or 0\\); got yes",
    ):
        Params.from_file(CONFIG)


@pytest.mark.parametrize(
    "variable, lines, message",
    [
        ("TRAIN_PATH", [], "{path}: no examples: no line has a non-empty 'text'"),
        (
            "TRAIN_PATH",
            ['{"text": "a dose .", "label": "inhibitor"}', '{"text": "a trial ."}'],
            "{path}:2: no 'label' field, but line 1 has one",
        ),
        (
            "DEV_PATH",
            ['{"text": "a dose .", "label": "inhibitor"}', '{"text": "cut off'],
            "{path}:2: not valid JSON",
        ),
        (
            "DEV_PATH",
            ['{"text": "a dose .", "label": "antagonist"}'],
            "{path}:1: label 'antagonist' was never seen in training",
        ),
        ("TEST_PATH", [b'{"text": "caf\xe9", "label": "inhibitor"}'], "{path}:1: not valid UTF-8"),
    ],
    ids=[
        "empty_train",
        "train_line_without_label",
        "bad_dev_line",
        "unknown_dev_label",
        "undecodable_test_file",
    ],
)
def test_every_input_file_is_checked_before_training(
    environment, tmp_path, variable, lines, message
):
    """The run stops while it is being set up (`TrainModel.from_params`), before any optimizer step."""
    path = tmp_path / "data.jsonl"
    path.write_bytes(
        b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    )
    environment(**{variable: str(path)})
    params = Params.from_file(CONFIG)
    prepare_environment(params)
    with pytest.raises(DataError, match=re.escape(message.format(path=path))):
        TrainModel.from_params(params=params, serialization_dir=str(tmp_path / "run"), local_rank=0)


def test_trust_remote_code_reaches_every_loader_of_the_model(environment):
    environment(TRUST_REMOTE_CODE="true")
    params = Params.from_file(CONFIG).as_dict()
    trust = {"trust_remote_code": True}
    for reader in (params["dataset_reader"], params["validation_dataset_reader"]):
        assert reader["tokenizer"]["tokenizer_kwargs"] == trust
        assert reader["token_indexers"]["roberta"]["tokenizer_kwargs"] == trust
    embedder = params["model"]["text_field_embedder"]["token_embedders"]["roberta"]
    assert embedder["tokenizer_kwargs"] == embedder["transformer_kwargs"] == trust


# the original repository's environments/hyperparameters.py, ROBERTA_CLASSIFIER_<PRESET>:
# NUM_EPOCHS, PATIENCE, GRAD_ACC_BATCH_SIZE (= BATCH_SIZE there) and LR_SCHEDULE
ORIGINAL_PRESETS = {
    "small": (10, 3, 16, 0),
    "mini": (10, 3, 8, 0),
    "big": (3, 3, 16, 1),
}
# the fixture environment's sizes unset (an empty variable is an unset one), to see the defaults
_PRESET_ONLY = dict.fromkeys(
    ["NUM_EPOCHS", "EFFECTIVE_BATCH", "BATCH_SIZE", "LR", "MAX_LENGTH"], ""
)


@pytest.mark.parametrize("preset", [*ORIGINAL_PRESETS, None])
def test_each_preset_is_the_original_repositorys(environment, preset):
    environment(**_PRESET_ONLY, **({"PRESET": preset} if preset else {}))
    params = Params.from_file(CONFIG).as_dict()
    trainer = params["trainer"]
    num_epochs, patience, batch, lr_schedule = ORIGINAL_PRESETS[preset or "small"]
    assert (trainer["num_epochs"], trainer["patience"]) == (num_epochs, patience)
    # one device: the whole batch in one step, as the original's BATCH_SIZE = GRAD_ACC_BATCH_SIZE
    assert params["data_loader"]["batch_sampler"]["batch_size"] == batch
    assert trainer["num_gradient_accumulation_steps"] == 1
    if lr_schedule:  # BertAdam's warmup_linear, warm-up 0.06, over all steps
        assert trainer["learning_rate_scheduler"] == {
            "type": "linear_with_warmup_ratio",
            "warmup_ratio": 0.06,
        }
    else:  # BertAdam with t_total -1: the learning rate stays as it is
        assert "learning_rate_scheduler" not in trainer
    # what every preset shares with the original's classifier.jsonnet
    optimizer = trainer["optimizer"]
    assert (optimizer["lr"], optimizer["betas"], optimizer["eps"]) == (2e-5, [0.9, 0.98], 1e-6)
    assert optimizer["weight_decay"] == 0.1
    assert optimizer["parameter_groups"][0][1] == {"weight_decay": 0}
    # its dropout on the first token's vector, and none in its feed-forward
    assert (params["model"]["dropout"], params["model"]["feedforward"]["dropout"]) == (0.1, 0)
    assert params["dataset_reader"]["max_sequence_length"] == 512
    assert trainer["validation_metric"] == "+macro_f1"


def test_a_variable_overrides_its_value_in_the_preset(environment):
    environment(
        **{**_PRESET_ONLY, "NUM_EPOCHS": "5", "EFFECTIVE_BATCH": "32"},
        PRESET="big",
        LR_SCHEDULE="0",
    )
    params = Params.from_file(CONFIG).as_dict()
    trainer = params["trainer"]
    assert (trainer["num_epochs"], trainer["patience"]) == (5, 3)
    assert params["data_loader"]["batch_sampler"]["batch_size"] == 32
    assert "learning_rate_scheduler" not in trainer
    environment(**_PRESET_ONLY, PRESET="mini", LR_SCHEDULE="true", PATIENCE="10")
    trainer = Params.from_file(CONFIG).as_dict()["trainer"]
    assert trainer["learning_rate_scheduler"]["warmup_ratio"] == 0.06
    assert (trainer["num_epochs"], trainer["patience"]) == (10, 10)


@pytest.mark.parametrize(
    "variable, value, allowed",
    [
        (
            "PRESET",
            "large",
            "one of small, mini or big (the original repository's ROBERTA_CLASSIFIER_SMALL, _MINI "
            "and _BIG)",
        ),
        (
            "CLASSIFIER_HEAD",
            "electra",
            "roberta (the paper's head, RoBERTa's) or bert (the encoder's own pooler, as "
            "BertForSequenceClassification)",
        ),
    ],
)
def test_a_bad_choice_names_the_allowed_ones(environment, variable, value, allowed):
    environment(**{variable: value})
    with pytest.raises(ConfigurationError) as error:
        Params.from_file(CONFIG)
    assert str(error.value) == (
        f"{CONFIG}: environment variable {variable} must be {allowed}; got {value}"
    )


def _training_batches(num_epochs: int):
    """The texts (token ids) of the training batches of `num_epochs` epochs, and of the file."""
    params = Params.from_file(CONFIG)
    reader = DatasetReader.from_params(params.pop("dataset_reader"))
    loader = DataLoader.from_params(
        params.pop("data_loader"), reader=reader, data_path=str(TASK / "train.jsonl")
    )
    loader.index_with(Vocabulary.from_instances(loader.iter_instances()))
    texts = [
        tuple(token.text_id for token in instance["tokens"].tokens)
        for instance in loader.iter_instances()
    ]
    epochs = [
        [
            [tuple(row[mask].tolist()) for row, mask in zip(tokens["token_ids"], tokens["mask"])]
            for tokens in (batch["tokens"]["roberta"] for batch in loader)
        ]
        for _ in range(num_epochs)
    ]
    return epochs, texts


def test_training_batches_are_each_epochs_own_and_the_same_in_a_resumed_run(environment):
    """
    Batches of texts of about the same length (`seeded_bucket`), every example once per epoch, in
    a new order per epoch that depends on SEED alone, so a resumed run (a new loader, replaying
    the earlier epochs) trains on the batches of the uninterrupted one.
    """
    environment(SEED="3")
    assert Params.from_file(CONFIG)["data_loader"]["batch_sampler"]["type"] == "seeded_bucket"
    epochs, texts = _training_batches(3)
    for epoch in epochs:
        assert sorted(text for batch in epoch for text in batch) == sorted(texts)
    assert epochs[0] != epochs[1] != epochs[2]
    random.seed(7)
    assert _training_batches(3)[0] == epochs
    environment(SEED="4")
    assert _training_batches(1)[0][0] != epochs[0]


def test_classifier_head_bert_is_bert_for_sequence_classifications_head(
    environment, monkeypatch, tmp_path
):
    """CLASSIFIER_HEAD=bert: no dropout before the tanh layer, which starts as the encoder's pooler."""
    environment()
    assert {
        key: Params.from_file(CONFIG)["model"].get(key)
        for key in ("dropout", "feedforward_from_pooler")
    } == {"dropout": 0.1, "feedforward_from_pooler": False}
    bert = tiny_encoder(tmp_path / "bert", BertConfig(**SMALL))
    monkeypatch.setenv("MODEL_NAME", str(bert))
    monkeypatch.setenv("CLASSIFIER_HEAD", "bert")
    params = Params.from_file(CONFIG)["model"]
    assert (
        params.get("dropout"),
        params["feedforward"]["dropout"],
        params.get("feedforward_from_pooler"),
    ) == (None, 0.1, True)
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(["inhibitor", "activator"], "labels")
    model = Model.from_params(vocab=vocab, params=params)
    pooler = model._text_field_embedder._token_embedders["roberta"].transformer_model.pooler.dense
    assert torch.equal(model._feedforward._linear_layers[0].weight, pooler.weight)
