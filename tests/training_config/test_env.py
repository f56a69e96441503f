"""`training_config/lib/env.libsonnet`: every variable of the configs names itself and what it may be."""

import json

import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError

from tests.conftest import CONFIGS, classifier_env, mlm_env

ENVIRONMENTS = {
    "classifier.jsonnet": classifier_env,
    "dapt.jsonnet": mlm_env,
    "tapt.jsonnet": mlm_env,
}


def load(monkeypatch, config: str, **overrides: str) -> Params:
    """The config as `allennlp train` reads it, with the fixture environment and `overrides` set."""
    for name, value in ENVIRONMENTS[config]("roberta-base", **overrides).items():
        monkeypatch.setenv(name, value)
    return Params.from_file(str(CONFIGS / config))


@pytest.mark.parametrize("config", sorted(ENVIRONMENTS))
@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("EFFECTIVE_BATCH", "0", "an integer of at least 1"),
        ("BATCH_SIZE", "0", "an integer of at least 1"),
        ("BATCH_SIZE", "1.5", "an integer of at least 1"),
        ("MAX_LENGTH", "-8", "an integer of at least 1"),
        ("SEED", "-1", "an integer from 0 to 4294967295"),
        ("SEED", "4294967296", "an integer from 0 to 4294967295"),  # numpy takes seeds < 2**32
        ("LR", "abc", "a number above 0 (such as 0.1 or 2e-5)"),
        ("LR", "1e-", "a number above 0 (such as 0.1 or 2e-5)"),
        ("LR", "-1", "a number above 0"),
        ("LR", "0", "a number above 0"),
        # beyond what a double holds (jsonnet's numbers): the message named no variable
        ("BATCH_SIZE", "99999999999999999999999", "an integer of at least 1"),
        ("LR", "1e999", "a number above 0 (such as 0.1 or 2e-5)"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_allowed_values(
    monkeypatch, config, name, value, allowed
):
    with pytest.raises(ConfigurationError) as error:
        load(monkeypatch, config, **{name: value})
    assert (
        str(error.value)
        == f"{CONFIGS / config}: environment variable {name} must be {allowed}; got {value}"
    )


_DEVICES = (
    "comma-separated device numbers, such as 0 (one GPU), 0,1 (two GPUs), -1 (the CPU) or -1,-1 "
    "(two CPU workers)"
)


@pytest.mark.parametrize(
    "config, name, value, allowed",
    [
        ("dapt.jsonnet", "NUM_STEPS", "abc", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_STEPS", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_CHECKPOINTS", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_CHECKPOINTS", "abc", "an integer of at least 1"),
        ("tapt.jsonnet", "NUM_EPOCHS", "0", "an integer of at least 1"),
        ("tapt.jsonnet", "NUM_EPOCHS", "abc", "an integer of at least 1"),
        ("classifier.jsonnet", "NUM_EPOCHS", "0", "an integer of at least 1"),
        ("classifier.jsonnet", "NUM_EPOCHS", "abc", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_WORKERS", "-1", "an integer of at least 0"),
        ("dapt.jsonnet", "EXPORT_EVERY_STEPS", "0", "an integer of at least 1"),
        (
            "dapt.jsonnet",
            "MLM_PROBABILITY",
            "15%",
            "a number above 0 and below 1 (such as 0.1 or 2e-5)",
        ),
        ("tapt.jsonnet", "MLM_PROBABILITY", "1.5", "a number above 0 and below 1"),
        ("tapt.jsonnet", "MLM_PROBABILITY", "0", "a number above 0 and below 1"),
        ("tapt.jsonnet", "MLM_MODE", "packd", "one of document_windows, packed, line_by_line"),
        ("classifier.jsonnet", "PATIENCE", "0", "an integer of at least 1"),
        ("classifier.jsonnet", "TRAIN_SAMPLE", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_NODES", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "HEAD_WARMUP_STEPS", "-1", "an integer of at least 0"),
        (
            "classifier.jsonnet",
            "CUDA_DEVICES",
            "0,a",
            _DEVICES,
        ),
        (
            "dapt.jsonnet",
            "CUDA_DEVICES",
            "--1",
            _DEVICES,
        ),
    ],
)
def test_a_bad_value_of_a_config_s_own_variable(monkeypatch, config, name, value, allowed):
    with pytest.raises(ConfigurationError) as error:
        load(monkeypatch, config, **{name: value})
    assert (
        str(error.value)
        == f"{CONFIGS / config}: environment variable {name} must be {allowed}; got {value}"
    )


def test_good_values_are_read_as_numbers(monkeypatch):
    params = load(
        monkeypatch,
        "dapt.jsonnet",
        NUM_STEPS="12",
        NUM_CHECKPOINTS="3",
        LR="2E-4",
        SEED="0",
        MLM_PROBABILITY="0.2",
    )
    assert (
        params["data_loader"]["batches_per_epoch"] == 4 * 2
    )  # 12 steps / 3 checkpoints x 2 accumulation steps
    assert params["trainer"]["optimizer"]["lr"] == 2e-4
    assert params["model"]["mlm_probability"] == 0.2
    assert params["random_seed"] == 0


@pytest.mark.parametrize("config", ["dapt.jsonnet", "tapt.jsonnet"])
def test_group_by_length_groups_the_training_batches_only(monkeypatch, config):
    # off: not in the config, which stays as it was before the option (and so its fingerprint)
    for off in ({}, {"GROUP_BY_LENGTH": "false"}):
        assert "group_by_length" not in load(monkeypatch, config, **off)["data_loader"]
    params = load(monkeypatch, config, GROUP_BY_LENGTH="true")
    assert params["data_loader"]["group_by_length"] is True
    assert "group_by_length" not in params["validation_data_loader"]
    with pytest.raises(ConfigurationError, match="but every example of MLM_MODE=packed has"):
        load(monkeypatch, config, GROUP_BY_LENGTH="true", MLM_MODE="packed")


@pytest.mark.parametrize("address_variable", ["MASTER_ADDRESS", "MASTER_ADDR"])
def test_several_nodes_reach_the_primary_at_the_given_address(monkeypatch, address_variable):
    params = load(
        monkeypatch,
        "dapt.jsonnet",
        CUDA_DEVICES="0,1",
        NUM_NODES="2",
        EFFECTIVE_BATCH="32",
        BATCH_SIZE="8",
        **{address_variable: "10.1.2.3", "MASTER_PORT": "29555"},
    )
    distributed = params.as_dict()["distributed"]
    # the keys allennlp 2.10 reads; `master_address` was silently ignored
    assert (distributed["primary_address"], distributed["primary_port"]) == ("10.1.2.3", 29555)
    assert distributed["num_nodes"] == 2 and distributed["cuda_devices"] == [0, 1]


@pytest.mark.parametrize(
    "config, old, new",
    [
        ("classifier.jsonnet", "SAMPLE", "was renamed TRAIN_SAMPLE"),
        ("classifier.jsonnet", "GRAD_ACCUM", "was replaced by EFFECTIVE_BATCH"),
        ("dapt.jsonnet", "GRAD_ACCUM", "was replaced by EFFECTIVE_BATCH"),
        ("classifier.jsonnet", "CUDA_DEVICE", "was renamed CUDA_DEVICES"),
        ("dapt.jsonnet", "CUDA_DEVICE", "was renamed CUDA_DEVICES"),
        ("tapt.jsonnet", "CUDA_DEVICE", "was renamed CUDA_DEVICES"),
        ("dapt.jsonnet", "NUM_EPOCHS", "was renamed NUM_CHECKPOINTS in dapt.jsonnet"),
    ],
)
def test_a_renamed_variable_stops_the_run_naming_the_new_one(monkeypatch, config, old, new):
    with pytest.raises(ConfigurationError) as error:
        load(monkeypatch, config, **{old: "1"})
    assert str(error.value).startswith(f"{config}: environment variable {old} {new}")


def test_num_epochs_still_counts_the_passes_of_tapt_and_the_classifier(monkeypatch):
    tapt = load(monkeypatch, "tapt.jsonnet", NUM_STEPS="", NUM_CHECKPOINTS="", NUM_EPOCHS="7")
    assert tapt["trainer"]["num_epochs"] == 7 and tapt["data_loader"]["batches_per_epoch"] is None
    assert load(monkeypatch, "classifier.jsonnet", NUM_EPOCHS="4")["trainer"]["num_epochs"] == 4


def test_a_tapt_run_in_steps_counts_its_checkpoints_with_num_checkpoints(monkeypatch):
    tapt = load(monkeypatch, "tapt.jsonnet", NUM_STEPS="12", NUM_CHECKPOINTS="3")
    # 12 steps / 3 checkpoints x 2 accumulation steps (EFFECTIVE_BATCH 16, BATCH_SIZE 8)
    assert tapt["trainer"]["num_epochs"] == 3 and tapt["data_loader"]["batches_per_epoch"] == 8


@pytest.mark.parametrize(
    "config, overrides, message",
    [
        (
            "dapt.jsonnet",
            {"NUM_STEPS": "7", "NUM_CHECKPOINTS": "2"},
            "NUM_STEPS (7) must be a multiple of NUM_CHECKPOINTS (2), the number of checkpoints "
            "along the run",
        ),
        (
            "tapt.jsonnet",
            {"NUM_STEPS": "6", "NUM_EPOCHS": "2"},
            "NUM_EPOCHS (passes over the text) and NUM_STEPS (optimizer steps) both set the length "
            "of the run; set one of them",
        ),
        (
            "tapt.jsonnet",
            {"NUM_STEPS": "", "NUM_CHECKPOINTS": "2"},
            "NUM_CHECKPOINTS (2) counts the checkpoints along a run of NUM_STEPS optimizer steps, "
            "but NUM_STEPS is not set",
        ),
        (
            "classifier.jsonnet",
            {"EFFECTIVE_BATCH": "20", "BATCH_SIZE": "8"},
            "EFFECTIVE_BATCH (20) must be a multiple of BATCH_SIZE x number of workers "
            "(8 x 1: devices x NUM_NODES); change one of them",
        ),
    ],
)
def test_the_length_and_the_batch_of_a_run_must_add_up(monkeypatch, config, overrides, message):
    with pytest.raises(ConfigurationError) as error:
        load(monkeypatch, config, **overrides)
    assert str(error.value).startswith(f"{CONFIGS / config}: {message}")


@pytest.mark.parametrize(
    "overrides, batch_size, accumulation",
    [
        ({"EFFECTIVE_BATCH": "", "BATCH_SIZE": ""}, 16, 1),  # the paper's batch of 16
        ({"EFFECTIVE_BATCH": "", "BATCH_SIZE": "4"}, 4, 4),
        ({"EFFECTIVE_BATCH": "32", "BATCH_SIZE": "8"}, 8, 4),
        # two workers share the paper's 16 (BATCH_SIZE unset: EFFECTIVE_BATCH over the workers)
        ({"EFFECTIVE_BATCH": "", "BATCH_SIZE": "", "CUDA_DEVICES": "-1,-1"}, 8, 1),
        ({"EFFECTIVE_BATCH": "", "BATCH_SIZE": "4", "CUDA_DEVICES": "-1,-1"}, 4, 2),
    ],
)
def test_the_classifier_says_its_batch_as_the_masked_lm_configs_do(
    monkeypatch, overrides, batch_size, accumulation
):
    params = load(monkeypatch, "classifier.jsonnet", **overrides)
    assert params["data_loader"]["batch_sampler"]["batch_size"] == batch_size
    assert params["trainer"]["num_gradient_accumulation_steps"] == accumulation


@pytest.mark.parametrize("config", ["classifier.jsonnet", "dapt.jsonnet"])
@pytest.mark.parametrize(
    "devices, cuda_device, distributed",
    [("", None, None), ("0", 0, None), ("-1", -1, None), ("0,1", None, [0, 1])],
)
def test_cuda_devices_picks_one_device_or_several(
    monkeypatch, config, devices, cuda_device, distributed
):
    params = load(monkeypatch, config, CUDA_DEVICES=devices, EFFECTIVE_BATCH="16").as_dict()
    assert params["trainer"].get("cuda_device") == cuda_device
    assert params.get("distributed", {}).get("cuda_devices") == distributed


def test_the_configs_offer_the_masked_lm_modes_of_the_reader(monkeypatch):
    from dapt_plugin.data.tokenized_corpus import MODES

    for mode in MODES:
        assert load(monkeypatch, "dapt.jsonnet", MLM_MODE=mode)["dataset_reader"]["mode"] == mode
    with pytest.raises(ConfigurationError) as error:
        load(monkeypatch, "dapt.jsonnet", MLM_MODE="none")
    assert str(error.value).endswith(f"must be one of {', '.join(MODES)}; got none")


@pytest.mark.parametrize(
    "config, name, value, allowed",
    [
        ("dapt.jsonnet", "LR", "1e-3 ", "a number above 0 (such as 0.1 or 2e-5)"),
        ("classifier.jsonnet", "USE_AMP", " true", "true or false (or 1 or 0)"),
        ("classifier.jsonnet", "OPTIMIZER", "adamw\t", None),
    ],
)
def test_a_value_with_spaces_around_it_is_shown_in_quotes(
    monkeypatch, config, name, value, allowed
):
    with pytest.raises(ConfigurationError) as error:
        load(monkeypatch, config, **{name: value})
    assert str(error.value).endswith(f"; got {json.dumps(value)}")
    assert allowed is None or f"environment variable {name} must be {allowed}" in str(error.value)
