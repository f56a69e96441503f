"""
The demo: the paper's Table 5 (baseline, DAPT, TAPT, DAPT+TAPT over three seeds) on made-up
pharmacology, end to end, on CPU, with nothing downloaded.

1. Writes the data (`data.py`, `generate_demo`): general text, a domain
   corpus, and a labelled task whose dev and test sets name compounds never seen in training.
2. Builds the base model: a tiny RoBERTa (random weights, a BPE vocabulary trained on the demo's
   text), then pretrained briefly on the general text with `training_config/dapt.jsonnet`, so
   it has seen general text, and neither the domain nor the task, before adaptation.
3. Runs `training_config/experiments/demo.jsonnet` as `allennlp adapt` does, prints the table.

Everything goes under `--output-dir` (default `demo_runs/`, git-ignored). Running it again
reuses what is complete: the base model when it exists, and every complete phase of the
experiment.
"""

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

import torch
import transformers

from dapt_plugin.common.configs import config_dir
from dapt_plugin.common.launch import run_allennlp
from dapt_plugin.demo.data import generate_demo
from dapt_plugin.experiment.runner import run_experiment
from dapt_plugin.experiment.spec import load_experiment
from dapt_plugin.testing.tiny_model import build_tiny_roberta

logger = logging.getLogger(__name__)


# Settings of dapt.jsonnet for the base model's general pretraining: 300 steps of 32 sentences at
# a low learning rate. Enough to learn the general text's words and phrasing; a longer or faster
# run leaves a 64-wide model too set in its ways to learn the domain within the demo's steps.
GENERAL_PRETRAINING = {
    "NUM_STEPS": "300",
    "NUM_CHECKPOINTS": "1",
    "EFFECTIVE_BATCH": "32",
    "BATCH_SIZE": "32",
    "LR": "5e-4",
    "MAX_LENGTH": "32",
    "SEED": "0",
    "OMP_NUM_THREADS": "1",
}


def demo_experiment() -> Path:
    """
    The demo's experiment file, among the plugin's configs (looked up when the demo runs: every
    module of the plugin is imported by `--include-package dapt_plugin`, configs or not).
    """
    return config_dir() / "experiments" / "demo.jsonnet"


def build_base_model(output_dir: Path) -> Path:
    """
    Writes the demo's data and base model under `output_dir` unless the base model is already
    there; returns the base model's directory (`base_model/exported_model`).

    # Parameters

    output_dir : `Path`
        The demo's directory.
    """
    base_model = output_dir / "base_model" / "exported_model"
    if base_model.is_dir():
        logger.info("Base model: %s (already built)", base_model)
        return base_model
    paths = generate_demo(output_dir / "data")
    logger.info("Data written to %s", output_dir / "data")
    initial = output_dir / "tiny_roberta"
    shutil.rmtree(initial, ignore_errors=True)
    build_tiny_roberta(
        initial,
        [paths[name] for name in ("general", "domain", "train", "unlabeled")],
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        max_length=128,
    )
    run = base_model.parent
    shutil.rmtree(run, ignore_errors=True)  # an interrupted earlier attempt: 15 seconds to redo
    logger.info(
        "Pretraining the tiny RoBERTa on general text (%s steps); log: %s",
        GENERAL_PRETRAINING["NUM_STEPS"],
        output_dir / "base_model.log",
    )
    env = {
        **GENERAL_PRETRAINING,
        "MODEL_NAME": str(initial),
        "CORPUS_PATH": str(paths["general"]),
        "DAPT_PLUGIN_CACHE": str(output_dir / "cache"),
    }
    with open(output_dir / "base_model.log", "w") as log:
        run_allennlp(
            ["train", config_dir() / "dapt.jsonnet", "-s", run],
            env,
            include_packages=["dapt_plugin"],
            log=log,
            check=True,
        )
    logger.info("Base model: %s", base_model)
    return base_model


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dapt_plugin.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--output-dir", default="demo_runs", help="where everything goes (default: demo_runs)"
    )
    args = parser.parse_args()
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.WARNING
    )
    logging.getLogger("dapt_plugin").setLevel(logging.INFO)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.logging.set_verbosity_error()  # "pooler weights newly initialized": unused under CLS pooling
    torch.set_num_threads(1)  # the in-process evaluations; the phases: OMP_NUM_THREADS below
    start = time.time()
    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    build_base_model(output_dir)
    os.environ["DEMO_DIR"] = str(output_dir)
    # a tiny model gains nothing from a second thread on a shared 2-core machine; the training
    # processes of the experiment inherit this
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_experiment(load_experiment(str(demo_experiment())), str(output_dir / "experiment"))
    minutes, seconds = divmod(round(time.time() - start), 60)
    print(f"Demo done in {minutes} min {seconds} s (everything under {output_dir})")
