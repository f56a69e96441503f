import logging

import pytest
from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params

from dapt_plugin.common import config_variables as config_variables_module
from dapt_plugin.common.config_variables import (
    RENAMED_VARIABLES,
    closest,
    config_variables,
    renamed_variable,
    resolve_config,
)
from tests.conftest import CONFIGS, DATA, TASK


def test_the_variables_of_each_config_are_read_from_it_and_its_imports():
    dapt, tapt, classifier = (
        config_variables(str(CONFIGS / name))
        for name in ("dapt.jsonnet", "tapt.jsonnet", "classifier.jsonnet")
    )
    assert {"MODEL_NAME", "CORPUS_PATH", "NUM_STEPS", "NUM_CHECKPOINTS", "HELDOUT_PATH"} <= dapt
    assert {"TAPT_PATH", "EXTRA_TAPT_PATHS", "NUM_EPOCHS"} <= tapt and "CORPUS_PATH" not in tapt
    assert {"TRAIN_PATH", "DEV_PATH", "TEST_PATH", "PATIENCE", "TRAIN_SAMPLE"} <= classifier
    assert "NUM_STEPS" not in classifier and "NUM_EPOCHS" not in dapt
    # lib/devices.libsonnet, lib/optim.libsonnet and lib/batch.libsonnet, imported by all three
    assert {"CUDA_DEVICES", "NUM_NODES", "FUSED_ADAMW", "EFFECTIVE_BATCH", "BATCH_SIZE"} <= (
        dapt & tapt & classifier
    )
    # the old names are read by no config
    assert not {"CUDA_DEVICE", "GRAD_ACCUM", "SAMPLE"} & (dapt | tapt | classifier)


def test_any_function_of_env_counts_and_comments_do_not(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "sizes.libsonnet").write_text(
        "local env = import 'env.libsonnet';\n{ width: env.positiveInt(\"WIDTH\", 3, min=1) }\n"
    )
    config = tmp_path / "config.jsonnet"
    config.write_text(
        "local env = import 'lib/env.libsonnet';\nlocal sizes = import 'lib/sizes.libsonnet';\n"
        "// env.int('COMMENTED_OUT', 1)\n{ depth: env.int( 'DEPTH', 2), width: sizes.width }\n"
    )
    assert config_variables(str(config)) == {"DEPTH", "WIDTH"}


def test_resolve_config_sees_the_overrides_as_a_training_process_would(tiny_model, monkeypatch):
    monkeypatch.setenv("SEED", "5")
    env = {
        "MODEL_NAME": str(tiny_model),
        "CORPUS_PATH": str(DATA / "domain.txt"),
        "NUM_STEPS": "8",
        "NUM_CHECKPOINTS": "2",
        "EFFECTIVE_BATCH": "16",
        "BATCH_SIZE": "8",
        "SEED": "2",
    }
    config = resolve_config(str(CONFIGS / "dapt.jsonnet"), env).as_dict()
    assert config["random_seed"] == 2  # `env` over the process's environment
    assert config["trainer"]["num_epochs"] == 2
    assert (
        config["data_loader"]["batches_per_epoch"] == 4 * 2
    )  # 8 steps over 2 checkpoints, 2 batches a step
    assert config["model"]["model_name"] == str(tiny_model)
    classifier = resolve_config(
        str(CONFIGS / "classifier.jsonnet"),
        {
            "MODEL_NAME": str(tiny_model),
            "TRAIN_PATH": str(TASK / "train.jsonl"),
            "DEV_PATH": str(TASK / "dev.jsonl"),
        },
    ).as_dict()
    assert classifier["train_data_path"] == str(TASK / "train.jsonl")
    assert classifier["random_seed"] == 5  # from the process's environment


def test_a_jsonnet_error_names_the_config_and_the_message(tiny_model):
    config = str(CONFIGS / "dapt.jsonnet")
    with pytest.raises(ConfigurationError) as error:
        resolve_config(config, {"CORPUS_PATH": str(DATA / "domain.txt")})
    assert error.value.message.startswith(f"{config}: environment variable MODEL_NAME is not set")
    with pytest.raises(ConfigurationError, match="BATCH_SIZE") as error:
        resolve_config(
            config, {"MODEL_NAME": str(tiny_model), "CORPUS_PATH": "c", "BATCH_SIZE": "0"}
        )
    assert "\n" not in error.value.message  # the message, not jsonnet's stack trace


def test_closest_ignores_case_and_gives_none_when_nothing_is_close():
    assert closest("NUM_STEP", {"NUM_STEPS", "NUM_EPOCHS"}) == "NUM_STEPS"
    assert closest("num_epochs", {"NUM_STEPS", "NUM_EPOCHS"}) == "NUM_EPOCHS"
    assert closest("OMP_NUM_THREADS", {"LR", "SEED"}) is None


@pytest.mark.parametrize(
    "typo, meant",
    [
        ("NUM_STEP", "NUM_STEPS"),
        ("MAX_LENGHT", "MAX_LENGTH"),
        ("BATCHSIZE", "BATCH_SIZE"),
        ("num_steps", "NUM_STEPS"),
        ("num_step", "NUM_STEPS"),
        ("NUM_CHECKPOINT", "NUM_CHECKPOINTS"),
    ],
)
def test_a_misspelled_variable_stops_the_run_naming_the_one_meant(monkeypatch, typo, meant):

    monkeypatch.setenv("MODEL_NAME", "roberta-base")
    monkeypatch.setenv("CORPUS_PATH", "corpus.txt")
    monkeypatch.setenv(typo, "4")
    with pytest.raises(ConfigurationError) as error:
        Params.from_file(str(CONFIGS / "dapt.jsonnet"))
    assert error.value.message == f"{typo} is not a variable of dapt.jsonnet; did you mean {meant}?"


@pytest.mark.parametrize(
    "config, name, message",
    [
        # the Hugging Face Trainer's and run_mlm.py's names, shortened words
        ("dapt", "LEARNING_RATE", "did you mean LR?"),
        ("dapt", "MAX_SEQ_LENGTH", "did you mean MAX_LENGTH?"),
        ("dapt", "MLM_PROB", "did you mean MLM_PROBABILITY?"),
        ("dapt", "MAX_LEN", "did you mean MAX_LENGTH?"),
        ("tapt", "NUM_TRAIN_EPOCHS", "did you mean NUM_EPOCHS?"),
        ("classifier", "EPOCHS", "did you mean NUM_EPOCHS?"),
        ("classifier", "TEST_FILE", "did you mean TEST_PATH?"),
        ("dapt", "NUM_TRAIN_EPOCHS", "did you mean NUM_STEPS (dapt.jsonnet counts optimizer steps"),
        ("dapt", "TRAIN_FILE", "did you mean CORPUS_PATH (the domain corpus)?"),
        ("tapt", "VALIDATION_FILE", "did you mean HELDOUT_PATH (held-out text for the masked-LM"),
        ("classifier", "MAX_TRAIN_SAMPLES", "did you mean TRAIN_SAMPLE?"),
        ("classifier", "LR_SCHEDULER_TYPE", "did you mean LR_SCHEDULE (true: warm-up over 6%"),
        ("classifier", "WARMUP_STEPS", "did you mean LR_SCHEDULE (true: warm-up over 6% of the"),
        ("dapt", "EVAL_STEPS", "did you mean NUM_CHECKPOINTS (a count, not an interval: "),
        ("dapt", "LR_SCHEDULER_TYPE", "override `trainer.learning_rate_scheduler`"),
        ("dapt", "LINE_BY_LINE", "did you mean MLM_MODE (line_by_line or packed)?"),
        ("tapt", "LOGGING_STEPS", "did you mean LOG_EVERY?"),
        ("dapt", "ADAM_BETA2", "override `trainer.optimizer.betas`"),
        (
            "classifier",
            "GRADIENT_ACCUMULATION_STEPS",
            "did you mean EFFECTIVE_BATCH (the examples per optimizer step;",
        ),
        # recipe values the configs fix
        (
            "dapt",
            "WEIGHT_DECAY",
            "the config fixes it at the paper's value (see its header); override "
            """`trainer.optimizer.weight_decay` with -o '{"trainer.optimizer.weight_decay": ...}'""",
        ),
        ("tapt", "WARMUP_RATIO", "override `trainer.learning_rate_scheduler.warmup_ratio`"),
        ("classifier", "MAX_GRAD_NORM", "override `trainer.grad_norm`"),
    ],
)
def test_a_variable_named_as_other_tools_name_it_stops_the_run_naming_this_ones(
    monkeypatch, config, name, message
):
    for variable, value in {
        "MODEL_NAME": "roberta-base",
        "CORPUS_PATH": "c.txt",
        "TAPT_PATH": "t.jsonl",
        "TRAIN_PATH": "t.jsonl",
        "DEV_PATH": "d.jsonl",
        name: "4",
    }.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as error:
        Params.from_file(str(CONFIGS / f"{config}.jsonnet"))
    assert error.value.message.startswith(f"{name} is not a variable of {config}.jsonnet; ")
    assert message in error.value.message


def test_a_variable_set_to_the_empty_string_is_logged_once_as_unset(monkeypatch, caplog):
    monkeypatch.setattr(config_variables_module, "_WARNED", set())
    for name, value in {"MODEL_NAME": "m", "CORPUS_PATH": "c.txt", "NUM_STEPS": ""}.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert Params.from_file(str(CONFIGS / "dapt.jsonnet"))["trainer"]["num_epochs"] == 10
    assert [record.getMessage() for record in caplog.records] == [
        "NUM_STEPS is set to the empty string, which dapt.jsonnet takes as unset: its default "
        "is used (a required variable is missing)"
    ]


def test_a_variable_of_a_sibling_config_only_is_logged_once_as_having_no_effect(
    monkeypatch, caplog
):
    monkeypatch.setattr(config_variables_module, "_WARNED", set())
    for name, value in {"MODEL_NAME": "m", "TRAIN_PATH": "t.jsonl", "DEV_PATH": "d.jsonl"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NUM_STEPS", "4")  # set for dapt.jsonnet, in the same shell
    for _ in range(3):  # `allennlp adapt` resolves the config of every classifier phase
        Params.from_file(str(CONFIGS / "classifier.jsonnet"))
    warnings = [r.getMessage() for r in caplog.records if "NUM_STEPS" in r.getMessage()]
    assert warnings == [
        "NUM_STEPS is set but classifier.jsonnet does not read it (it is a variable of "
        "dapt.jsonnet and tapt.jsonnet): it has no effect on this run"
    ]


def test_the_plugins_own_variables_are_never_said_to_have_no_effect(monkeypatch, caplog):
    monkeypatch.setattr(config_variables_module, "_WARNED", set())
    for name, value in {"MODEL_NAME": "m", "TRAIN_PATH": "t.jsonl", "DEV_PATH": "d.jsonl"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAPT_PLUGIN_CACHE", "/tmp/cache")  # read by the masked-LM configs only
    Params.from_file(str(CONFIGS / "classifier.jsonnet"))
    assert "DAPT_PLUGIN_CACHE" not in caplog.text


def test_variables_of_other_tools_and_of_sibling_configs_are_left_alone(monkeypatch):

    for name, value in {
        "MODEL_NAME": "roberta-base",
        "TRAIN_PATH": "t.jsonl",
        "DEV_PATH": "d.jsonl",
        "NUM_STEPS": "4",
        "CORPUS_PATH": "c.txt",
        "CUDA_VISIBLE_DEVICES": "0",
        "MASTER_ADDR": "10.0.0.1",
        "MAX_JOBS": "4",
        "OMP_NUM_THREADS": "1",
        "_": "/bin/env",
        # names of clusters, schedulers and shells one edit or two from a variable
        "NODE_NAME": "n1",
        "MASTER_HOST": "h",
        "NUM_PROC": "8",
        "NUM_PROCS": "8",
        "SEEDS": "1,2",
        "FP16": "1",
        "GEM_PATH": "/g",
        "KEY_PATH": "/k",
        "CERT_PATH": "/c",
        "TEMP_PATH": "/t",
        "TEXT_PATH": "/t",
        "TASK_PATH": "/t",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
    }.items():
        monkeypatch.setenv(name, value)
    assert Params.from_file(str(CONFIGS / "classifier.jsonnet"))["train_data_path"] == "t.jsonl"


def test_an_old_name_is_refused_by_the_configs_that_read_its_new_name_and_not_it():
    dapt, tapt, classifier = (
        config_variables(str(CONFIGS / name))
        for name in ("dapt.jsonnet", "tapt.jsonnet", "classifier.jsonnet")
    )
    refused = {
        old: sorted(
            name
            for name, variables in (("dapt", dapt), ("tapt", tapt), ("classifier", classifier))
            if renamed_variable(old, variables)
        )
        for old in RENAMED_VARIABLES
    }
    assert refused == {
        "SAMPLE": ["classifier"],
        "GRAD_ACCUM": ["classifier", "dapt", "tapt"],
        "CUDA_DEVICE": ["classifier", "dapt", "tapt"],
        "NUM_EPOCHS": ["dapt"],  # TAPT's and the classifier's NUM_EPOCHS count passes
    }
    assert renamed_variable("SAMPLE", classifier) == (
        "SAMPLE was renamed TRAIN_SAMPLE (the number of labelled training examples drawn at random)"
    )


def test_a_config_resolved_again_sees_its_files_and_the_environment_as_they_are_now(tmp_path):
    (tmp_path / "lib.libsonnet").write_text("{ steps: 4 }")
    config = tmp_path / "config.jsonnet"
    config.write_text(
        "local lib = import 'lib.libsonnet';\n{ steps: lib.steps, seed: std.extVar('SEED') }"
    )
    first = resolve_config(str(config), {"SEED": "1"})
    assert first.as_dict() == {"steps": 4, "seed": "1"}
    first["steps"] = 99  # the caller's copy: changing it changes no later result
    assert resolve_config(str(config), {"SEED": "1"}).as_dict() == {"steps": 4, "seed": "1"}
    assert resolve_config(str(config), {"SEED": "2"}).as_dict() == {"steps": 4, "seed": "2"}
    (tmp_path / "lib.libsonnet").write_text("{ steps: 8 }")  # an imported file changed
    assert resolve_config(str(config), {"SEED": "1"}).as_dict() == {"steps": 8, "seed": "1"}
