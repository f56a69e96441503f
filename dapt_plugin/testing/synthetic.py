"""
A generator of synthetic text written for this project (no third-party text): a "general" corpus,
a "domain" corpus and a labelled task whose labels depend on domain knowledge.

The domain is a made-up pharmacology. Every compound belongs to one of two classes. Domain
documents mention compounds together with words typical of their class ("inhibits", "blocks" for
class `inhibitor`; "activates", "stimulates" for class `activator`). Task sentences mention a
compound with neutral words only, so a classifier can tell the label of a compound it has never
seen labelled only if its encoder already learned, by masked-LM training on domain or task text,
which compounds behave alike. Labelled train and test sets use disjoint compounds.
"""
import json
import random
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

LABELS = ("inhibitor", "activator")

_SYLLABLES = [
    "zo", "vex", "ta", "min", "ra", "lo", "quin", "dex", "sa", "tor", "ni", "fel", "mo", "zan", "pri",
    "cal", "dor", "vi", "ne", "ox", "bu", "tri", "sol", "gan", "lu", "mex", "pa", "rin", "ko", "zel",
]
_CLASS_WORDS = {
    "inhibitor": ["inhibits", "blocks", "suppresses", "silences", "dampens", "antagonises"],
    "activator": ["activates", "stimulates", "enhances", "triggers", "amplifies", "agonises"],
}
_TARGETS = ["the receptor", "the kinase", "the channel", "the enzyme", "the transporter", "the pathway"]
_TISSUES = ["liver", "kidney", "heart", "lung", "muscle", "brain", "skin", "blood"]
_DOMAIN_TEMPLATES = [
    "{c} {w} {t} in {s} cells .",
    "in {s} tissue , {c} strongly {w} {t} .",
    "the compound {c} {w} {t} at low doses .",
    "we found that {c} {w} {t} in {s} .",
    "{c} {w} {t} ; this effect was seen in {s} samples .",
]
_TASK_TEMPLATES = [
    "patients in the {s} study were given {c} for two weeks .",
    "a dose of {c} was added to the {s} culture .",
    "the trial compared {c} with a placebo in {s} patients .",
    "{c} was measured in {s} samples after treatment .",
    "researchers gave {c} to mice and examined the {s} .",
]
_GENERAL_SUBJECTS = ["the teacher", "a farmer", "my neighbour", "the child", "an old man", "the cook"]
_GENERAL_VERBS = ["walked to", "looked at", "painted", "cleaned", "opened", "visited", "described"]
_GENERAL_OBJECTS = ["the garden", "a small house", "the river", "the market", "a red door", "the school"]
_GENERAL_TAILS = ["in the morning", "after lunch", "with a friend", "before the rain", "on sunday", "slowly"]


def make_compounds(n: int, seed: int = 0) -> Dict[str, str]:
    """`n` unique made-up compound names, each assigned a class, half per class."""
    rng = random.Random(seed)
    names: List[str] = []
    seen = set()
    while len(names) < n:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(3))
        if name not in seen:
            seen.add(name)
            names.append(name)
    return {name: LABELS[i % 2] for i, name in enumerate(names)}


def general_sentence(rng: random.Random) -> str:
    return " ".join(
        [rng.choice(_GENERAL_SUBJECTS), rng.choice(_GENERAL_VERBS), rng.choice(_GENERAL_OBJECTS),
         rng.choice(_GENERAL_TAILS), "."]
    )


def domain_sentence(rng: random.Random, compound: str, label: str) -> str:
    return rng.choice(_DOMAIN_TEMPLATES).format(
        c=compound, w=rng.choice(_CLASS_WORDS[label]), t=rng.choice(_TARGETS), s=rng.choice(_TISSUES)
    )


def task_sentence(rng: random.Random, compound: str) -> str:
    return rng.choice(_TASK_TEMPLATES).format(c=compound, s=rng.choice(_TISSUES))


def write_lines(path: Union[str, Path], lines: Sequence[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_jsonl(path: Union[str, Path], rows: Sequence[Dict]) -> None:
    write_lines(path, [json.dumps(row) for row in rows])


def generate(
    output_dir: Union[str, Path],
    num_compounds: int = 40,
    general_docs: int = 400,
    domain_docs: int = 400,
    sentences_per_doc: int = 3,
    train_size: int = 40,
    dev_size: int = 40,
    test_size: int = 80,
    unlabeled_task_size: int = 0,
    seed: int = 0,
) -> Dict[str, Path]:
    """
    Writes `general.txt`, `domain.txt`, `domain_heldout.txt` (one document per line) and the task
    (`task/train.jsonl`, `task/dev.jsonl`, `task/test.jsonl`, each with `text` and `label`) under
    `output_dir`. Train uses the first half of the compounds, dev and test the second half. With
    `unlabeled_task_size > 0`, `task/unlabeled.jsonl` holds task-style sentences that pair
    compounds of both halves with a class word (the "curated TAPT" text of the paper).
    Returns the written paths by name.
    """
    rng = random.Random(seed)
    output_dir = Path(output_dir)
    compounds = make_compounds(num_compounds, seed)
    names = list(compounds)
    seen, unseen = names[: num_compounds // 2], names[num_compounds // 2 :]

    def domain_doc() -> str:
        sentences = []
        for _ in range(sentences_per_doc):
            compound = rng.choice(names)
            sentences.append(domain_sentence(rng, compound, compounds[compound]))
        return " ".join(sentences)

    def general_doc() -> str:
        return " ".join(general_sentence(rng) for _ in range(sentences_per_doc))

    def task_rows(pool: List[str], n: int) -> List[Dict[str, str]]:
        rows = []
        for _ in range(n):
            compound = rng.choice(pool)
            rows.append({"text": task_sentence(rng, compound), "label": compounds[compound]})
        return rows

    paths = {
        "general": output_dir / "general.txt",
        "domain": output_dir / "domain.txt",
        "domain_heldout": output_dir / "domain_heldout.txt",
        "train": output_dir / "task" / "train.jsonl",
        "dev": output_dir / "task" / "dev.jsonl",
        "test": output_dir / "task" / "test.jsonl",
    }
    write_lines(paths["general"], [general_doc() for _ in range(general_docs)])
    write_lines(paths["domain"], [domain_doc() for _ in range(domain_docs)])
    write_lines(paths["domain_heldout"], [domain_doc() for _ in range(max(1, domain_docs // 10))])
    write_jsonl(paths["train"], task_rows(seen, train_size))
    write_jsonl(paths["dev"], task_rows(unseen, dev_size))
    write_jsonl(paths["test"], task_rows(unseen, test_size))
    if unlabeled_task_size:
        paths["unlabeled"] = output_dir / "task" / "unlabeled.jsonl"
        rows = []
        for _ in range(unlabeled_task_size):
            compound = rng.choice(names)
            text = task_sentence(rng, compound)[:-1] + "and " + domain_sentence(rng, compound, compounds[compound])
            rows.append({"text": text})
        write_jsonl(paths["unlabeled"], rows)
    return paths
