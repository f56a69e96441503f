"""
The kill matrix: a validated classifier run and a validated DAPT run (the tiny RoBERTa of the
tests, the fixture task and text) are each killed with SIGKILL at one moment, resumed with
`allennlp train --recover`, and compared with an uninterrupted run of the same config and seed:
the weights in `model.tar.gz`, the export and its `dapt_export.json`, every metrics file (less
timings), and the leftovers of killed writers. Unlike the suite's test, which kills one run at
one moment after another, every moment here starts from a fresh run.

    .venv/bin/python benchmarks/kill_matrix.py
"""

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import REPO, append_results, markdown_table  # noqa: E402

from dapt_plugin.testing.kill import KILLED, leftovers, outcome, run_killed_at  # noqa: E402
from dapt_plugin.testing.tiny_model import build_tiny_roberta  # noqa: E402

DATA = REPO / "tests" / "fixtures" / "data"
CONFIGS = REPO / "training_config"

MOMENTS = {
    "classifier.jsonnet": [
        ("during an epoch checkpoint's write", r"replace:model_state_e1_b0\.th"),
        ("between the epoch checkpoint and best.th", r"link:best\.th"),
        ("between a later best epoch's checkpoint and best.th", r"link:best\.th:2"),
        ("during metrics_epoch_1.json", r"replace:metrics_epoch_1\.json"),
        ("during metrics.json", r"replace:metrics\.json"),
        ("during model.tar.gz", r"replace:model\.tar\.gz"),
    ],
    "dapt.jsonnet": [
        ("during a mid-epoch checkpoint's write", r"replace:model_state_e0_b1\.th"),
        ("during an epoch checkpoint's write", r"replace:model_state_e1_b0\.th"),
        ("between the epoch checkpoint and best.th", r"link:best\.th"),
        (
            "after an epoch's validation (resumes after its last batch)",
            r"replace:metrics_epoch_1\.json",
        ),
        ("during a step export", r"replace:exported_model_step_\d+"),
        ("during the final export", r"replace:exported_model"),
        ("during metrics.json", r"replace:metrics\.json"),
        ("during model.tar.gz", r"replace:model\.tar\.gz"),
    ],
}


def environment(config: str, model: Path, cache: Path) -> dict:
    common = {
        "MODEL_NAME": str(model),
        "MAX_LENGTH": "64",
        "BATCH_SIZE": "8",
        "DAPT_PLUGIN_CACHE": str(cache),
    }
    if config == "classifier.jsonnet":
        return {
            **common,
            "TRAIN_PATH": str(DATA / "task" / "train.jsonl"),
            "DEV_PATH": str(DATA / "task" / "dev.jsonl"),
            "EFFECTIVE_BATCH": "8",
            "NUM_EPOCHS": "3",
            "LR": "3e-3",
        }
    return {
        **common,
        "CORPUS_PATH": str(DATA / "task" / "train.jsonl"),
        "HELDOUT_PATH": str(DATA / "general.txt"),
        "EFFECTIVE_BATCH": "16",
        "NUM_STEPS": "9",
        "NUM_CHECKPOINTS": "3",
        "CHECKPOINT_EVERY_BATCHES": "1",
        "EXPORT_EVERY_STEPS": "3",
        "LR": "2e-2",
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kill_matrix-"))
    try:
        model = build_tiny_roberta(work / "model", [DATA / "general.txt", DATA / "domain.txt"])
        rows = []
        for config, moments in MOMENTS.items():
            env = environment(config, model, work / "cache")
            reference_run = work / config / "uninterrupted"
            reference_run.parent.mkdir()
            assert (
                run_killed_at(["train", str(CONFIGS / config), "-s", str(reference_run)], env, REPO)
                == 0
            )
            reference = outcome(reference_run)
            for number, (moment, kill_at) in enumerate(moments):
                run = work / config / f"killed_{number}"
                train = ["train", str(CONFIGS / config), "-s", str(run)]
                killed = run_killed_at(train, env, REPO, kill_at=kill_at) == KILLED
                left = leftovers(run)
                resumed = run_killed_at(train + ["--recover"], env, REPO) == 0
                identical = resumed and outcome(run) == reference
                rows.append(
                    [
                        config,
                        moment,
                        f"`{kill_at}`",
                        "yes" if killed else "not reached",
                        ", ".join(left) or "none",
                        "yes" if resumed else "NO",
                        "yes" if identical else "NO",
                        ", ".join(leftovers(run)) or "none",
                    ]
                )
        table = markdown_table(
            [
                "config",
                "moment of SIGKILL",
                "kill point",
                "killed",
                "left by the kill",
                "--recover finished",
                "identical to uninterrupted",
                "left after --recover",
            ],
            rows,
        )
        append_results(
            "Kill matrix: SIGKILL at each moment, then --recover",
            table,
            notes=(
                "Identical: the weights in model.tar.gz, exported_model and its dapt_export.json, "
                "metrics.json and every metrics_epoch_N.json (less training_duration and memory figures) "
                "equal those of an uninterrupted run. The classifier (3 epochs, validated on macro F1) has its "
                "best epoch before its last, and so has DAPT (9 steps in 3 epochs, held-out text, a "
                "checkpoint every step, a step export every 3 steps)."
            ),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
