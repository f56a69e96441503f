"""`training_config/lib/env.libsonnet`: every variable of the configs names itself and what it may be."""

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
        ("NUM_EPOCHS", "0", "an integer of at least 1"),
        ("NUM_EPOCHS", "abc", "an integer of at least 1"),
        ("BATCH_SIZE", "0", "an integer of at least 1"),
        ("BATCH_SIZE", "1.5", "an integer of at least 1"),
        ("MAX_LENGTH", "-8", "an integer of at least 1"),
        ("SEED", "-1", "an integer of at least 0"),
        ("LR", "abc", "a number (such as 0.1 or 2e-5)"),
        ("LR", "1e-", "a number (such as 0.1 or 2e-5)"),
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


@pytest.mark.parametrize(
    "config, name, value, allowed",
    [
        ("dapt.jsonnet", "NUM_STEPS", "abc", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_STEPS", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "EFFECTIVE_BATCH", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_WORKERS", "-1", "an integer of at least 0"),
        ("dapt.jsonnet", "EXPORT_EVERY_STEPS", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "MLM_PROBABILITY", "15%", "a number (such as 0.1 or 2e-5)"),
        ("classifier.jsonnet", "PATIENCE", "0", "an integer of at least 1"),
        ("classifier.jsonnet", "GRAD_ACCUM", "0", "an integer of at least 1"),
        ("classifier.jsonnet", "SAMPLE", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "NUM_NODES", "0", "an integer of at least 1"),
        ("dapt.jsonnet", "HEAD_WARMUP_STEPS", "-1", "an integer of at least 0"),
        (
            "classifier.jsonnet",
            "CUDA_DEVICES",
            "0,a",
            "comma-separated device numbers, such as 0,1 (or -1,-1 for CPU workers)",
        ),
        (
            "dapt.jsonnet",
            "CUDA_DEVICES",
            "--1",
            "comma-separated device numbers, such as 0,1 (or -1,-1 for CPU workers)",
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
        NUM_EPOCHS="3",
        LR="2E-4",
        SEED="0",
        MLM_PROBABILITY="0.2",
    )
    assert (
        params["data_loader"]["batches_per_epoch"] == 4 * 2
    )  # 12 steps / 3 epochs x 2 accumulation steps
    assert params["trainer"]["optimizer"]["lr"] == 2e-4
    assert params["model"]["mlm_probability"] == 0.2
    assert params["random_seed"] == 0


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
