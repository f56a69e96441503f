"""
Variants an experiment file defines as chains of phases (`dapt_plugin/experiment/variants.py`):
what the runner plans for them, what they share with each other and with the built-in variants,
and the mistakes that stop the experiment before any phase. In-process, on the runner's plan.
"""

import shutil

import pytest
from allennlp.common.checks import ConfigurationError

from dapt_plugin.experiment.runner import ExperimentRunner
from dapt_plugin.experiment.spec import load_experiment
from tests.conftest import ADAPT_SETTINGS, DATA, TASK, write_experiment

NEWS = str(DATA / "general.txt")  # an irrelevant domain for the fixture's pharmacology task
OTHER_TASK = str(DATA / "domain_heldout.txt")  # text of "another task" of the domain


def _runner(tmp_path, model, variants, **overrides) -> ExperimentRunner:
    path = write_experiment(tmp_path / "experiment.json", model, variants=variants, **overrides)
    return ExperimentRunner(load_experiment(str(path)), str(tmp_path / "out"))


def _phases(runner):
    return {phase.name: phase for phase in runner.phases}


def test_each_paper_experiment_is_a_chain_with_its_own_data_and_settings(tiny_model, tmp_path):
    variants = [
        "baseline",
        "dapt",
        "tapt",
        {"name": "not_dapt", "dapt": {"corpus": NEWS}},  # Table 3
        {"name": "transfer_tapt", "tapt": {"text": OTHER_TASK}},  # Table 6
        {"name": "curated_tapt", "tapt": {"extra": [OTHER_TASK]}},  # Table 7
        # Table 8 at another k, with a TAPT budget of its own, and its random control
        {
            "name": "knn_tapt_5",
            "select": {"method": "knn", "k": 5},
            "tapt": {"settings": {"NUM_EPOCHS": 7}},
        },
        {"name": "rand_tapt_5", "select": {"method": "random", "k": 5}},
        # whole documents from a smaller pool, embedded by the VAMPIRE-like model
        {
            "name": "knn_documents",
            "select": {
                "method": "knn",
                "unit": "document",
                "pool_size": 100,
                "embedder": "vampire",
            },
        },
    ]
    runner = _runner(tmp_path, tiny_model, variants)
    out, phases = runner.output, _phases(runner)
    assert list(phases)[:10] == [
        "dapt",
        "dapt_not_dapt",
        "select_knn_knn_tapt_5",
        "select_random_rand_tapt_5",
        "select_knn_knn_documents",
        "tapt",
        "transfer_tapt",
        "curated_tapt",
        "knn_tapt_5",
        "rand_tapt_5",
    ]
    assert phases["dapt_not_dapt"].settings["CORPUS_PATH"] == NEWS
    assert phases["dapt_not_dapt"].config["train_data_path"] == NEWS
    classifier = phases["classifier/not_dapt/seed_0"]
    assert classifier.upstream == "dapt_not_dapt"
    assert classifier.settings["MODEL_NAME"] == str(out / "dapt_not_dapt" / "exported_model")
    transfer = phases["transfer_tapt"]
    assert (transfer.settings["TAPT_PATH"], transfer.settings["MODEL_NAME"]) == (
        OTHER_TASK,
        str(tiny_model),
    )
    assert phases["curated_tapt"].settings["EXTRA_TAPT_PATHS"] == OTHER_TASK
    assert phases["curated_tapt"].settings["TAPT_PATH"] == str(TASK / "train.jsonl")
    knn = phases["select_knn_knn_tapt_5"]
    assert (knn.settings["method"], knn.settings["k"]) == ("knn", 5)
    assert phases["select_random_rand_tapt_5"].upstream == knn.name  # as many as it selects
    assert phases["knn_tapt_5"].upstream == knn.name
    assert phases["knn_tapt_5"].settings["EXTRA_TAPT_PATHS"] == str(knn.outputs[0])
    assert phases["knn_tapt_5"].config["trainer"]["num_epochs"] == 7
    assert phases["tapt"].config["trainer"]["num_epochs"] == ADAPT_SETTINGS["tapt"]["NUM_EPOCHS"]
    assert phases["rand_tapt_5"].config["trainer"]["num_epochs"] == 3
    # the built-in selections keep their files; the others are named after their phase
    assert knn.outputs[0] == out / "selection" / "select_knn_knn_tapt_5.jsonl"
    assert knn.settings["unit"] == "sentence" and "embedder" not in knn.settings
    documents = phases["select_knn_knn_documents"].settings
    assert (documents["unit"], documents["pool_size"], documents["embedder"]) == (
        "document",
        100,
        "vampire",
    )


def test_phases_made_from_the_same_inputs_are_planned_once_and_shared(tiny_model, tmp_path):
    variants = [
        "dapt",
        "dapt_tapt",
        {"name": "my_dapt", "dapt": {}},  # the built-in DAPT
        {"name": "same_tapt", "tapt": {"settings": {"NUM_EPOCHS": 3}}},  # the same as tapt's
        "tapt",
        {"name": "knn_again", "select": {"method": "knn", "k": 3}},  # knn_k is 3
        "knn_tapt",
    ]
    phases = _phases(_runner(tmp_path, tiny_model, variants))
    # a shared phase is named after the paper's variant among those that share it
    assert [name for name in phases if not name.startswith("classifier/")] == [
        "dapt",
        "select_knn",
        "dapt_tapt",
        "tapt",
        "knn_tapt",
    ]
    assert phases["classifier/my_dapt/seed_0"].upstream == "dapt"
    assert phases["classifier/same_tapt/seed_0"].upstream == "tapt"
    assert phases["classifier/knn_again/seed_0"].upstream == "knn_tapt"
    assert phases["knn_tapt"].upstream == "select_knn"


def test_a_changed_variant_reruns_its_own_chain_only(tiny_model, tmp_path):
    corpus = tmp_path / "news.txt"
    shutil.copy(NEWS, corpus)
    variants = ["baseline", "dapt", {"name": "not_dapt", "dapt": {"corpus": str(corpus)}}]
    runner = _runner(tmp_path, tiny_model, variants)
    for phase in runner.phases:
        phase.directory.mkdir(parents=True, exist_ok=True)
        for path in phase.outputs:
            path.write_text('{"macro_f1": 0.5}')
        runner.write_marker(phase, "complete")
    with open(corpus, "a") as handle:
        handle.write("one more news story .\n")
    plan = {
        phase.name: action for phase, action, _ in _runner(tmp_path, tiny_model, variants).plan()
    }
    assert {name for name, action in plan.items() if action != "reuse"} == {
        "dapt_not_dapt",
        "classifier/not_dapt/seed_0",
    }


@pytest.mark.parametrize(
    "variant, message",
    [
        ({"name": "dapt", "dapt": {}}, "`variants[1].name` must be a new name"),
        ({"name": "Not DAPT", "dapt": {}}, "`variants[1].name` must be a new name"),
        # the base model's encoder in `mlm_loss/`, which its TAPT phase would take
        ({"name": "base", "tapt": {}}, "'base']; got 'base'"),
        ({"name": "x"}, "`variants[1]` (x) has no step"),
        ({"name": "x", "dapt": {"corpora": NEWS}}, "`dapt` must be an object with keys from"),
        ({"name": "x", "pretrain": {}}, "unknown keys ['pretrain']"),
        ({"name": "x", "select": {"method": "nearest"}}, "`select.method` must be knn or random"),
        (
            {"name": "x", "select": {"method": "knn", "size": 9}},
            "`select.size` is the size of a random",
        ),
        (
            {"name": "x", "select": {"method": "knn", "k": 0}},
            "`select.k` must be a positive integer",
        ),
        (
            {"name": "x", "select": {"method": "knn", "unit": "word"}},
            "`select.unit` must be one of",
        ),
        (
            {"name": "x", "select": {"method": "knn", "embedder": "bert"}},
            "`select.embedder` must be",
        ),
        (
            {"name": "x", "tapt": {"settings": {"NUM_EPOCH": 9}}},
            "`variants[1] (x).tapt.settings.NUM_EPOCH` is not a variable of tapt.jsonnet; "
            "did you mean NUM_EPOCHS?",
        ),
        (
            {"name": "x", "tapt": {"settings": {"TAPT_PATH": "a.txt"}}},
            "`variants[1] (x).tapt.settings.TAPT_PATH`: TAPT_PATH is set from the experiment",
        ),
        (
            {"name": "x", "tapt": {"text": str(TASK / "gone.jsonl")}},
            "`variants[1] (x).tapt.text`: ",
        ),
        ("dapt_plus", "`variants[1]`: unknown variant 'dapt_plus'"),
    ],
)
def test_a_bad_variant_stops_the_experiment_naming_it(tiny_model, tmp_path, variant, message):
    with pytest.raises(ConfigurationError) as error:
        _runner(tmp_path, tiny_model, ["baseline", variant])
    assert message in error.value.message
    assert not (tmp_path / "out").exists()


def test_a_variant_given_twice_or_whose_phase_names_clash_is_refused(tiny_model, tmp_path):
    with pytest.raises(ConfigurationError, match="variant 'x' is given twice"):
        _runner(tmp_path, tiny_model, [{"name": "x", "dapt": {}}, {"name": "x", "tapt": {}}])
    # DAPT of variant `x` on another corpus is `dapt_x`, a name variant `dapt_x`'s TAPT also takes
    clash = [{"name": "x", "dapt": {"corpus": NEWS}}, {"name": "dapt_x", "tapt": {}}]
    with pytest.raises(ConfigurationError, match="two different phases would be named 'dapt_x'"):
        _runner(tmp_path, tiny_model, clash)


def test_a_random_selection_of_a_given_size_draws_that_many(
    tiny_model, tmp_path, phase_calls_in_process
):
    variants = [{"name": "rand_20", "select": {"method": "random", "size": 20}}]
    runner = _runner(tmp_path, tiny_model, variants)
    selection = _phases(runner)["select_random_rand_20"]
    assert selection.upstream is None  # no kNN selection to match
    runner._run_selection(selection, "run")
    assert len(selection.outputs[0].read_text().splitlines()) == 20


@pytest.mark.process
def test_what_a_selection_raises_in_its_process_is_raised_by_the_runner(tiny_model, tmp_path):
    """Its own error (here naming the domain corpus), as when it ran in the runner's process."""
    corpus = tmp_path / "domain.txt"
    shutil.copy(DATA / "domain.txt", corpus)
    variants = [{"name": "rand_20", "select": {"method": "random", "size": 20}}]
    runner = _runner(tmp_path, tiny_model, variants, domain_corpus=str(corpus))
    corpus.write_text("\n\n")  # emptied after the dry run
    with pytest.raises(ConfigurationError) as error:
        runner._run_selection(_phases(runner)["select_random_rand_20"], "run")
    message = (
        f"cannot sample 20 sentences from a domain corpus of 0 distinct sentences ({corpus}); "
        "lower `size` (or `k`)"
    )
    assert error.value.message == message
    assert message in (tmp_path / "out" / "train.log").read_text()  # its report, in the log


def test_a_random_selection_larger_than_its_pool_is_refused_before_any_phase(tiny_model, tmp_path):
    given = {"name": "x", "select": {"method": "random", "size": 50, "pool_size": 49}}
    with pytest.raises(ConfigurationError) as error:
        _runner(tmp_path, tiny_model, ["baseline", given])
    assert (
        "phase select_random_x (variant x): its random sample of 50 sentences (`select.size`) "
        "exceeds `select.pool_size` (49), the units it is drawn from; raise `select.pool_size` "
        "or lower `select.size`"
    ) in error.value.message
    # one that matches the kNN selection of its k takes what that one selected from the same
    # pool, however many k x the task's examples are
    matched = {"name": "y", "select": {"method": "random", "k": 30, "pool_size": 100}}
    _runner(tmp_path, tiny_model, ["baseline", matched])
    assert not (tmp_path / "out").exists()


def test_a_selections_console_line_counts_its_units(tiny_model, tmp_path):
    runner = _runner(
        tmp_path,
        tiny_model,
        [
            "baseline",
            "knn_tapt",
            {"name": "whole", "select": {"method": "knn", "unit": "document"}},
        ],
    )
    for name, unit in (("select_knn", "sentences"), ("select_knn_whole", "documents")):
        phase = _phases(runner)[name]
        phase.outputs[0].parent.mkdir(parents=True, exist_ok=True)
        phase.outputs[0].write_text('{"text": "a"}\n{"text": "b"}\n')
        assert runner._outcome(phase) == f"2 {unit} selected"
