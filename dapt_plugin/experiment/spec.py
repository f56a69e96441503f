"""
The experiment file of `allennlp adapt`: which base model, domain corpus, task, variants and seeds,
read from jsonnet (environment variables available through `std.extVar`) and checked before any
training starts: its keys, files and base model, and its `settings`, each of which must be a
variable that the configs of its phase kind read (found in the configs themselves).
"""

import os
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Dict, List, Optional, Set

from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params

from dapt_plugin.common.config_variables import (
    closest,
    config_variables,
    meant_variable,
    other_name,
    renamed_variable,
)
from dapt_plugin.common.configs import config_dir
from dapt_plugin.common.paper_tasks import paper_task, task_files
from dapt_plugin.common.pretrained import check_model_name
from dapt_plugin.data.documents import check_not_a_table
from dapt_plugin.data.text_files import DataError, expand_paths
from dapt_plugin.experiment.variants import BUILT_IN, Variant, is_text, parse_variant

METRICS = ("macro_f1", "micro_f1", "accuracy")
# the original repository's name of its macro F1 (`--perf +f1`), accepted so that its users' habits work
METRIC_ALIASES = {"f1": "macro_f1"}
# classifier.jsonnet's presets (its `PRESET`)
PRESETS = ("small", "mini", "big")
# the training config of each phase kind, in `config_dir()`; a variable of `settings.all` goes to
# the kinds whose config reads it
CONFIG_FILES = {"dapt": "dapt.jsonnet", "tapt": "tapt.jsonnet", "classifier": "classifier.jsonnet"}
PHASE_KINDS = ("all", *CONFIG_FILES)
# variables `allennlp adapt` sets itself: where their value comes from, and the kinds it sets them for
_SET_FROM_EXPERIMENT = {
    "MODEL_NAME": ("`base_model` (or the adapted encoder a phase starts from)", PHASE_KINDS),
    "CORPUS_PATH": ("`domain_corpus`", PHASE_KINDS),
    "TAPT_PATH": ("`task.train` (or its sample, `task.sample`)", PHASE_KINDS),
    "EXTRA_TAPT_PATHS": ("`tapt_extra` (and the kNN-/RAND-TAPT selections)", PHASE_KINDS),
    "TRAIN_PATH": ("`task.train` (or its sample, `task.sample`)", PHASE_KINDS),
    "DEV_PATH": ("`task.dev`", PHASE_KINDS),
    "TEST_PATH": ("`task.test` (evaluated by `allennlp adapt` itself)", PHASE_KINDS),
    "PRESET": ("`preset`", ("all", "classifier")),
    # the masked-LM phases' own SEED may be given in settings.dapt and settings.tapt
    "SEED": (
        "`seeds` for the classifiers; a masked-LM seed goes in `settings.dapt` or `settings.tapt`",
        ("all", "classifier"),
    ),
}
# variables that change what the training process runs or loads (PYTHONPATH, LD_PRELOAD, ...),
# whatever the config
_PROCESS_VARIABLES = {"PATH"}
_PROCESS_PREFIXES = ("LD_", "DYLD_", "PYTHON")
# the keys of `task`: its files, and the optional sample of its training data
_TASK_FILES = ("train", "dev", "test")
_TASK_SAMPLE_KEYS = ("sample", "sample_seed")


@dataclass
class ExperimentSpec:
    """
    # Parameters

    base_model : `str`
        `MODEL_NAME` of every variant's starting point (hub name or `save_pretrained` directory).
    task : `Dict[str, str]`
        `train`, `dev` and `test` jsonl files with "text" and "label". In the file, `task` may
        instead name one of the paper's tasks (`task: 'chemprot'`, or `name` in place of the three
        files beside `sample`), whose files `common/paper_tasks.py` finds in `$DAPT_PLUGIN_DATA` or
        downloads once.
    task_name : `str`, optional (default = `None`)
        That name; it gives `metric` its default.
    task_sample : `int`, optional (default = `None`)
        `task.sample`: a low-resource run on N examples of `task.train`, drawn once at random
        (reservoir sampling) and written to `<output dir>/task_sample/train.jsonl`, which every
        phase then reads in its place: TAPT, the kNN-TAPT queries and the classifiers.
    task_sample_seed : `int`, optional (default = `0`)
        `task.sample_seed`: the seed of that draw; the same seed draws the same examples, as the
        classifier's `TRAIN_SAMPLE` does under the same `SEED`.
    variants : `List[str]`
        The variants' names, in the order of the results: any of baseline, dapt, tapt,
        dapt_tapt, knn_tapt, rand_tapt, and those the file defines (`variants.py`).
    chains : `Dict[str, Variant]`
        Each variant's chain of phases, by name.
    seeds : `List[int]`
        Fine-tuning seeds; every variant is fine-tuned once per seed.
    preset : `str`, optional (default = `None`)
        The classifiers' `PRESET` (small, mini or big: the original repository's fine-tuning
        presets; see `classifier.jsonnet`); unset, the config's default (small).
    metric : `str`
        The task metric of the results table (default: the named task's, else macro_f1): macro_f1 (most tasks of the paper; `f1`, the
        original repository's name for it, is accepted), micro_f1
        (ChemProt, RCT) or accuracy.
    domain_corpus : `str`, optional
        DAPT corpus (and the pool kNN/RAND-TAPT select from); needed by dapt, dapt_tapt,
        knn_tapt and rand_tapt.
    tapt_extra : `List[str]`, optional
        More unlabelled task text for every TAPT phase (curated TAPT).
    knn_k : `int`, optional (default = `50`)
        Neighbours per task example for kNN-TAPT.
    heldout : `Dict[str, str]`, optional
        Held-out texts by name (`heldout: { biomed: ..., cs: ..., task: ... }`; txt or jsonl, as
        a corpus): every encoder of the experiment (the base model and each DAPT/TAPT export) is
        evaluated on each, with the same masks, into `mlm_loss.md`, `.json` and `.png` (the
        paper's held-out masked-LM loss across domains).
    settings : `Dict[str, Dict[str, Any]]`, optional
        Environment variables of the phases' configs, by phase kind (`all`, `dapt`, `tapt`,
        `classifier`), e.g. `{"dapt": {"NUM_STEPS": 100}}`. Each must be a variable that the
        kind's config reads (for `all`, one of them), and not one that `allennlp adapt` sets from
        the keys above.
    path : `str`, optional (default = `""`)
        The experiment file, as an absolute path.
    """

    base_model: str
    task: Dict[str, str]
    variants: List[str]
    seeds: List[int]
    chains: Dict[str, Variant] = field(default_factory=dict)
    metric: str = "macro_f1"
    task_name: Optional[str] = None
    preset: Optional[str] = None
    task_sample: Optional[int] = None
    task_sample_seed: int = 0
    domain_corpus: Optional[str] = None
    tapt_extra: List[str] = field(default_factory=list)
    knn_k: int = 50
    heldout: Dict[str, str] = field(default_factory=dict)
    settings: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    path: str = ""

    def env(self, kind: str) -> Dict[str, str]:
        """
        Environment variables of a phase of `kind`, from `settings`: its own, over those of
        `settings.all` that its config reads.
        """
        reads = config_variables(str(config_dir() / CONFIG_FILES[kind]))
        common = {
            name: value for name, value in self.settings.get("all", {}).items() if name in reads
        }
        return as_environment({**common, **self.settings.get(kind, {})})


def as_environment(settings: Dict[str, Any]) -> Dict[str, str]:
    """Values of `settings` as environment variables: strings, booleans as `true`/`false`."""
    return {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in settings.items()
    }


def _fail(path: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"experiment {path}: {message}")


def load_experiment(path: str) -> ExperimentSpec:
    """Reads and checks an experiment file; every mistake stops here, before any training."""
    if not os.path.isfile(path):
        raise _fail(
            path,
            "no such file; give an experiment file, such as training_config/experiments/"
            "example.jsonnet of the configs that `allennlp dapt-configs -o DIR` copies",
        )
    raw = Params.from_file(path).as_dict(quiet=True)
    known = {
        "base_model",
        "task",
        "variants",
        "seeds",
        "metric",
        "preset",
        "domain_corpus",
        "tapt_extra",
        "knn_k",
        "heldout",
        "settings",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(path, f"unknown keys {unknown}; the keys are {sorted(known)}")
    for key in ("base_model", "task", "variants", "seeds"):
        if key not in raw:
            raise _fail(path, f"`{key}` is missing")
    if not is_text(raw["base_model"]):
        raise _fail(
            path,
            "`base_model` must be a model directory or a model-hub name, such as "
            f"'roberta-base'; got {raw['base_model']!r}",
        )
    domain_corpus = raw.get("domain_corpus")
    if domain_corpus is not None and not is_text(domain_corpus):
        raise _fail(
            path,
            "`domain_corpus` must be a path, a glob or comma-separated paths, in one string; "
            f"got {domain_corpus!r}",
        )
    tapt_extra = raw.get("tapt_extra", [])
    if not isinstance(tapt_extra, list) or not all(is_text(item) for item in tapt_extra):
        raise _fail(
            path,
            "`tapt_extra` must be a list of files (paths or globs), e.g. "
            f"['data/unlabelled.jsonl']; got {tapt_extra!r}",
        )
    variants = raw["variants"]
    if not isinstance(variants, list) or not variants:
        raise _fail(
            path,
            f"`variants` must be a non-empty list of variants ({list(BUILT_IN)}, or objects "
            f"that define one); got {variants!r}",
        )
    chains: Dict[str, Variant] = {}
    for index, item in enumerate(variants):
        try:
            chain = parse_variant(
                item,
                f"variants[{index}]",
                lambda kind, where, values: _check_variables(
                    path, kind, where, values, _layered_below(raw.get("settings"), kind, True)
                ),
            )
        except ConfigurationError as error:
            if error.message.startswith(f"experiment {path}: "):
                raise
            raise _fail(path, error.message) from None
        if chain.name in chains:
            raise _fail(path, f"variant {chain.name!r} is given twice in `variants`")
        chains[chain.name] = chain
    seeds = raw["seeds"]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise _fail(
            path, f"`seeds` must be a non-empty list of integers, e.g. [0, 1, 2]; got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise _fail(path, f"`seeds` has repeated values: {seeds}")
    outside = [seed for seed in seeds if not 0 <= seed < 2**32]  # classifier.jsonnet's SEED
    if outside:
        raise _fail(path, f"`seeds` must be integers from 0 to {2**32 - 1}; got {outside[0]}")
    task = raw["task"]
    if isinstance(task, str):
        task = {"name": task}
    task_name = task.get("name") if isinstance(task, dict) else None
    if task_name is not None:
        try:
            named = {"name", *_TASK_SAMPLE_KEYS}
            if not set(task) <= named:
                raise ConfigurationError(
                    f"a named task takes only {sorted(named)}, not its files; got {task!r}"
                )
            task = {**{k: v for k, v in task.items() if k != "name"}, **task_files(task_name)}
        except ConfigurationError as error:
            raise _fail(path, f"`task`: {error.message}") from None
    default_metric = paper_task(task_name).metric if task_name is not None else "macro_f1"
    metric = raw.get("metric", default_metric)
    metric = METRIC_ALIASES.get(metric, metric) if isinstance(metric, str) else metric
    if not isinstance(metric, str) or metric not in METRICS:
        raise _fail(path, f"`metric` must be one of {list(METRICS)}; got {metric!r}")
    if (
        not isinstance(task, dict)
        or not set(_TASK_FILES) <= set(task)
        or not set(task) <= {*_TASK_FILES, *_TASK_SAMPLE_KEYS}
        or not all(is_text(task[key]) for key in _TASK_FILES)
    ):
        raise _fail(
            path,
            "`task` must give `train`, `dev` and `test` files (and optionally `sample` and "
            f"`sample_seed`), or name one of the paper's tasks; got {task!r}",
        )
    sample, sample_seed = task.get("sample"), task.get("sample_seed", 0)
    if sample is not None and not _is_int(sample, minimum=1):
        raise _fail(
            path,
            f"`task.sample` must be a positive number of training examples; got {sample!r}",
        )
    if not _is_int(sample_seed, minimum=0):
        raise _fail(
            path, f"`task.sample_seed` must be an integer of at least 0; got {sample_seed!r}"
        )
    if "sample_seed" in task and sample is None:
        raise _fail(path, "`task.sample_seed` is given without `task.sample`, the sample's size")
    preset = raw.get("preset")
    if preset is not None and preset not in PRESETS:
        raise _fail(
            path,
            f"`preset` must be one of {', '.join(PRESETS)} (classifier.jsonnet's presets, the "
            f"original repository's ROBERTA_CLASSIFIER_SMALL, _MINI and _BIG); got {preset!r}",
        )
    settings = raw.get("settings", {})
    if not isinstance(settings, dict):
        raise _fail(
            path,
            f"`settings` must map phase kinds {list(PHASE_KINDS)} to variables; got {settings!r}",
        )
    unknown = sorted(set(settings) - set(PHASE_KINDS))
    if unknown:
        meant = closest(unknown[0], PHASE_KINDS)
        raise _fail(
            path,
            f"`settings.{unknown[0]}` is not a phase kind; "
            + (
                f"did you mean `settings.{meant}`?"
                if meant
                else f"the kinds are {list(PHASE_KINDS)}"
            ),
        )
    _check_settings(path, settings)
    knn_k = raw.get("knn_k", 50)
    if not _is_int(knn_k, minimum=1):
        raise _fail(path, f"`knn_k` must be a positive integer; got {knn_k!r}")
    heldout = raw.get("heldout", {})
    if (
        not isinstance(heldout, dict)
        or not all(isinstance(name, str) and name.strip() for name in heldout)
        or not all(isinstance(text, str) and text.strip() for text in heldout.values())
    ):
        raise _fail(
            path,
            "`heldout` must map names to held-out text files, e.g. "
            f"{{biomed: 'data/biomed/heldout.txt'}}; got {heldout!r}",
        )
    spec = ExperimentSpec(
        base_model=raw["base_model"],
        task={k: task[k] for k in _TASK_FILES},
        variants=list(chains),
        seeds=list(seeds),
        chains=chains,
        metric=metric,
        task_name=task_name,
        preset=preset,
        task_sample=sample,
        task_sample_seed=sample_seed,
        domain_corpus=domain_corpus,
        tapt_extra=list(tapt_extra),
        knn_k=knn_k,
        heldout=dict(heldout),
        settings=settings,
        path=os.path.abspath(path),
    )
    needs_domain = [
        name
        for name, chain in chains.items()
        if (chain.dapt is not None and chain.dapt.corpus is None)
        or (chain.select is not None and chain.select.corpus is None)
    ]
    if needs_domain and not spec.domain_corpus:
        raise _fail(path, f"variants {needs_domain} need `domain_corpus`")
    files = {f"task.{k}": v for k, v in spec.task.items()}
    files.update({f"tapt_extra[{i}]": p for i, p in enumerate(spec.tapt_extra)})
    for index, chain in enumerate(chains.values()):
        where = f"variants[{index}] ({chain.name})"
        steps = {
            "dapt.corpus": chain.dapt and chain.dapt.corpus,
            "select.corpus": chain.select and chain.select.corpus,
            "tapt.text": chain.tapt and chain.tapt.text,
        }
        files.update({f"{where}.{key}": value for key, value in steps.items() if value})
        extra = (chain.tapt and chain.tapt.extra) or []
        files.update({f"{where}.tapt.extra[{i}]": p for i, p in enumerate(extra)})
    files.update({f"heldout.{name}": p for name, p in spec.heldout.items()})
    if needs_domain:
        files["domain_corpus"] = spec.domain_corpus
    for key, value in files.items():
        try:
            paths = expand_paths(value)
            if key not in ("task.dev", "task.test"):  # a masked-LM phase may read the rest
                for file in paths:
                    check_not_a_table(file)
        except DataError as error:
            raise _fail(path, f"`{key}`: {error}") from None
        if key.startswith("task.") and paths != [value]:
            raise _fail(
                path,
                f"`{key}` must be the path of one file, which the classifier reads as it is; "
                f"got {value!r}, a pattern or a list of paths",
            )
    try:
        check_model_name(spec.base_model, loading=False)  # a hub name: the runner checks it
    except ConfigurationError as error:
        raise _fail(path, f"`base_model`: {error.message}") from None
    return spec


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_settings(path: str, settings: Dict[str, Any]) -> None:
    """Every variable of `settings` must be one its kind's configs read, and not one set otherwise."""
    for kind, variables in settings.items():
        if not isinstance(variables, dict):
            raise _fail(
                path,
                f"`settings.{kind}` must map variable names to values, e.g. "
                f'{{"NUM_EPOCHS": 3}}; got {variables!r}',
            )
        _check_variables(
            path, kind, f"settings.{kind}", variables, _layered_below(settings, kind, False)
        )


def _layered_below(settings: Any, kind: str, variant: bool) -> Set[str]:
    """
    The variables that `settings` sets for phases of `kind` under a variant's own settings
    (`variant`: `settings.all` and `settings.<kind>`), or under `settings.<kind>` (`all`'s).
    """
    if not isinstance(settings, dict):
        return set()
    layers = ["all", kind] if variant else ["all"] if kind != "all" else []
    return {
        name
        for layer in layers
        if isinstance(settings.get(layer), dict)
        for name in settings[layer]
    }


def _check_variables(
    path: str,
    kind: str,
    where: str,
    variables: Dict[str, Any],
    below: AbstractSet[str] = frozenset(),
) -> None:
    """
    The variables of a phase kind at `where` in the experiment (`settings.dapt`, ...), over
    those `below` that a broader layer of the experiment's settings sets.
    """
    files = list(CONFIG_FILES.values()) if kind == "all" else [CONFIG_FILES[kind]]
    variables_of = {name: config_variables(str(config_dir() / name)) for name in files}
    readable = set().union(*variables_of.values())
    for name, value in variables.items():
        key = f"`{where}.{name}`"
        # a renamed variable: refused when any config the setting reaches refuses it
        reason = next(
            filter(None, (renamed_variable(name, v) for v in variables_of.values())), None
        )
        if reason is not None:
            if kind == "all":  # meant for the configs that read it under this name
                readers = [
                    reader
                    for reader, config in CONFIG_FILES.items()
                    if name in variables_of[config]
                ]
                if readers:
                    reason += (
                        f"; to set it for {_either([CONFIG_FILES[k] for k in readers])}, give it "
                        f"in {_either([f'`settings.{k}`' for k in readers])}"
                    )
            raise _fail(path, f"{key}: {reason}")
        if name in _PROCESS_VARIABLES or name.startswith(_PROCESS_PREFIXES):
            raise _fail(
                path,
                f"{key}: {name} is a variable of the Python process, not of a config, "
                "and cannot be set from an experiment; the training processes inherit "
                "the environment of `allennlp adapt`",
            )
        if name not in readable:
            raise _fail(
                path,
                f"{key} is not a variable of {_either(files)}; {_unknown(name, readable, kind)}",
            )
        if name == "TRAIN_SAMPLE":
            raise _fail(
                path,
                f"{key}: TRAIN_SAMPLE samples only the classifiers' training data, while "
                "TAPT and the kNN-TAPT selection would still read all of `task.train`; give "
                "`task.sample` (and `task.sample_seed`) instead, which every phase reads",
            )
        source, kinds = _SET_FROM_EXPERIMENT.get(name, (None, ()))
        if kind in kinds:
            raise _fail(
                path,
                f"{key}: {name} is set from the experiment's {source}; remove it from `settings`",
            )
        if isinstance(value, (dict, list)) or value is None:
            raise _fail(path, f"{key} must be a string, number or boolean; got {value!r}")
        # the empty string reads as unset: the config's default, which undoes a broader
        # layer's value, and is nothing but a mistake where no such layer sets one
        if isinstance(value, str) and not value.strip() and (value or name not in below):
            raise _fail(
                path,
                f"{key} is {value!r}, which the configs read as unset (their default) or "
                "refuse; give it a value, or remove it for the default",
            )


def experiment_source(variable: str) -> Optional[str]:
    """What an experiment sets `variable` from for every phase that reads it, if it does."""
    source, kinds = _SET_FROM_EXPERIMENT.get(variable, (None, ()))
    return source if kinds == PHASE_KINDS else None


def set_by_the_experiment(variable: str, kinds: List[str]) -> Optional[str]:
    """Where an experiment sets `variable` for phases of `kinds` itself, if it does."""
    source, set_for = _SET_FROM_EXPERIMENT.get(variable, (None, ()))
    if any(kind in set_for for kind in kinds):
        return f"it is {variable}, which is set from the experiment's {source}"
    if variable == "TRAIN_SAMPLE":
        return "it is TRAIN_SAMPLE, which an experiment gives as `task.sample`"
    return None


def _unknown(name: str, readable: Set[str], kind: str) -> str:
    """What to say of a key of `settings.<kind>` that is not one of the variables `readable`."""
    other = other_name(name, readable)
    set_there = other and set_by_the_experiment(other[0], [kind])
    if set_there:
        return set_there
    meant = meant_variable(name, readable, overridable=False)
    if meant is not None:
        return meant
    variables_of = {
        reader: config_variables(str(config_dir() / config))
        for reader, config in CONFIG_FILES.items()
    }
    for reader, variables in variables_of.items():
        reason = renamed_variable(name, variables)
        if reason is not None:
            return f"{reason}, a variable of {CONFIG_FILES[reader]}"
    readers = [reader for reader, variables in variables_of.items() if name in variables]
    if readers:
        return set_by_the_experiment(name, readers) or (
            f"it is a variable of {_either([CONFIG_FILES[reader] for reader in readers])}: set "
            f"it in {_either([f'`settings.{reader}`' for reader in readers])}"
        )
    suggestion = closest(name, readable)
    if suggestion is not None:
        return f"did you mean {suggestion}?"
    return (
        "the variables each config reads are listed in its header; variables of the process "
        "(such as OMP_NUM_THREADS) are inherited from the environment of `allennlp adapt`"
    )


def _either(names: List[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
