"""
The data of the demo (`make demo`), written for this project (no third-party text): a "general"
corpus, a "domain" corpus and a labelled task whose labels depend on domain knowledge.

The domain is a made-up pharmacology. Every compound belongs to one of two classes. Domain
sentences mention compounds together with words typical of their class ("inhibits", "blocks" for
class `inhibitor`; "activates", "stimulates" for class `activator`). Task sentences mention a
compound with neutral words only, so a classifier can tell the label of a compound it has never
seen labelled only if its encoder already learned, by masked-LM training on domain or task text,
which compounds behave alike. Labelled train and test sets use disjoint compounds. `generate_demo`
is shaped so that a tiny model learns the domain knowledge within a few minutes on a CPU (see its
docstring).
"""

import random
from pathlib import Path
from typing import Dict, List, Union

from dapt_plugin.testing.text import pseudo_words, write_jsonl, write_lines

LABELS = ("inhibitor", "activator")

_SYLLABLES = [
    "zo",
    "vex",
    "ta",
    "min",
    "ra",
    "lo",
    "quin",
    "dex",
    "sa",
    "tor",
    "ni",
    "fel",
    "mo",
    "zan",
    "pri",
    "cal",
    "dor",
    "vi",
    "ne",
    "ox",
    "bu",
    "tri",
    "sol",
    "gan",
    "lu",
    "mex",
    "pa",
    "rin",
    "ko",
    "zel",
]
_CLASS_WORDS = {
    "inhibitor": ["inhibits", "blocks", "suppresses", "silences", "dampens", "antagonises"],
    "activator": ["activates", "stimulates", "enhances", "triggers", "amplifies", "agonises"],
}
_TARGETS = [
    "the receptor",
    "the kinase",
    "the channel",
    "the enzyme",
    "the transporter",
    "the pathway",
]
_GENERAL_SUBJECTS = [
    "the teacher",
    "a farmer",
    "my neighbour",
    "the child",
    "an old man",
    "the cook",
]
_GENERAL_VERBS = ["walked to", "looked at", "painted", "cleaned", "opened", "visited", "described"]
_GENERAL_OBJECTS = [
    "the garden",
    "a small house",
    "the river",
    "the market",
    "a red door",
    "the school",
]
_GENERAL_TAILS = [
    "in the morning",
    "after lunch",
    "with a friend",
    "before the rain",
    "on sunday",
    "slowly",
]


def make_compounds(n: int, seed: int = 0) -> Dict[str, str]:
    """`n` unique made-up compound names of three syllables, each assigned a class, half per class."""
    names = pseudo_words(n, _SYLLABLES, random.Random(seed), syllables_per_word=(3, 3))
    return {name: LABELS[i % 2] for i, name in enumerate(names)}


def general_sentence(rng: random.Random) -> str:
    return " ".join(
        [
            rng.choice(_GENERAL_SUBJECTS),
            rng.choice(_GENERAL_VERBS),
            rng.choice(_GENERAL_OBJECTS),
            rng.choice(_GENERAL_TAILS),
            ".",
        ]
    )


# `generate_demo`: every sentence starts with "the drug <compound>", so that a compound is always
# the same token. Byte-level BPE gives a word at the start of a line a different token (no leading
# space) than inside a line, and a compound seen as two unrelated tokens cannot carry what DAPT or
# TAPT learned about it into the task.
_DEMO_DOMAIN_TEMPLATE = "the drug {c} {w} {t} ."
_DEMO_TASK_TAILS = [
    "was given to patients",
    "was added to the culture",
    "was measured in blood",
    "was tested in mice",
]
_DEMO_TASK_TEMPLATE = "the drug {c} {tail} ."
_DEMO_UNLABELED_TEMPLATE = "the drug {c} {w} {t} {place} ."
_DEMO_PLACES = ["in patients", "in the culture", "in blood", "in mice"]
# General text mentions the compounds too (a base model has seen the names, not their
# pharmacology), each with a shop colour of its own drawn independently of its class: the
# compounds become distinct tokens for the base model without any hint of their labels.
_DEMO_GENERAL_TEMPLATES = [
    "{a} bought the drug {c} at the {m} shop {tail} .",
    "the {m} shop sells the drug {c} .",
]
_SHOP_COLOURS = ["red", "blue", "green", "yellow", "white", "black", "brown", "grey"]


def generate_demo(
    output_dir: Union[str, Path],
    num_compounds: int = 40,
    class_words_per_label: int = 2,
    general_sentences: int = 3000,
    general_mention_rate: float = 0.3,
    domain_sentences: int = 4000,
    train_size: int = 200,
    dev_size: int = 200,
    test_size: int = 400,
    unlabeled_task_size: int = 1500,
    seed: int = 0,
) -> Dict[str, Path]:
    """
    Writes the data of `make demo` under `output_dir`, one sentence per line: `general.txt`,
    `domain.txt`, and the task `task/train.jsonl`, `task/dev.jsonl`, `task/test.jsonl` ("text",
    "label") and `task/unlabeled.jsonl` ("text"). Returns the written paths by name.

    Task sentences say only which compound was used ("the drug X was given to patients ."), and
    train uses the first half of the compounds, dev and test the second half: a classifier labels
    the unseen compounds better than chance only if its encoder learned which compounds behave
    alike. Domain sentences pair every compound with a word of its class ("the drug X inhibits
    the kinase ."); the unlabelled task text does the same in the task's setting ("the drug X
    inhibits the kinase in patients ."), the paper's curated TAPT data. General
    sentences never give a compound's class.

    The sizes are tuned so that, from a tiny RoBERTa pretrained briefly on `general.txt`, a
    masked-LM run of 1.5K steps of 64 sentences on either the domain corpus or the task text
    separates the compounds by class (short sentences and two class words per label make the
    signal dense).

    # Parameters

    output_dir : `Union[str, Path]`
        Where the files go (created if needed).
    num_compounds : `int`, optional (default = `40`)
        Made-up compound names, half per class, half of them in train.
    class_words_per_label : `int`, optional (default = `2`)
        Verbs used per class (at most 6); fewer make the class easier to learn.
    general_sentences : `int`, optional (default = `3000`)
        Lines of `general.txt`.
    general_mention_rate : `float`, optional (default = `0.3`)
        Share of general sentences that mention a compound (without its class).
    domain_sentences : `int`, optional (default = `4000`)
        Lines of `domain.txt`.
    train_size, dev_size, test_size : `int`, optional (defaults = `200`, `200`, `400`)
        Labelled examples per split.
    unlabeled_task_size : `int`, optional (default = `1500`)
        Lines of `task/unlabeled.jsonl`.
    seed : `int`, optional (default = `0`)
        Seed of the compound names and every random choice.
    """
    rng = random.Random(seed)
    output_dir = Path(output_dir)
    compounds = make_compounds(num_compounds, seed)
    names = list(compounds)
    seen, unseen = names[: num_compounds // 2], names[num_compounds // 2 :]
    class_words = {label: words[:class_words_per_label] for label, words in _CLASS_WORDS.items()}
    colour = {name: rng.choice(_SHOP_COLOURS) for name in names}

    def general_line() -> str:
        if rng.random() >= general_mention_rate:
            return general_sentence(rng)
        compound = rng.choice(names)
        return rng.choice(_DEMO_GENERAL_TEMPLATES).format(
            a=rng.choice(_GENERAL_SUBJECTS),
            c=compound,
            m=colour[compound],
            tail=rng.choice(_GENERAL_TAILS),
        )

    def fill(template: str, compound: str) -> str:
        return template.format(
            c=compound,
            w=rng.choice(class_words[compounds[compound]]),
            t=rng.choice(_TARGETS),
            tail=rng.choice(_DEMO_TASK_TAILS),
            place=rng.choice(_DEMO_PLACES),
        )

    def task_rows(pool: List[str], n: int) -> List[Dict[str, str]]:
        rows = []
        for _ in range(n):
            compound = rng.choice(pool)
            rows.append({"text": fill(_DEMO_TASK_TEMPLATE, compound), "label": compounds[compound]})
        return rows

    paths = {
        "general": output_dir / "general.txt",
        "domain": output_dir / "domain.txt",
        "train": output_dir / "task" / "train.jsonl",
        "dev": output_dir / "task" / "dev.jsonl",
        "test": output_dir / "task" / "test.jsonl",
        "unlabeled": output_dir / "task" / "unlabeled.jsonl",
    }
    write_lines(paths["general"], [general_line() for _ in range(general_sentences)])
    write_lines(
        paths["domain"],
        [fill(_DEMO_DOMAIN_TEMPLATE, rng.choice(names)) for _ in range(domain_sentences)],
    )
    write_jsonl(paths["train"], task_rows(seen, train_size))
    write_jsonl(paths["dev"], task_rows(unseen, dev_size))
    write_jsonl(paths["test"], task_rows(unseen, test_size))
    write_jsonl(
        paths["unlabeled"],
        [
            {"text": fill(_DEMO_UNLABELED_TEMPLATE, rng.choice(names))}
            for _ in range(unlabeled_task_size)
        ],
    )
    return paths
