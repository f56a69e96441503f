import dataclasses
import gzip
import json
import re

import pytest
from allennlp.common.checks import ConfigurationError
from cached_path.util import resource_to_filename

from dapt_plugin.common import paper_tasks
from dapt_plugin.common.configs import config_dir
from dapt_plugin.common.paper_tasks import ORIGINAL_URL, SPLITS, TASKS, task_files
from dapt_plugin.experiment.runner import ExperimentRunner
from dapt_plugin.experiment.spec import load_experiment
from tests.conftest import write_experiment

PAPER = sorted((config_dir() / "experiments" / "paper").glob("*.jsonnet"))
TABLES = config_dir() / "experiments" / "paper" / "tables"


def _mirror(root, names=TASKS, examples=2):
    """A mirror of the paper's tasks: `examples` examples per split of each task, two labels."""
    for name in names:
        (root / name).mkdir(parents=True)
        for split in SPLITS:
            lines = [
                json.dumps({"text": f"{name} {split} {i}", "label": str(i % 2)})
                for i in range(examples)
            ]
            (root / name / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_the_registry_holds_the_original_nine_tasks_with_the_papers_metrics():
    assert sorted(TASKS) == sorted(
        [
            "chemprot",
            "rct-20k",
            "rct-sample",
            "citation_intent",
            "sciie",
            "ag",
            "hyperpartisan_news",
            "imdb",
            "amazon",
        ]
    )
    micro = {name for name, task in TASKS.items() if task.metric == "micro_f1"}
    assert micro == {"chemprot", "rct-20k", "rct-sample"}
    assert TASKS["chemprot"].size == 4169 and TASKS["amazon"].size == 115251


def test_a_mirror_directory_gives_the_three_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DAPT_PLUGIN_DATA", str(_mirror(tmp_path, ["chemprot"])))
    assert task_files("chemprot") == {s: str(tmp_path / "chemprot" / f"{s}.jsonl") for s in SPLITS}


def test_a_mirror_url_is_read_through_cached_path(tmp_path, monkeypatch):
    monkeypatch.setenv("DAPT_PLUGIN_DATA", (_mirror(tmp_path, ["sciie"])).as_uri())
    files = task_files("sciie")
    assert list(files) == list(SPLITS)
    assert open(files["dev"]).readline().startswith('{"text": "sciie dev 0"')


def test_a_mirror_missing_a_split_names_it(tmp_path, monkeypatch):
    _mirror(tmp_path, ["imdb"])
    (tmp_path / "imdb" / "test.jsonl").unlink()
    monkeypatch.setenv("DAPT_PLUGIN_DATA", str(tmp_path))
    with pytest.raises(ConfigurationError, match="lacks .*imdb/test.jsonl"):
        task_files("imdb")


def test_an_unknown_task_lists_the_names():
    with pytest.raises(
        ConfigurationError, match="unknown task 'chemprott'; the paper's tasks are "
    ):
        task_files("chemprott")


def test_offline_without_a_mirror_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DAPT_PLUGIN_DATA", str(tmp_path))  # a mirror without the task
    with pytest.raises(ConfigurationError) as error:
        task_files("ag")
    message = error.value.message
    assert f"{ORIGINAL_URL}/ag/train.jsonl" in message and "offline" in message
    assert "in <dir>/ag/ and set DAPT_PLUGIN_DATA=<dir>" in message


def test_a_named_task_in_an_experiment_gives_its_files_and_metric(
    tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("DAPT_PLUGIN_DATA", str(_mirror(tmp_path / "mirror", ["chemprot"])))
    experiment = tmp_path / "experiment.jsonnet"
    raw = json.loads(write_experiment(experiment, tiny_model, task="chemprot").read_text())
    del raw["metric"]
    experiment.write_text(json.dumps(raw))
    spec = load_experiment(str(experiment))
    assert spec.task_name == "chemprot" and spec.metric == "micro_f1"
    assert spec.task["dev"] == str(tmp_path / "mirror" / "chemprot" / "dev.jsonl")
    sampled = {"name": "chemprot", "sample": 1}
    spec = load_experiment(str(write_experiment(experiment, tiny_model, task=sampled)))
    assert spec.task_sample == 1 and spec.metric == "macro_f1"  # the file's `metric` wins


def test_a_named_task_with_files_or_an_unknown_name_is_refused(tiny_model, tmp_path):
    experiment = tmp_path / "experiment.jsonnet"
    for task, message in [
        ({"name": "ag", "train": "t.jsonl"}, "a named task takes only"),
        ("agnews", "`task`: unknown task 'agnews'"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            load_experiment(str(write_experiment(experiment, tiny_model, task=task)))


def test_every_paper_experiment_loads_with_a_mirror(tmp_path, monkeypatch):
    assert sorted(p.stem for p in PAPER) == sorted(TASKS)
    monkeypatch.setenv("DAPT_PLUGIN_DATA", str(_mirror(tmp_path / "mirror")))
    monkeypatch.chdir(tmp_path)
    for domain in {task.domain for task in TASKS.values()}:
        (tmp_path / "data" / domain).mkdir(parents=True)
        with gzip.open(tmp_path / "data" / domain / "corpus.txt.gz", "wt") as handle:
            handle.write("some domain text\n")
    for path in PAPER:
        spec = load_experiment(str(path))
        task = TASKS[path.stem]
        assert spec.task_name == path.stem and spec.metric == task.metric
        assert spec.domain_corpus == f"data/{task.domain}/*.txt.gz"
        assert spec.seeds == [0, 1, 2, 3, 4] and spec.preset in ("small", "big")
        # the header quotes the task's row of the paper's Table 5, in the task's metric (RCT-500
        # is not a row of it)
        row = re.search(
            r"Table 5 row .* \(test (micro|macro) F1, mean of five seeds\):\n"
            r"//   baseline \d+\.\d, dapt \d+\.\d, tapt \d+\.\d, dapt_tapt \d+\.\d\n",
            path.read_text(),
        )
        assert (row is None) == (path.stem == "rct-sample")
        assert row is None or f"{row.group(1)}_f1" == task.metric


def test_offline_a_download_already_in_the_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DAPT_PLUGIN_DATA", raising=False)
    monkeypatch.setattr(paper_tasks, "CACHE_DIRECTORY", str(tmp_path))
    for split in SPLITS:
        url = f"{ORIGINAL_URL}/rct-sample/{split}.jsonl"
        (tmp_path / resource_to_filename(url, etag="abc")).write_text("{}\n")
    files = task_files("rct-sample")
    assert files["test"] == str(
        tmp_path / resource_to_filename(f"{ORIGINAL_URL}/rct-sample/test.jsonl", etag="abc")
    )


def test_each_table_of_the_paper_plans_its_experiment(tiny_model, tmp_path, monkeypatch):
    """The experiment files of `paper/tables/` (the README's "Reproducing the paper"), planned."""
    mirror = _mirror(tmp_path / "mirror", [name for name in TASKS if name != "rct-20k"])
    _mirror(mirror, ["rct-20k"], examples=600)  # table 7 samples 500 of it
    monkeypatch.setenv("DAPT_PLUGIN_DATA", str(mirror))
    monkeypatch.chdir(tmp_path)
    for corpus in ("biomed/a.txt.gz", "news/a.txt.gz"):
        (tmp_path / "data" / corpus).parent.mkdir(parents=True)
        with gzip.open(tmp_path / "data" / corpus, "wt") as handle:
            handle.write("some domain text\n")
    for text in ("rct-20k/train.jsonl", "rct-20k/unlabelled.jsonl", "heldout/biomed.txt"):
        (tmp_path / "data" / text).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / text).write_text('{"text": "unlabelled text"}\n')
    for domain in ("cs", "news", "reviews"):
        (tmp_path / "data" / "heldout" / f"{domain}.txt").write_text("held-out text\n")
    plans = {}
    for path in sorted(TABLES.glob("*.jsonnet")):
        spec = load_experiment(str(path))
        assert spec.base_model == "roberta-base"
        assert spec.seeds == [0, 1, 2, 3, 4] or path.stem == "heldout_mlm_loss"
        # planned with the tiny model in its place (no hub here), for one seed
        spec = dataclasses.replace(spec, base_model=str(tiny_model), seeds=[0])
        runner = ExperimentRunner(spec, str(tmp_path / "runs" / path.stem))
        plans[path.stem] = {
            phase.name: phase for phase in runner.phases if phase.kind != "classifier"
        }
    assert sorted(plans) == [
        "heldout_mlm_loss",
        "table3_not_dapt",
        "table6_transfer_tapt",
        "table7_curated_tapt",
        "table8_knn_tapt",
    ]
    assert plans["table3_not_dapt"]["dapt_not_dapt"].settings["CORPUS_PATH"] == "data/news/*.txt.gz"
    assert plans["table6_transfer_tapt"]["transfer_tapt"].settings["TAPT_PATH"] == (
        "data/rct-20k/train.jsonl"
    )
    table7 = plans["table7_curated_tapt"]
    assert list(table7) == [
        "task_sample",
        "dapt",
        "tapt",
        "dapt_tapt",
        "curated_tapt",
        "dapt_curated_tapt",
    ]
    assert table7["dapt_curated_tapt"].upstream == "dapt"
    assert table7["curated_tapt"].settings["EXTRA_TAPT_PATHS"] == "data/rct-20k/unlabelled.jsonl"
    table8 = plans["table8_knn_tapt"]
    assert [table8[name].settings.get("k") for name in table8 if name.startswith("select_")] == [
        50,
        None,  # RAND-TAPT: as many documents as the k = 50 selection
        150,
        500,
    ]
    assert table8["select_random"].upstream == "select_knn"
    assert [name for name in plans["heldout_mlm_loss"] if name.startswith("mlm_loss/")] == [
        "mlm_loss/base",
        "mlm_loss/dapt",
        "mlm_loss/tapt",
        "mlm_loss/dapt_tapt",
    ]
