"""
The variants of an experiment as chains of phases: an optional DAPT run, an optional selection
of domain text for TAPT, an optional TAPT run, then the classifier. The six variants of the
paper's Tables 5 and 8 are chains with the experiment's own data; an experiment file may define
more, each a chain with its own data and settings, such as the paper's ¬DAPT (Table 3),
Transfer-TAPT (Table 6), curated TAPT (Table 7) or kNN-TAPT at another k (Table 8):

    variants: [
      'baseline', 'dapt', 'tapt',
      { name: 'not_dapt', dapt: { corpus: 'data/news/*.txt' } },
      { name: 'transfer_tapt', tapt: { text: 'data/rct/train.jsonl' } },
      { name: 'curated_tapt', tapt: { extra: ['data/chemprot/curated.jsonl'] } },
      { name: 'knn_tapt_150', select: { method: 'knn', k: 150 }, tapt: { settings: { NUM_EPOCHS: 50 } } },
    ]

A step's unset keys take the experiment's values (`domain_corpus`, `task.train`, `tapt_extra`,
`knn_k`, `settings`). `select` implies TAPT on the task's text and the selection.
"""

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from allennlp.common.checks import ConfigurationError

from dapt_plugin.selection.options import EMBEDDERS, METHODS
from dapt_plugin.selection.units import UNITS

# The paper's Table 5 (baseline, DAPT, TAPT, DAPT+TAPT) and Table 8 (kNN-TAPT, RAND-TAPT).
BUILT_IN = ("baseline", "dapt", "tapt", "dapt_tapt", "knn_tapt", "rand_tapt")
# names of directories of the output directory that are not a variant's, and `base`, the base
# model's name among the encoders of `mlm_loss/` (a variant's TAPT phase is named after it)
RESERVED = (
    "classifier",
    "selection",
    "mlm_loss",
    "task_sample",
    "select_knn",
    "select_random",
    "base",
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class DaptStep:
    """
    # Parameters

    corpus : `str`, optional (default = `None`)
        The DAPT corpus; `None`: the experiment's `domain_corpus`.
    settings : `Dict[str, Any]`, optional
        Variables of `dapt.jsonnet` over the experiment's `settings.dapt`.
    """

    corpus: Optional[str] = None
    settings: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectStep:
    """
    # Parameters

    method : `str`
        `knn` (kNN-TAPT) or `random` (RAND-TAPT).
    k : `int`, optional (default = `None`)
        kNN: neighbours per task example; random: draw as many documents as the kNN selection
        of this `k` holds (the paper's control). `None`: the experiment's `knn_k`.
    size : `int`, optional (default = `None`)
        random only: the number of units (`unit`) to draw, instead of matching a kNN selection.
    corpus : `str`, optional (default = `None`)
        What is selected from; `None`: the experiment's `domain_corpus`.
    unit : `str`, optional (default = `"sentence"`)
        What is selected: `sentence` (as the paper) or `document`.
    pool_size : `int`, optional (default = `None`)
        The deduplicated random sample of the corpus selected from; `None`: `select-tapt-data`'s
        default (1M units).
    embedder : `str`, optional (default = `None`)
        `lsa` or `vampire`; `None`: `select-tapt-data`'s default (`lsa`).
    """

    method: str
    k: Optional[int] = None
    size: Optional[int] = None
    corpus: Optional[str] = None
    unit: str = "sentence"
    pool_size: Optional[int] = None
    embedder: Optional[str] = None


@dataclass(frozen=True)
class TaptStep:
    """
    # Parameters

    text : `str`, optional (default = `None`)
        The unlabelled text TAPT trains on; `None`: the task's training data (or its sample).
    extra : `List[str]`, optional (default = `None`)
        More text (curated TAPT); `None`: the experiment's `tapt_extra`.
    settings : `Dict[str, Any]`, optional
        Variables of `tapt.jsonnet` over the experiment's `settings.tapt`.
    """

    text: Optional[str] = None
    extra: Optional[List[str]] = None
    settings: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """
    One variant: the chain of phases that makes its encoder, then its classifiers.

    # Parameters

    name : `str`
        Its name in the results and its directories.
    dapt : `DaptStep`, optional (default = `None`)
        DAPT from the base model.
    select : `SelectStep`, optional (default = `None`)
        Domain text selected for its TAPT.
    tapt : `TaptStep`, optional (default = `None`)
        TAPT, from the DAPT model if there is one, else from the base model.
    """

    name: str
    dapt: Optional[DaptStep] = None
    select: Optional[SelectStep] = None
    tapt: Optional[TaptStep] = None


def built_in(name: str) -> Variant:
    """The chain of one of the paper's six variants."""
    return {
        "baseline": Variant(name),
        "dapt": Variant(name, dapt=DaptStep()),
        "tapt": Variant(name, tapt=TaptStep()),
        "dapt_tapt": Variant(name, dapt=DaptStep(), tapt=TaptStep()),
        "knn_tapt": Variant(name, select=SelectStep("knn"), tapt=TaptStep()),
        "rand_tapt": Variant(name, select=SelectStep("random"), tapt=TaptStep()),
    }[name]


def parse_variant(
    item: Any, where: str, check_settings: Callable[[str, str, Dict[str, Any]], None]
) -> Variant:
    """
    A variant of `variants` (a built-in name, or an object defining a chain), checked.
    `where` names it in errors (`variants[3]`); `check_settings(kind, where, settings)` checks a
    step's settings as the experiment's own are checked.
    """
    if isinstance(item, str):
        if item not in BUILT_IN:
            raise ConfigurationError(
                f"`{where}`: unknown variant {item!r}; choose from {list(BUILT_IN)}, or define one "
                "as an object, e.g. {name: 'not_dapt', dapt: {corpus: 'data/news/*.txt'}}"
            )
        return built_in(item)
    if not isinstance(item, dict) or "name" not in item:
        raise ConfigurationError(
            f"`{where}` must be a variant's name or an object with `name` and its steps "
            f"(`dapt`, `select`, `tapt`); got {item!r}"
        )
    name = item["name"]
    if not isinstance(name, str) or not _NAME.match(name) or name in BUILT_IN + RESERVED:
        raise ConfigurationError(
            f"`{where}.name` must be a new name of lowercase letters, digits and underscores, not "
            f"one of {list(BUILT_IN + RESERVED)}; got {name!r}"
        )
    settings_at = f"{where} ({name})"
    where = f"`{where}` ({name})"
    unknown = sorted(set(item) - {"name", "dapt", "select", "tapt"})
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown keys {unknown}; the steps are dapt, select, tapt"
        )
    dapt = _step(item, "dapt", where, {"corpus", "settings"})
    select = _step(
        item, "select", where, {"method", "k", "size", "corpus", "unit", "pool_size", "embedder"}
    )
    tapt = _step(item, "tapt", where, {"text", "extra", "settings"})
    if dapt is None and select is None and tapt is None:
        raise ConfigurationError(
            f"{where} has no step: give `dapt`, `select` and/or `tapt` (the baseline is 'baseline')"
        )
    for kind, step in (("dapt", dapt), ("tapt", tapt)):
        if step is not None and "settings" in step:
            if not isinstance(step["settings"], dict):
                raise ConfigurationError(
                    f"{where}: `{kind}.settings` must map variables to values; got {step['settings']!r}"
                )
            check_settings(kind, f"{settings_at}.{kind}.settings", step["settings"])
    for key in ("corpus",):
        for kind, step in (("dapt", dapt), ("select", select)):
            if step is not None and key in step and not is_text(step[key]):
                raise ConfigurationError(
                    f"{where}: `{kind}.{key}` must be a path; got {step[key]!r}"
                )
    if tapt is not None:
        if "text" in tapt and not is_text(tapt["text"]):
            raise ConfigurationError(f"{where}: `tapt.text` must be a path; got {tapt['text']!r}")
        extra = tapt.get("extra", [])
        if not isinstance(extra, list) or not all(is_text(path) for path in extra):
            raise ConfigurationError(
                f"{where}: `tapt.extra` must be a list of paths; got {extra!r}"
            )
    return Variant(
        name,
        dapt=None if dapt is None else DaptStep(dapt.get("corpus"), dict(dapt.get("settings", {}))),
        select=None if select is None else _select(select, where),
        tapt=None
        if tapt is None and select is None
        else TaptStep(
            (tapt or {}).get("text"),
            None if "extra" not in (tapt or {}) else list(tapt["extra"]),
            dict((tapt or {}).get("settings", {})),
        ),
    )


def _step(item: Dict, kind: str, where: str, keys: set) -> Optional[Dict]:
    if kind not in item:
        return None
    step = item[kind]
    if not isinstance(step, dict) or not set(step) <= keys:
        raise ConfigurationError(
            f"{where}: `{kind}` must be an object with keys from {sorted(keys)} ({{}} for the "
            f"experiment's own); got {step!r}"
        )
    return step


def _select(step: Dict, where: str) -> SelectStep:
    method = step.get("method")
    if method not in METHODS:
        raise ConfigurationError(f"{where}: `select.method` must be knn or random; got {method!r}")
    for key in ("k", "size", "pool_size"):
        value = step.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigurationError(
                f"{where}: `select.{key}` must be a positive integer; got {value!r}"
            )
    if "size" in step and (method != "random" or "k" in step):
        raise ConfigurationError(
            f"{where}: `select.size` is the size of a random selection, instead of `k`'s match; "
            "give it with method random and without k"
        )
    for key, allowed in (("unit", UNITS), ("embedder", EMBEDDERS)):
        if key in step and step[key] not in allowed:
            raise ConfigurationError(
                f"{where}: `select.{key}` must be one of {list(allowed)}; got {step[key]!r}"
            )
    return SelectStep(
        method,
        step.get("k"),
        step.get("size"),
        step.get("corpus"),
        step.get("unit", "sentence"),
        step.get("pool_size"),
        step.get("embedder"),
    )


def is_text(value: Any) -> bool:
    """Whether `value` is a string with more than white space (a path, a name)."""
    return isinstance(value, str) and bool(value.strip())
