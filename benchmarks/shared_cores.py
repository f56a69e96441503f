"""
Two training processes on one machine's cores, as `allennlp adapt --jobs 2` runs two phases: each
with half the threads, or each with every thread and GNU OpenMP's idle threads spinning for the
default time or sleeping soon (`GOMP_SPINCOUNT`, what the runner's `server_environment` sets).
Also each alone, as the last phase of an experiment runs once the others are done.

Each process trains a MiniLM-L6-shaped model (6 layers x 384, random weights: only the speed is
measured) for `--steps` (classifier) or `--mlm-steps` (masked LM) AdamW steps after 2 unmeasured
ones: a classifier (`BertForSequenceClassification`, batch 16 of 48 tokens, the fine-tuning of
`experiment.py`) or a masked LM (`BertForMaskedLM`, batch 16 of 128 tokens, one in 7 positions
predicted). Every setting runs `--repeats` times, the
settings alternating; the table gives the median milliseconds per step of each process.

    .venv/bin/python benchmarks/shared_cores.py [--steps 15] [--mlm-steps 3] [--repeats 2]
        [--threads 2]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

from _common import append_results, machine_description, markdown_table


def worker(model: str, steps: int) -> None:
    """Trains for `steps` steps; prints the milliseconds per step."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
    )
    if model == "classifier":
        network = BertForSequenceClassification(config)
        inputs = torch.randint(1000, 30000, (16, 48))
        labels = torch.zeros(16, dtype=torch.long)
    else:
        network = BertForMaskedLM(config)
        inputs = torch.randint(1000, 30000, (16, 128))
        labels = torch.full_like(inputs, -100)
        labels[:, ::7] = inputs[:, ::7]
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-5)

    def step() -> None:
        network(input_ids=inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(1000 * (time.perf_counter() - start) / steps)


def run(model: str, steps: int, processes: int, environment: Dict[str, str]) -> List[float]:
    """Milliseconds per step of each of `processes` workers started at once."""
    command = [sys.executable, __file__, "--worker", model, "--steps", str(steps)]
    started = [
        subprocess.Popen(
            command, env={**os.environ, **environment}, stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    return [float(process.communicate()[0]) for process in started]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=15, help="classifier steps per process")
    parser.add_argument("--mlm-steps", type=int, default=3, help="masked-LM steps per process")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="every thread of the machine")
    parser.add_argument("--worker", choices=["classifier", "masked_lm"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    every, half = str(args.threads), str(max(1, args.threads // 2))
    settings = {  # name: processes at once, environment
        "alone, every thread": (1, {"OMP_NUM_THREADS": every}),
        "alone, every thread, GOMP_SPINCOUNT=1000": (
            1,
            {"OMP_NUM_THREADS": every, "GOMP_SPINCOUNT": "1000"},
        ),
        f"alone, {half} thread(s)": (1, {"OMP_NUM_THREADS": half}),
        f"2 at once, {half} thread(s) each": (2, {"OMP_NUM_THREADS": half}),
        "2 at once, every thread each": (2, {"OMP_NUM_THREADS": every}),
        "2 at once, every thread each, GOMP_SPINCOUNT=1000": (
            2,
            {"OMP_NUM_THREADS": every, "GOMP_SPINCOUNT": "1000"},
        ),
    }
    os.environ.pop("GOMP_SPINCOUNT", None)
    os.environ.pop("OMP_WAIT_POLICY", None)
    models = ["classifier", "masked_lm"]
    times: Dict[str, Dict[str, List[float]]] = {m: {name: [] for name in settings} for m in models}
    for repeat in range(args.repeats):
        for model in models:
            for name, (processes, environment) in settings.items():
                steps = args.steps if model == "classifier" else args.mlm_steps
                times[model][name] += run(model, steps, processes, environment)
                print(model, name, times[model][name][-processes:], flush=True)
    rows = [
        [name]
        + [f"{statistics.median(times[model][name]):.0f}" for model in models]
        + [f"{settings[name][0] * 1000 / statistics.median(times['classifier'][name]):.2f}"]
        for name in settings
    ]
    table = markdown_table(
        [
            "setting",
            "classifier ms/step",
            "masked LM ms/step",
            "classifier steps/s of the machine",
        ],
        rows,
    )
    append_results(
        "Two phases on the same cores: thread shares against GNU OpenMP's spin count",
        table,
        notes=(
            f"MiniLM-L6 shape, random weights; classifier batch 16 x 48 tokens, masked LM "
            f"batch 16 x 128 (1 in 7 positions predicted); {args.steps} (classifier) and "
            f"{args.mlm_steps} (masked LM) measured AdamW steps per process after 2; "
            f"{args.repeats} repeats, settings alternating; medians over the "
            "processes of all repeats. Steps/s of the machine: the processes at once over the "
            "classifier's milliseconds per step. `GOMP_SPINCOUNT` unset is libgomp's default "
            "(300,000 spins before an idle thread sleeps)."
        ),
        machine=machine_description(args.threads, load_average=True),
    )


if __name__ == "__main__":
    main()
