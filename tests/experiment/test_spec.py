import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.experiment.spec import load_experiment
from tests.conftest import ADAPT_SETTINGS, TASK, write_experiment

TASK_FILES = {split: str(TASK / f"{split}.jsonl") for split in ("train", "dev", "test")}


def _load(tmp_path, model, **overrides):
    return load_experiment(
        str(write_experiment(tmp_path / "experiment.jsonnet", model, **overrides))
    )


def _error(tmp_path, model, **overrides) -> str:
    with pytest.raises(ConfigurationError) as error:
        _load(tmp_path, model, **overrides)
    return error.value.message


def _settings(kind, **variables):
    return {**ADAPT_SETTINGS, kind: {**ADAPT_SETTINGS.get(kind, {}), **variables}}


def test_a_valid_experiment_records_its_file_and_the_environment_of_each_kind(tiny_model, tmp_path):
    spec = _load(tmp_path, tiny_model, settings=_settings("dapt", SEED=3, WHOLE_WORD_MASKING=True))
    assert spec.path == str(tmp_path / "experiment.jsonnet")
    assert spec.env("dapt") == {
        "MAX_LENGTH": "64",
        "BATCH_SIZE": "8",
        "LR": "0.001",
        "NUM_STEPS": "4",
        "NUM_CHECKPOINTS": "2",
        "EFFECTIVE_BATCH": "16",
        "SEED": "3",
        "WHOLE_WORD_MASKING": "true",
    }
    assert spec.env("classifier")["NUM_EPOCHS"] == "1"
    # a variable of `settings.all` goes to the phases whose config reads it
    spec = _load(tmp_path, tiny_model, settings=_settings("all", HEAD_WARMUP_STEPS=5))
    assert spec.env("dapt")["HEAD_WARMUP_STEPS"] == spec.env("tapt")["HEAD_WARMUP_STEPS"] == "5"
    assert "HEAD_WARMUP_STEPS" not in spec.env("classifier")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"variants": ["baseline", "dapt_plus"]}, "`variants[1]`: unknown variant 'dapt_plus'"),
        ({"seeds": 3}, "`seeds` must be a non-empty list of integers"),
        ({"seeds": [0, -1]}, "`seeds` must be integers from 0 to 4294967295; got -1"),
        ({"seeds": [10**20]}, "`seeds` must be integers from 0 to 4294967295; got 10000000000"),
        (
            {"settings": {"tpat": {}}},
            "`settings.tpat` is not a phase kind; did you mean `settings.tapt`?",
        ),
        ({"settings": {"xyz": {}}}, "`settings.xyz` is not a phase kind; the kinds are ['all', "),
        (
            {"domain_corpus": "/nowhere/corpus.txt"},
            "`domain_corpus`: /nowhere/corpus.txt: no such file",
        ),
        ({"metric": "f2"}, "`metric` must be one of"),
        ({"metric": ["macro_f1"]}, "`metric` must be one of"),
        ({"base_model": 5}, "`base_model` must be a model directory or a model-hub name"),
        (
            {"domain_corpus": ["data/domain.txt"]},
            "`domain_corpus` must be a path, a glob or comma-separated paths, in one string; "
            "got ['data/domain.txt']",
        ),
        ({"domain_corpus": 5}, "`domain_corpus` must be a path, a glob"),
        (
            {"tapt_extra": "data/unlabelled.jsonl"},
            "`tapt_extra` must be a list of files (paths or globs), e.g. "
            "['data/unlabelled.jsonl']; got 'data/unlabelled.jsonl'",
        ),
        ({"tapt_extra": [3]}, "`tapt_extra` must be a list of files"),
        ({"knn_k": True}, "`knn_k` must be a positive integer; got True"),
        (
            {"task": {**TASK_FILES, "train": str(TASK / "tr*.jsonl")}},
            f"`task.train` must be the path of one file, which the classifier reads as it is; "
            f"got {str(TASK / 'tr*.jsonl')!r}, a pattern or a list of paths",
        ),
        (
            {"task": {**TASK_FILES, "dev": ["d1.jsonl", "d2.jsonl"]}},
            "`task` must give `train`, `dev` and `test` files",
        ),
        ({"preset": 3}, "`preset` must be one of small, mini, big (classifier.jsonnet's"),
        (
            {"task": {"train": "t", "dev": "d", "test": "t", "smaple": 10}},
            "`task` must give `train`, `dev` and `test` files (and optionally `sample` and "
            "`sample_seed`)",
        ),
        (
            {"task": {**TASK_FILES, "sample": 0}},
            "`task.sample` must be a positive number of training examples; got 0",
        ),
        (
            {"task": {**TASK_FILES, "sample": 10, "sample_seed": -1}},
            "`task.sample_seed` must be an integer of at least 0; got -1",
        ),
        (
            {"task": {**TASK_FILES, "sample_seed": 1}},
            "`task.sample_seed` is given without `task.sample`",
        ),
        (
            {"base_model": "/nowhere/model"},
            "`base_model`: MODEL_NAME '/nowhere/model': no such directory",
        ),
    ],
)
def test_a_bad_experiment_names_the_key(tiny_model, tmp_path, overrides, message):
    assert message in _error(tmp_path, tiny_model, **overrides)


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            _settings("dapt", NUM_STEP=4),
            "`settings.dapt.NUM_STEP` is not a variable of dapt.jsonnet; did you mean NUM_STEPS?",
        ),
        (
            _settings("all", max_lenght=64),
            "`settings.all.max_lenght` is not a variable of dapt.jsonnet, "
            "tapt.jsonnet or classifier.jsonnet; did you mean MAX_LENGTH?",
        ),
        (
            _settings("dapt", LEARNING_RATE=1e-4),
            "`settings.dapt.LEARNING_RATE` is not a variable of dapt.jsonnet; did you mean LR?",
        ),
        (
            _settings("all", TRAIN_FILE="t.jsonl"),
            "`settings.all.TRAIN_FILE` is not a variable of dapt.jsonnet, tapt.jsonnet or "
            "classifier.jsonnet; it is TRAIN_PATH, which is set from the experiment's `task.train`",
        ),
        (
            _settings("classifier", MAX_TRAIN_SAMPLES=100),
            "it is TRAIN_SAMPLE, which an experiment gives as `task.sample`",
        ),
        (
            _settings("dapt", TRAIN_SAMPLE=100),
            "`settings.dapt.TRAIN_SAMPLE` is not a variable of dapt.jsonnet; it is TRAIN_SAMPLE, "
            "which an experiment gives as `task.sample`",
        ),
        (
            _settings("dapt", PRESET="big"),
            "it is PRESET, which is set from the experiment's `preset`",
        ),
        (
            _settings("dapt", EPOCHS=2),
            "`settings.dapt.EPOCHS` is not a variable of dapt.jsonnet; did you mean NUM_STEPS "
            "(dapt.jsonnet counts optimizer steps, not passes over the corpus)?",
        ),
        (
            _settings("classifier", MAX_STEPS=100),
            "did you mean NUM_EPOCHS (classifier.jsonnet counts passes over the training data, "
            "not steps)?",
        ),
        (
            _settings("tapt", WARMUP_STEPS=100),
            "`settings.tapt.WARMUP_STEPS` is not a variable of tapt.jsonnet; the config fixes it",
        ),
        (
            _settings("dapt", WEIGHT_DECAY=0.1),
            "`settings.dapt.WEIGHT_DECAY` is not a variable of dapt.jsonnet; the config fixes it "
            "at the paper's value (see its header)",
        ),
        (
            _settings("classifier", NUM_STEPS=4),
            "`settings.classifier.NUM_STEPS` is not a variable of classifier.jsonnet; it is a "
            "variable of dapt.jsonnet or tapt.jsonnet: set it in `settings.dapt` or `settings.tapt`",
        ),
        (
            _settings("dapt", SAMPLE=100),
            "`settings.dapt.SAMPLE` is not a variable of dapt.jsonnet; SAMPLE was renamed "
            "TRAIN_SAMPLE (the number of labelled training examples drawn at random), a variable "
            "of classifier.jsonnet",
        ),
        # a variable of dapt.jsonnet, but not of the classifier's config
        (
            _settings("classifier", MLM_PROBABILITY=0.2),
            "`settings.classifier.MLM_PROBABILITY` is not a variable of classifier.jsonnet",
        ),
        (
            _settings("all", OMP_NUM_THREADS=1),
            "are inherited from the environment of `allennlp adapt`",
        ),
    ],
)
def test_a_setting_that_no_config_reads_is_refused_with_the_closest_name(
    tiny_model, tmp_path, settings, message
):
    assert message in _error(tmp_path, tiny_model, settings=settings)


def test_a_fixed_setting_is_refused_without_the_overrides_an_experiment_cannot_give(
    tiny_model, tmp_path
):
    message = _error(tmp_path, tiny_model, settings=_settings("tapt", WARMUP_RATIO=0.1))
    assert message.endswith("the config fixes it at the paper's value (see its header)")


@pytest.mark.parametrize(
    "kind, name",
    [
        ("all", "PYTHONPATH"),
        ("dapt", "LD_PRELOAD"),
        ("tapt", "PATH"),
        ("classifier", "PYTHONSTARTUP"),
    ],
)
def test_process_variables_cannot_be_set_from_an_experiment(tiny_model, tmp_path, kind, name):
    message = _error(tmp_path, tiny_model, settings=_settings(kind, **{name: "/tmp/evil"}))
    assert (
        f"`settings.{kind}.{name}`: {name} is a variable of the Python process, not of a config, and "
        "cannot be set from an experiment" in message
    )


@pytest.mark.parametrize(
    "kind, name, source",
    [
        ("classifier", "TRAIN_PATH", "`task.train`"),
        ("tapt", "EXTRA_TAPT_PATHS", "`tapt_extra`"),
        ("dapt", "MODEL_NAME", "`base_model`"),
        ("all", "SEED", "`seeds` for the classifiers"),
        ("classifier", "TEST_PATH", "`task.test`"),
        ("classifier", "PRESET", "`preset`"),
    ],
)
def test_variables_the_experiment_sets_are_refused_in_settings(
    tiny_model, tmp_path, kind, name, source
):
    message = _error(tmp_path, tiny_model, settings=_settings(kind, **{name: "x"}))
    assert f"`settings.{kind}.{name}`: {name} is set from the experiment's {source}" in message


@pytest.mark.parametrize(
    "kind, name, message",
    [
        ("classifier", "SAMPLE", "SAMPLE was renamed TRAIN_SAMPLE"),
        ("classifier", "GRAD_ACCUM", "GRAD_ACCUM was replaced by EFFECTIVE_BATCH"),
        ("all", "CUDA_DEVICE", "CUDA_DEVICE was renamed CUDA_DEVICES"),
        ("dapt", "NUM_EPOCHS", "NUM_EPOCHS was renamed NUM_CHECKPOINTS in dapt.jsonnet"),
        # `all` reaches dapt.jsonnet too
        (
            "all",
            "NUM_EPOCHS",
            "NUM_EPOCHS was renamed NUM_CHECKPOINTS in dapt.jsonnet, where it counted the "
            "checkpoints along the NUM_STEPS optimizer steps; NUM_EPOCHS (passes over the text) is "
            "a variable of tapt.jsonnet and classifier.jsonnet; to set it for tapt.jsonnet or "
            "classifier.jsonnet, give it in `settings.tapt` or `settings.classifier`",
        ),
    ],
)
def test_a_renamed_variable_in_settings_is_refused_naming_the_new_one(
    tiny_model, tmp_path, kind, name, message
):
    error = _error(tmp_path, tiny_model, settings=_settings(kind, **{name: 1}))
    assert f"`settings.{kind}.{name}`: {message}" in error


def test_a_setting_must_be_a_single_value(tiny_model, tmp_path):
    message = _error(tmp_path, tiny_model, settings=_settings("dapt", NUM_STEPS=[4, 8]))
    assert "`settings.dapt.NUM_STEPS` must be a string, number or boolean; got [4, 8]" in message


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_setting_is_refused_not_read_as_the_default(tiny_model, tmp_path, value):
    """`NUM_STEPS: ''` trained DAPT's default 12,500 steps, without a word."""
    message = _error(tmp_path, tiny_model, settings=_settings("dapt", NUM_STEPS=value))
    assert (
        f"`settings.dapt.NUM_STEPS` is {value!r}, which the configs read as unset (their default) "
        "or refuse; give it a value, or remove it for the default"
    ) in message


@pytest.mark.parametrize("key", ["domain_corpus", "tapt_extra"])
def test_a_table_a_masked_lm_phase_would_read_stops_the_experiment_at_once(
    tiny_model, tmp_path, key
):
    """It stopped its phase only, after hours of DAPT for a table in `tapt_extra`."""
    table = tmp_path / "extra.csv"
    table.write_text("text,label\nsome text,1\n")
    value = [str(table)] if key == "tapt_extra" else str(table)
    where = "tapt_extra[0]" if key == "tapt_extra" else key
    assert f"`{where}`: {table}: a table (by its name)" in _error(
        tmp_path, tiny_model, **{key: value}
    )


def test_an_empty_setting_undoes_a_broader_layers_value(tiny_model, tmp_path):
    """`settings.all.LR` for every phase, and the classifier's own default LR."""
    settings = {"all": {"LR": 0.001}, "classifier": {"LR": ""}}
    experiment = write_experiment(tmp_path / "experiment.jsonnet", tiny_model, settings=settings)
    spec = load_experiment(str(experiment))
    assert spec.env("classifier")["LR"] == "" and spec.env("dapt")["LR"] == "0.001"


def test_the_original_repositorys_f1_is_macro_f1(tiny_model, tmp_path):
    experiment = write_experiment(tmp_path / "experiment.jsonnet", tiny_model, metric="f1")
    assert load_experiment(str(experiment)).metric == "macro_f1"


@pytest.mark.parametrize("kind", ["all", "classifier"])
def test_train_sample_in_settings_is_refused_for_task_sample(tiny_model, tmp_path, kind):
    message = _error(tmp_path, tiny_model, settings=_settings(kind, TRAIN_SAMPLE=100))
    assert (
        f"`settings.{kind}.TRAIN_SAMPLE`: TRAIN_SAMPLE samples only the classifiers' training "
        "data, while TAPT and the kNN-TAPT selection would still read all of `task.train`; give "
        "`task.sample` (and `task.sample_seed`) instead, which every phase reads" in message
    )


def test_a_task_sample_and_a_preset_are_read_with_their_defaults(tiny_model, tmp_path):
    spec = _load(tmp_path, tiny_model, task={**TASK_FILES, "sample": 20}, preset="mini")
    assert (spec.task, spec.task_sample, spec.task_sample_seed) == (TASK_FILES, 20, 0)
    assert spec.preset == "mini"
    spec = _load(tmp_path, tiny_model)
    assert (spec.task_sample, spec.preset) == (None, None)


def test_a_missing_experiment_file_is_said_in_one_line(tmp_path):
    path = tmp_path / "nowhere.jsonnet"
    with pytest.raises(ConfigurationError) as error:
        load_experiment(str(path))
    assert error.value.message.startswith(f"experiment {path}: no such file; give an experiment")
