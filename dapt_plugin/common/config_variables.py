"""
The environment variables of a jsonnet config, and the config as a run with a given environment
sees it.

The configs read every variable through `training_config/lib/env.libsonnet` (`env.required`,
`env.str`, `env.int`, ...), so the variables a config reads are found in its own text and that of
the files it imports: the list is the configs' own, never a copy kept by hand.
"""

import contextlib
import copy
import difflib
import glob
import hashlib
import json
import logging
import os
import re
from typing import Dict, Iterable, Iterator, Mapping, Optional, Set, Tuple

from allennlp.common import params as allennlp_params
from allennlp.common.checks import ConfigurationError
from allennlp.common.params import Params

from dapt_plugin.common.paper_tasks import task_files

logger = logging.getLogger(__name__)

# The external variable holding the whole environment as a JSON object, which
# `training_config/lib/env.libsonnet` reads to give defaults (see `_patch_environment_variables` in
# `dapt_plugin/compat.py`).
ENV_EXT_VAR = "DAPT_PLUGIN_ENV"
# `import 'lib/env.libsonnet'` (not `importstr`, which reads text, not jsonnet)
_IMPORT = re.compile(r"""\bimport\s+(?:'([^']+)'|"([^"]+)")""")
# `env.int('NUM_STEPS', ...)`, `env.required("MODEL_NAME", ...)`: any function of env.libsonnet
_READ = re.compile(r"""\benv\.[A-Za-z_]\w*\(\s*(?:'([A-Za-z_]\w*)'|"([A-Za-z_]\w*)")""")

# Variables that were renamed or replaced: old name -> (new name, what to say after the old name).
# A config refuses the old name, set in the environment or in an experiment's `settings`, when it
# reads the new name and not the old one: NUM_EPOCHS is refused by dapt.jsonnet only, since
# tapt.jsonnet and classifier.jsonnet still read it.
RENAMED_VARIABLES: Dict[str, Tuple[str, str]] = {
    "SAMPLE": (
        "TRAIN_SAMPLE",
        "was renamed TRAIN_SAMPLE (the number of labelled training examples drawn at random)",
    ),
    "GRAD_ACCUM": (
        "EFFECTIVE_BATCH",
        "was replaced by EFFECTIVE_BATCH, the examples per optimizer step (as in the masked-LM "
        "configs); gradient accumulation is EFFECTIVE_BATCH / (BATCH_SIZE x number of devices)",
    ),
    "CUDA_DEVICE": (
        "CUDA_DEVICES",
        "was renamed CUDA_DEVICES (0 for one GPU, 0,1 for two, -1 for the CPU)",
    ),
    "NUM_EPOCHS": (
        "NUM_CHECKPOINTS",
        "was renamed NUM_CHECKPOINTS in dapt.jsonnet, where it counted the checkpoints along the "
        "NUM_STEPS optimizer steps; NUM_EPOCHS (passes over the text) is a variable of "
        "tapt.jsonnet and classifier.jsonnet",
    ),
}

# The names that settings of these configs have in other tools (the Hugging Face Trainer and its
# `run_mlm.py`/`run_glue.py`, the paper's scripts): name -> the variables it may mean here, each
# with what to add after it; the first that a config reads is the one meant. A config that reads
# one of them and not the name refuses the name, which it would otherwise ignore.
_STEPS_NOT_PASSES = " (dapt.jsonnet counts optimizer steps, not passes over the corpus)"
_PASSES_NOT_STEPS = " (classifier.jsonnet counts passes over the training data, not steps)"
_PER_DEVICE = " (examples per device and forward pass)"
_SCHEDULE = " (true: warm-up over 6% of the steps, then linear decay; false: a constant rate)"
OTHER_NAMES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "LEARNING_RATE": (("LR", ""),),
    "MAX_SEQ_LENGTH": (("MAX_LENGTH", ""),),
    "MAX_SEQ_LEN": (("MAX_LENGTH", ""),),
    "BLOCK_SIZE": (("MAX_LENGTH", ""),),
    "EPOCHS": (("NUM_EPOCHS", ""), ("NUM_STEPS", _STEPS_NOT_PASSES)),
    "NUM_TRAIN_EPOCHS": (("NUM_EPOCHS", ""), ("NUM_STEPS", _STEPS_NOT_PASSES)),
    "MAX_STEPS": (("NUM_STEPS", ""), ("NUM_EPOCHS", _PASSES_NOT_STEPS)),
    "NUM_TRAIN_STEPS": (("NUM_STEPS", ""), ("NUM_EPOCHS", _PASSES_NOT_STEPS)),
    "MODEL_NAME_OR_PATH": (("MODEL_NAME", ""),),
    "TRAIN_FILE": (
        ("TRAIN_PATH", ""),
        ("TAPT_PATH", " (the task's text)"),
        ("CORPUS_PATH", " (the domain corpus)"),
    ),
    "DEV_FILE": (("DEV_PATH", ""), ("HELDOUT_PATH", " (held-out text for the masked-LM loss)")),
    "VALIDATION_FILE": (
        ("DEV_PATH", ""),
        ("HELDOUT_PATH", " (held-out text for the masked-LM loss)"),
    ),
    "TEST_FILE": (("TEST_PATH", ""),),
    "TRAIN_BATCH_SIZE": (("BATCH_SIZE", _PER_DEVICE),),
    "PER_DEVICE_TRAIN_BATCH_SIZE": (("BATCH_SIZE", _PER_DEVICE),),
    "GRADIENT_ACCUMULATION_STEPS": (
        (
            "EFFECTIVE_BATCH",
            " (the examples per optimizer step; accumulation is EFFECTIVE_BATCH / (BATCH_SIZE x "
            "number of devices))",
        ),
    ),
    "MAX_TRAIN_SAMPLES": (("TRAIN_SAMPLE", ""),),
    "LINE_BY_LINE": (("MLM_MODE", " (line_by_line or packed)"),),
    "LOGGING_STEPS": (("LOG_EVERY", ""),),
    "SAVE_STEPS": (("CHECKPOINT_EVERY_BATCHES", ""),),
    "EVAL_STEPS": (
        (
            "NUM_CHECKPOINTS",
            " (a count, not an interval: NUM_STEPS / EVAL_STEPS checkpoints, each validated)",
        ),
    ),
    "LR_SCHEDULER_TYPE": (("LR_SCHEDULE", _SCHEDULE),),
    # the classifier's warm-up is LR_SCHEDULE's (6% of the steps) or none; the masked-LM configs'
    # are fixed (`FIXED_SETTINGS`)
    "WARMUP_RATIO": (("LR_SCHEDULE", _SCHEDULE),),
    "WARMUP_STEPS": (("LR_SCHEDULE", _SCHEDULE),),
}

# Settings that other tools take from a variable and these configs fix at the paper's values:
# name -> the key of the resolved config that holds it, which `allennlp train -o` can override.
FIXED_SETTINGS: Dict[str, str] = {
    "WEIGHT_DECAY": "trainer.optimizer.weight_decay",
    "ADAM_EPSILON": "trainer.optimizer.eps",
    "ADAM_BETA1": "trainer.optimizer.betas",
    "ADAM_BETA2": "trainer.optimizer.betas",
    "WARMUP_RATIO": "trainer.learning_rate_scheduler.warmup_ratio",
    "WARMUP_STEPS": "trainer.learning_rate_scheduler.warmup_ratio",
    "LR_SCHEDULER_TYPE": "trainer.learning_rate_scheduler",
    # AllenNLP's clipping of the global gradient norm (none in the paper's recipes; the
    # classifier's `bert_adam` clips each tensor's gradient to norm 1 on its own)
    "MAX_GRAD_NORM": "trainer.grad_norm",
}

# Variables of the plugin as a whole (the tokenization cache, the paper's tasks' mirror), which a
# shell sets once for every run: never "set but not read" by a config
PLUGIN_PREFIX = "DAPT_PLUGIN_"


# `TASK=chemprot`: a config that reads these three variables takes one of the paper's tasks by name
# instead, and they become the task's files (see `with_task_files`)
TASK_FILE_VARIABLES = {"train": "TRAIN_PATH", "dev": "DEV_PATH", "test": "TEST_PATH"}


def config_variables(config_path: str) -> Set[str]:
    """
    The environment variables that the jsonnet config at `config_path` reads, in it and in every
    file it imports (recursively).
    """
    return {
        single or double
        for text in _config_texts(config_path).values()
        for single, double in _READ.findall(text)
    }


def _config_texts(config_path: str) -> Dict[str, str]:
    """The text, less comment lines, of the config and of every file it imports (recursively)."""
    texts: Dict[str, str] = {}
    pending = [os.path.abspath(config_path)]
    while pending:
        path = pending.pop()
        if path in texts or not os.path.isfile(path):
            continue  # an import jsonnet cannot find is its error, when the config is evaluated
        with open(path, encoding="utf-8") as handle:
            text = "\n".join(line for line in handle if not line.lstrip().startswith(("//", "#")))
        texts[path] = text
        directory = os.path.dirname(path)
        pending.extend(
            os.path.join(directory, single or double) for single, double in _IMPORT.findall(text)
        )
    return texts


def resolve_config(config_path: str, env: Dict[str, str], unset: Iterable[str] = ()) -> Params:
    """
    Evaluates the config at `config_path` as `allennlp train` does in a process whose environment
    is this one's, less the variables `unset`, overlaid with `env`. A jsonnet error (an unset
    required variable, a value a config refuses) is raised as a `ConfigurationError` naming the
    config and the message (see `dapt_plugin.compat`).
    """
    dropped = set(unset)
    variables = {
        **{name: value for name, value in os.environ.items() if name not in dropped},
        **env,
    }
    variables = {
        name: value for name, value in variables.items() if allennlp_params._is_encodable(value)
    }
    # the same files (as they are now: the key holds their texts) and environment give the same
    # config; `allennlp adapt` resolves the same config for many of its phases
    key = hashlib.sha256(
        json.dumps([_config_texts(config_path), variables], sort_keys=True).encode()
    ).hexdigest()
    if key not in _RESOLVED:
        # `DAPT_PLUGIN_ENV` as allennlp (patched) computes it in a process with this environment
        ext_vars = {**variables, ENV_EXT_VAR: json.dumps(variables)}
        _RESOLVED[key] = Params.from_file(config_path, ext_vars=ext_vars).as_dict(quiet=True)
    return Params(copy.deepcopy(_RESOLVED[key]))


# resolved configs, by the sha256 of what `resolve_config` resolves them from
_RESOLVED: Dict[str, Dict] = {}


def renamed_variable(name: str, variables: Set[str]) -> Optional[str]:
    """
    Why the config reading `variables` refuses `name`, when `name` is the old name of one of them
    (see `RENAMED_VARIABLES`): "SAMPLE was renamed TRAIN_SAMPLE (...)"; None otherwise.
    """
    if name not in RENAMED_VARIABLES or name in variables:
        return None
    new, explanation = RENAMED_VARIABLES[name]
    return f"{name} {explanation}" if new in variables else None


def closest(name: str, candidates: Iterable[str], narrow: bool = False) -> Optional[str]:
    """
    The candidate that `name` (a name that is not one of them) was most likely meant to be, or
    None: the plugin's one "did you mean".

    By default (a suggestion for a name already refused), the candidate most like `name` ignoring
    case (`difflib`), when one is close.

    With `narrow` (deciding whether a name is a mistake at all), only a candidate that `name` is
    plainly a misspelling of. Deliberately narrow, since a false alarm stops every run on a
    machine whose environment happens to hold a similar name (`MASTER_HOST`, `NODE_NAME`,
    `TEXT_PATH`), in any case: the same name (`num_steps`), the same name without its
    underscores (`BATCHSIZE`), or one edit away with the same first word (`NUM_STEP`,
    `MAX_LENGHT`, `num_epoch`).
    """
    candidates = set(candidates)
    if name in candidates:
        return None
    if narrow:
        return next(
            (candidate for candidate in sorted(candidates) if _misspells(name, candidate)), None
        )
    by_upper = {candidate.upper(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(name.upper(), list(by_upper), n=1)
    return by_upper[matches[0]] if matches else None


def other_name(name: str, variables: Set[str]) -> Optional[Tuple[str, str]]:
    """
    `(variable, note)` of `OTHER_NAMES` that `name`, another tool's name of a setting, means for
    a config that reads `variables`; None when it is no such name for that config.
    """
    return next(
        (
            (variable, note)
            for variable, note in OTHER_NAMES.get(name.upper(), ())
            if variable in variables
        ),
        None,
    )


def meant_variable(name: str, variables: Set[str], overridable: bool = True) -> Optional[str]:
    """
    What to say after "`name` is not a variable of the config" when `name`, set by a user for a
    config that reads `variables` and not `name`, was plainly meant for one of them: its name in
    another tool (`OTHER_NAMES`, "did you mean LR?"), a setting the config fixes
    (`FIXED_SETTINGS`; with `overridable`, how to override it with `-o`), or a misspelling
    (`closest` with `narrow`). None when `name` may well be meant for something else.
    """
    other = other_name(name, variables)
    if other is not None:
        return f"did you mean {other[0]}{other[1]}?"
    if name.upper() in FIXED_SETTINGS:
        key = FIXED_SETTINGS[name.upper()]
        how = f"; override `{key}` with -o '{{\"{key}\": ...}}'" if overridable else ""
        return f"the config fixes it at the paper's value (see its header){how}"
    meant = closest(name, variables, narrow=True)
    return f"did you mean {meant}?" if meant is not None else None


def _misspells(name: str, variable: str) -> bool:
    name = name.upper()  # the variables are upper case
    if name == variable or name.replace("_", "") == variable.replace("_", ""):
        return True
    words, variable_words = name.split("_"), variable.split("_")
    if len(words) > 1 and len(words) == len(variable_words) and words[0] == variable_words[0]:
        # a shortened word (`MLM_PROB`, `MAX_LEN`)
        if all(word and whole.startswith(word) for word, whole in zip(words, variable_words)):
            return True
    return words[0] == variable_words[0] and "_" in variable and _distance(name, variable) <= 1


def _distance(a: str, b: str) -> int:
    """Edits (insertion, deletion, substitution, or a swap of two neighbours) from `a` to `b`."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i]
        for j in range(1, len(b) + 1):
            row.append(
                min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


# (config, variable) of the variables `check_environment` has logged in this process
_WARNED: Set[Tuple[str, str]] = set()
# variables of the environment whose effect the command says itself (`allennlp adapt`, which
# resolves every config with its shell's environment): not logged as another config's
_LEFT_TO_THE_COMMAND: Set[str] = set()


@contextlib.contextmanager
def leaving_to_the_command(names: Iterable[str]) -> Iterator[None]:
    """In the block, `check_environment` logs none of `names` as another config's variable."""
    added = set(names) - _LEFT_TO_THE_COMMAND
    _LEFT_TO_THE_COMMAND.update(added)
    try:
        yield
    finally:
        _LEFT_TO_THE_COMMAND.difference_update(added)


def check_environment(config_path: str, environment: Mapping[str, str]) -> None:
    """
    Raises `ConfigurationError` when a name of `environment` (the variables the config at
    `config_path` is evaluated with) is the old name of a variable of the config (see
    `RENAMED_VARIABLES`), or is not a variable of it but plainly meant for one (see
    `meant_variable`): either would otherwise be ignored and its default used (`NUM_STEP=4`
    training 12,500 steps). A variable of a sibling config that this one does not read
    (NUM_STEPS of dapt.jsonnet beside classifier.jsonnet, set for that one) is only logged, and
    so is a variable of the config that the process's environment sets to the empty string,
    which the configs take as unset (`NUM_STEPS=$STEPS` with STEPS unset: the default, 12,500
    steps).
    """
    variables = config_variables(config_path)
    if not variables:
        return  # not a config of this plugin's kind
    config = os.path.basename(config_path)
    for name in sorted(variables & set(environment)):
        if environment[name] == "" and os.environ.get(name) == "" and (config, name) not in _WARNED:
            _WARNED.add((config, name))
            logger.warning(
                "%s is set to the empty string, which %s takes as unset: its default is used "
                "(a required variable is missing)",
                name,
                config,
            )
    for name in sorted(environment):
        reason = renamed_variable(name, variables)
        if reason is not None:
            raise ConfigurationError(f"{config}: environment variable {reason}")
    siblings = {
        os.path.basename(path): config_variables(path)
        for path in sorted(
            glob.glob(
                os.path.join(
                    glob.escape(os.path.dirname(os.path.abspath(config_path))), "*.jsonnet"
                )
            )
        )
    }
    for name in sorted(set(environment) - variables):
        readers = [sibling for sibling, read in siblings.items() if name in read]
        if readers and not name.startswith(PLUGIN_PREFIX):
            if (config, name) in _WARNED or name in _LEFT_TO_THE_COMMAND:
                continue  # once a process: `adapt` resolves a config per phase
            _WARNED.add((config, name))
            logger.warning(
                "%s is set but %s does not read it (it is a variable of %s): it has no effect "
                "on this run",
                name,
                config,
                " and ".join(readers),
            )
            continue
        meant = meant_variable(name, variables)
        if meant is not None:
            raise ConfigurationError(f"{name} is not a variable of {config}; {meant}")


def with_task_files(config_path: str, ext_vars: Dict[str, str]) -> Dict[str, str]:
    """
    `ext_vars` (allennlp's external variables, `DAPT_PLUGIN_ENV` among them) with `TASK`, when
    the environment sets it and the config at `config_path` reads `TASK_FILE_VARIABLES`, given as
    the task's files: `TASK=chemprot` sets TRAIN_PATH, DEV_PATH and TEST_PATH to the files that
    `paper_tasks.task_files` finds in the mirror `$DAPT_PLUGIN_DATA` or downloads once. TASK
    beside any of the three, or an unknown task, is a `ConfigurationError`.
    """
    if ENV_EXT_VAR not in ext_vars:
        return ext_vars
    environment = json.loads(ext_vars[ENV_EXT_VAR])
    task = environment.get("TASK", "")
    if not task or not set(TASK_FILE_VARIABLES.values()) <= config_variables(config_path):
        return ext_vars
    given = [name for name in TASK_FILE_VARIABLES.values() if environment.get(name)]
    if given:
        raise ConfigurationError(
            f"{os.path.basename(config_path)}: TASK={task} gives the task's files, and "
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} set too; set TASK or "
            f"{', '.join(TASK_FILE_VARIABLES.values())}, not both"
        )
    files = task_files(task)
    environment.update({TASK_FILE_VARIABLES[split]: path for split, path in files.items()})
    return {**ext_vars, ENV_EXT_VAR: json.dumps(environment)}
