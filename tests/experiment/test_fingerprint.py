import hashlib
import json
import os
import time

import pytest

from dapt_plugin.common.config_variables import resolve_config
from dapt_plugin.data.token_cache import file_sha256
from dapt_plugin.experiment.fingerprint import (
    RUN_ONLY_VARIABLES,
    FileHashes,
    describe_changes,
    determining_config,
    fingerprint,
)
from tests.conftest import CONFIGS, classifier_env, mlm_env


def test_a_file_is_hashed_again_only_when_its_size_or_time_changed(tmp_path, monkeypatch):
    corpus, memo = tmp_path / "corpus.txt", str(tmp_path / "hashes.json")
    corpus.write_text("one document\n")
    hashes = FileHashes(memo)
    first = hashes.sha256(str(corpus))
    assert first == file_sha256(str(corpus))
    hashes.save()
    hashed = []
    monkeypatch.setattr(
        "dapt_plugin.experiment.fingerprint.file_sha256", lambda path: hashed.append(path) or "new"
    )
    assert FileHashes(memo).sha256(str(corpus)) == first and hashed == []  # remembered across runs
    corpus.write_text("another document\n")
    os.utime(corpus, ns=(1, 1))
    assert FileHashes(memo).sha256(str(corpus)) == "new" and hashed == [str(corpus)]


def test_a_file_rewritten_with_its_old_size_and_modification_time_is_hashed_again(tmp_path):
    corpus, memo = tmp_path / "task.jsonl", str(tmp_path / "hashes.json")
    corpus.write_text('{"text": "a", "label": "activator"}\n')
    hashes = FileHashes(memo)
    first = hashes.sha256(str(corpus))
    hashes.save()
    before = os.stat(corpus)
    # later, by more than the file system's clock tick (4 ms, or 10, on kernels before 6.13)
    time.sleep(0.05)
    # labels swapped in place, the old times put back (as `cp -p`, `rsync -a` or `touch -r` do)
    corpus.write_text('{"text": "a", "label": "inhibitor"}\n')
    os.utime(corpus, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(corpus)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert FileHashes(memo).sha256(str(corpus)) == file_sha256(str(corpus)) != first


def test_a_directory_counts_every_file_in_it(tmp_path):
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "sub" / "weights.bin").write_bytes(b"\0")
    hashes = FileHashes(str(tmp_path / "hashes.json")).of([str(tmp_path / "model")])
    assert sorted(hashes) == [
        str(tmp_path / "model" / "config.json"),
        str(tmp_path / "model" / "sub" / "weights.bin"),
    ]


def test_changes_are_described_by_variable_file_and_upstream_phase():
    old = {
        "settings": {"NUM_STEPS": "4", "LR": "1"},
        "config": {"trainer": {"steps": 4}},
        "inputs": {"a.txt": "1", "b.txt": "2"},
        "upstream": {"dapt": "f1"},
    }
    new = {
        "settings": {"NUM_STEPS": "8", "LR": "2"},
        "config": {"trainer": {"steps": 8}},
        "inputs": {"a.txt": "1", "b.txt": "3"},
        "upstream": {"dapt": "f2"},
    }
    assert describe_changes(old, new, {"NUM_STEPS"}) == (
        "the resolved config changed (NUM_STEPS 4 -> 8); input files changed (b.txt); "
        "it starts from dapt, which changed"
    )
    # a change of the config file itself, not of a variable: the keys that changed
    edited = {**old, "config": {"trainer": {"steps": 5}}}
    assert (
        describe_changes(old, edited, {"NUM_STEPS"})
        == "the resolved config changed (trainer.steps 4 -> 5)"
    )
    callbacks = {
        **old,
        "config": {
            "trainer": {"steps": 4, "callbacks": [{"type": "a_callback_with_a_long_name"}] * 2}
        },
    }
    assert describe_changes(old, callbacks, set()) == (
        "the resolved config changed (trainer.callbacks.0.type unset -> "
        "a_callback_with_a_long_name, trainer.callbacks.1.type unset -> "
        "a_callback_with_a_long_name)"
    )
    # within a list, the entry and key that changed (a logging variable set in the shell)
    logged = {**callbacks, "config": {"trainer": {"steps": 4, "callbacks": [{"every": 50}]}}}
    relogged = {**callbacks, "config": {"trainer": {"steps": 4, "callbacks": [{"every": 10}]}}}
    assert describe_changes(logged, relogged, set()) == (
        "the resolved config changed (trainer.callbacks.0.every 50 -> 10)"
    )
    assert fingerprint(old["config"], old["inputs"], old["upstream"]) != fingerprint(
        edited["config"], old["inputs"], old["upstream"]
    )


def test_run_only_settings_at_their_defaults_leave_earlier_fingerprints_as_they_were():
    """Phases completed before the run-only settings were left out are still reused."""
    config = {
        "dataset_reader": {"type": "masked_lm_corpus", "cache_directory": None, "max_length": 64},
        "data_loader": {"type": "masked_lm_batches", "num_workers": 0, "batch_size": 8},
        "trainer": {"callbacks": [{"type": "training_curves", "log_every": 50}]},
    }
    earlier = hashlib.sha256(
        json.dumps({"config": config, "inputs": {}, "upstream": {}}, sort_keys=True).encode()
    ).hexdigest()
    assert fingerprint(config, {}, {}) == earlier
    config["dataset_reader"]["cache_directory"] = "/elsewhere"
    config["trainer"]["callbacks"][0]["log_every"] = 7
    assert fingerprint(config, {}, {}) == earlier
    config["dataset_reader"]["max_length"] = 128
    assert fingerprint(config, {}, {}) != earlier


@pytest.mark.parametrize("config", ["dapt.jsonnet", "tapt.jsonnet", "classifier.jsonnet"])
def test_the_run_only_settings_stand_in_for_the_configs_own_defaults(tiny_model, config):
    """Else a config at its defaults would change its fingerprint from the earlier versions'."""
    environment = (
        classifier_env(tiny_model) if config == "classifier.jsonnet" else mlm_env(tiny_model)
    )
    if config == "tapt.jsonnet":
        environment = {**environment, "NUM_STEPS": "", "NUM_CHECKPOINTS": "", "NUM_EPOCHS": "1"}
    resolved = resolve_config(str(CONFIGS / config), environment, unset=RUN_ONLY_VARIABLES)
    resolved = resolved.as_dict(quiet=True)
    assert determining_config(resolved) == resolved


@pytest.mark.parametrize("variable", RUN_ONLY_VARIABLES)
def test_each_run_only_variable_changes_only_run_only_settings(tiny_model, tmp_path, variable):
    """The variables the log leaves out of reasons are those whose settings are left out."""
    value = str(tmp_path / "cache") if variable == "DAPT_PLUGIN_CACHE" else "7"
    config, environment = str(CONFIGS / "dapt.jsonnet"), mlm_env(tiny_model)
    default = resolve_config(config, environment, unset=RUN_ONLY_VARIABLES).as_dict(quiet=True)
    changed = resolve_config(config, {**environment, variable: value}, unset=RUN_ONLY_VARIABLES)
    changed = changed.as_dict(quiet=True)
    assert changed != default and determining_config(changed) == determining_config(default)
