"""
Runs an experiment of `allennlp adapt`: the phases of the paper's Table 5 (and Table 8) with the
project's own training configs, sharing work between variants, resumable, and summarised in
`results.json`, `results.md` and `results.png` (the table as bars, `plot.py`).

Phases and the work they share:

- `task_sample` (with `task.sample` only): N examples of `task.train`, drawn once (reservoir
  sampling, `task.sample_seed`) and written to `task_sample/train.jsonl`, which every later phase
  reads in place of `task.train` (TAPT, the kNN-TAPT queries, the classifiers), so that no
  example outside the sample reaches any of them;
- `dapt`: one DAPT run on the domain corpus, used by both `dapt` and `dapt_tapt`;
- `tapt`, `dapt_tapt`, `knn_tapt`, `rand_tapt`: one TAPT run each (TAPT does not depend on the
  fine-tuning seed), from the base model or, for `dapt_tapt`, from the DAPT export;
- `select_knn`, `select_random`: the kNN-TAPT selection and its same-size random control;
- `classifier/<variant>/seed_<s>`: one fine-tuning run per variant and seed, then its evaluation
  on test (`allennlp evaluate` semantics); its dev metrics are its best epoch's validation
  metrics, the archived model's on dev (what `allennlp evaluate` gives it there).

Before anything is written (the output directory included), every phase's config is resolved
with the environment it will run with, and the base model and the task's labels are checked: a
mistake that would stop a phase stops the experiment before the first one (a dry run).

Each training phase runs `allennlp train` in a process of its own (forked from a server that has
done the imports once, `common.launch.run_allennlp_preloaded`), in its own serialization directory
under the output directory; a classifier's evaluation, a selection and the held-out losses run in
such processes too (`common.launch.call_preloaded`). Their output goes to `train.log`, and the
console shows the progress lines of a training run as they come (`progress.py`) and a final line
with each phase's result. With `jobs` above 1, phases whose upstream phases are complete run side
by side, sharing the cores (`server_environment`, `ExperimentRunner._thread_shares`), their output
collected per phase and appended to `train.log` when it ends (`ExperimentRunner.log_file`).
A phase counts as complete only from its completion marker, `.phases/<name>.json`
(`classifier.dapt.seed_0.json` for `classifier/dapt/seed_0`), written last and atomically, with its
outputs present. The marker holds the phase's fingerprint: the sha256 of its resolved config (a
selection's arguments), the contents of its input files and the fingerprints of the phases it starts
from (see `fingerprint.py`). Paths inside the output directory are written `<output_dir>/...` there,
so a fingerprint does not depend on where the output directory is. Re-running the same command
reuses every phase whose marker holds its current fingerprint. An interrupted training phase with a
checkpoint and an unchanged fingerprint is resumed with `--recover`; a classifier whose test files
alone changed (its `training_fingerprint` unchanged) is evaluated again, once its training is
complete (resumed if it was interrupted). Any other phase is run again
from the start (its old outputs removed), and so is every phase that starts from it; the log and
`phases.jsonl` say why ("dapt: the resolved config changed (NUM_STEPS 4 -> 8)"). The fingerprints,
and each phase's environment and resolved config, are in `results.json`.
"""

import contextlib
import dataclasses
import functools
import json
import logging
import os
import random
import shutil
import statistics
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

import torch
from allennlp.common import util as common_util
from allennlp.common.checks import ConfigurationError
from filelock import FileLock, Timeout

from dapt_plugin.common.atomic import atomic_file, check_writable_path, remove_leftovers
from dapt_plugin.common.config_variables import (
    PLUGIN_PREFIX,
    config_variables,
    leaving_to_the_command,
    meant_variable,
    other_name,
    resolve_config,
)
from dapt_plugin.common.configs import CONFIG_SOURCE_VARIABLE, config_dir
from dapt_plugin.common.console import logs_to_file
from dapt_plugin.common.launch import (
    PreloadedCallFailed,
    ProcessFailed,
    allennlp_command,
    call_preloaded,
    last_error,
    run_allennlp_preloaded,
    start_preloading,
    stop_preloaded,
    wait_for_holders,
)
from dapt_plugin.common.optional_dependencies import MissingDependency
from dapt_plugin.common.pretrained import check_model_name, position_limit
from dapt_plugin.common.sampling import reservoir_sample
from dapt_plugin.data.documents import iter_json_lines
from dapt_plugin.data.text_files import DataError, expand_paths, iter_lines
from dapt_plugin.experiment.drawing import draw
from dapt_plugin.experiment.fingerprint import (
    FileHashes,
    describe_changes,
    determining_config,
    fingerprint,
)
from dapt_plugin.experiment.mlm_loss import FILES as MLM_LOSS_FILES
from dapt_plugin.experiment.mlm_loss import METRICS as MLM_LOSS_METRICS
from dapt_plugin.experiment.mlm_loss import write_mlm_loss
from dapt_plugin.experiment.progress import PhaseProgress
from dapt_plugin.experiment.spec import (
    CONFIG_FILES,
    PHASE_KINDS,
    ExperimentSpec,
    as_environment,
    experiment_source,
    set_by_the_experiment,
)
from dapt_plugin.experiment.variants import BUILT_IN, Variant
from dapt_plugin.selection.options import POOL_SIZE

logger = logging.getLogger(__name__)

OUTPUT_DIR = (
    "<output_dir>"  # how paths inside the output directory appear in fingerprints and results
)
_MLM_OUTPUTS = ["model.tar.gz", "metrics.json", "exported_model"]
_CLASSIFIER_OUTPUTS = ["model.tar.gz", "dev_metrics.json", "test_metrics.json"]
# the seconds a classifier spent evaluating on test, or a held-out loss phase on its
# texts, archive loading left out (`phase_timing`)
_EVALUATION_TIME = "evaluation_time.json"
# how long the phases' processes have to end by themselves after a Ctrl-C before they are sent
# SIGTERM (`allennlp train` archives its model when interrupted)
_GRACE_SECONDS = 30.0
# kinds of phase that run no `allennlp train`: their settings are their arguments
_STEPS = ("sample", "selection", "mlm_loss")
_SAMPLE = "task_sample"
# the order of the phases of an experiment, by kind
_ORDER = ("sample", "dapt", "selection", "tapt", "classifier", "mlm_loss")
# what an `mlm_loss/<encoder>` phase takes from the masked-LM config of the base model, so that
# every encoder is measured on the same examples with the same masks
_MLM_LOSS_MODEL_KEYS = ("mlm_probability", "whole_word_masking", "masking_seed")
# what `run` writes once every phase is complete
_RESULT_FILES = ("results.json", "results.md", "results.png")


@dataclass
class Phase:
    """
    One step of an experiment and what decides whether an earlier run of it can be reused.

    # Parameters

    name : `str`
        `task_sample`, `dapt`, `select_knn`, `select_random`, a TAPT variant,
        `classifier/<variant>/seed_<s>`, or `mlm_loss/<encoder>` (`base` or a masked-LM phase).
    kind : `str`
        `sample`, `dapt`, `tapt`, `selection`, `classifier` or `mlm_loss`.
    directory : `Path`
        The directory it writes in: its own serialization directory for a training phase, the
        shared `selection/` directory for a selection, `task_sample/` for the task's sample,
        `mlm_loss/<encoder>/` for the held-out losses of an encoder.
    outputs : `List[Path]`
        The files and directories it completes, in `directory`.
    settings : `Dict[str, Any]`
        The environment of its `allennlp train` (for a selection, the arguments of
        `select_tapt_data`; for the sample, its source file, size and seed; for held-out
        losses, the encoder's `MODEL_NAME` and the held-out texts).
    variant : `str`, optional
        The variant whose encoder it adapts, selects for, fine-tunes or measures (`None` for
        the base model's held-out losses).
    seed : `int`, optional
        A classifier's fine-tuning seed.
    upstream : `str`, optional
        The phase whose output it starts from.
    reads : `List[str]`, optional
        Other phases whose output it reads as data (`task_sample`); like `upstream`, their
        fingerprints are part of its own, and it is run again when they are.
    config : `Dict[str, Any]`
        Its resolved config (a selection's arguments), with paths in the output directory
        written `<output_dir>/...`; filled in by the runner.
    run_config : `Dict[str, Any]`
        What the phase runs with, as the dry run resolved it, paths as they are: a training
        phase's config (what its `allennlp train` runs, whatever its jsonnet file says by then);
        for held-out losses, the `reference` they are measured with and the `base_config` that
        archives the base model; filled in by the runner.
    inputs : `Dict[str, str]`
        sha256 of each input file outside the output directory; filled in by the runner.
    fingerprint : `str`
        See `fingerprint.fingerprint`; filled in by the runner.
    training_fingerprint : `str`
        A classifier's fingerprint without the test files (`task.test`), which only its
        evaluation reads: a classifier whose test files alone changed is evaluated again, not
        trained again; filled in by the runner.
    earlier_fingerprints : `Tuple[str, str]`
        `fingerprint` and `training_fingerprint` as versions before run-only settings were left
        out of them computed them (`fingerprint(..., whole=True)`): a marker they wrote that
        holds them is the phase's too; filled in by the runner.
    """

    name: str
    kind: str
    directory: Path
    outputs: List[Path]
    settings: Dict[str, Any]
    variant: Optional[str] = None
    seed: Optional[int] = None
    upstream: Optional[str] = None
    reads: List[str] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)
    run_config: Dict[str, Any] = field(default_factory=dict)
    inputs: Dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    training_fingerprint: str = ""
    earlier_fingerprints: Tuple[str, str] = ("", "")

    @property
    def needs(self) -> List[str]:
        """The phases whose outputs it starts from or reads: `upstream`, then `reads`."""
        return ([self.upstream] if self.upstream else []) + self.reads


# variables of the environment of `allennlp adapt` that its phases would inherit to ill effect,
# and why
_REFUSED_FROM_ENVIRONMENT = {
    # classifier.jsonnet refuses TASK beside the files that the runner gives each classifier
    "TASK": "an experiment names its task in its file (`task: 'chemprot'`, or its files)",
    "TRAIN_SAMPLE": (
        "it would sample the classifiers' training data only, while TAPT and the kNN-TAPT "
        "selection read all of `task.train`; give `task.sample` in the experiment instead"
    ),
    "TEST_PATH": (
        "every classifier's `allennlp train` would also evaluate on it, while `allennlp adapt` "
        "evaluates `task.test` itself; give `task.test` in the experiment instead"
    ),
    "PRESET": (
        "it would choose the classifiers' recipe behind the experiment's back (its `preset`, "
        "small when absent); give `preset` in the experiment instead"
    ),
}


def _mlm_loss_reference(base_config: Dict[str, Any]) -> Dict[str, Any]:
    """
    What every encoder's held-out loss is measured with, whatever config made it: the reader,
    the evaluation loader and the masking of `base_config` (`dapt.jsonnet` for the base model:
    the same tokenizer), and its device. On a GPU, also where the masks are drawn: on the CPU
    since this was recorded (they were drawn on the GPU, from other numbers), so that losses
    measured before are measured again, not compared with those of other masks.
    """
    device = base_config["trainer"].get("cuda_device")
    return {
        "dataset_reader": base_config["dataset_reader"],
        "validation_data_loader": base_config["validation_data_loader"],
        "model": {key: base_config["model"][key] for key in _MLM_LOSS_MODEL_KEYS},
        "cuda_device": device,
        **({"masks_drawn_on": "cpu"} if device not in (None, -1) else {}),
    }


class ExperimentRunner:
    """
    Plans an experiment and checks it (every phase's config resolved, the base model, the task's
    labels) without writing anything; `run` then runs what is not complete.

    # Parameters

    spec : `ExperimentSpec`
        The checked experiment.
    output_dir : `str`
        Where every phase's directory, `results.json`, `results.md`, `results.png` and
        `phases.jsonl` go.
    jobs : `int`, optional (default = `1`)
        How many phases may run at once: a phase starts as soon as the phases it starts from or
        reads are complete and fewer than `jobs` run, in the order of the plan. Above 1, the
        phases share the cores (`server_environment`, which `run_experiment` starts the phases'
        processes' server with, and `phase_environment`), and a phase distributed over several
        devices is refused; each phase still runs on the device its config names.
    """

    def __init__(self, spec: ExperimentSpec, output_dir: str, jobs: int = 1) -> None:
        self.spec = spec
        check_writable_path(output_dir, "directory")
        self.output = Path(output_dir).resolve()
        if jobs < 1:
            raise ConfigurationError(f"--jobs must be 1 or more, not {jobs}")
        self.jobs = jobs
        self._lock = threading.Lock()  # the files that phases running at once all write
        self._warnings_shown: Set[str] = set()  # the phases' warnings shown on the console
        self.markers = self.output / ".phases"
        # held by every phase's process while it runs (`launch.wait_for_holders`)
        self.running_lock = self.markers / "running.lock"
        self.hashes = FileHashes(str(self.output / ".file_hashes.json"))
        # the line numbers of `task.train` in its sample (`task.sample`), drawn by the dry run
        self.sample_lines: Optional[List[int]] = None
        self._check_environment()
        self.phases = self._phases()
        self._check_unread_environment()
        self._check_base_model()
        self._check_labels()
        # a variable of the environment that some config reads is said of once, above
        with leaving_to_the_command(set(os.environ) - set(self.overridden)):
            for phase in self.phases:
                self._fingerprint(phase)
        self._check_selection_dependency()
        self._check_selection_sizes()
        self._check_lengths()
        self._check_jobs()
        self.server_environment = server_environment(jobs)
        self.phase_environment = self._thread_shares()

    def _check_environment(self) -> None:
        """
        Checks the variables of `allennlp adapt`'s environment, which every phase inherits: one
        that would act behind the experiment's back (`_REFUSED_FROM_ENVIRONMENT`), or another
        tool's name for a variable the experiment sets (`TEST_FILE`), is refused, saying where
        to give it; one that the experiment sets for every phase that reads it (`DEV_PATH`,
        from `task.dev`) is logged as having no effect, and left out when configs are resolved
        (`self.overridden`), so that each config does not log it again as another config's. Any
        other that a config reads is the runner's to judge (`_check_unread_environment`), not
        each config's as it is resolved: dapt.jsonnet does not read PATIENCE, the classifiers do.
        """
        for name, why in _REFUSED_FROM_ENVIRONMENT.items():
            if os.environ.get(name):
                raise self._fail(
                    f"{name}={os.environ[name]} is set in the environment, which every phase "
                    f"inherits; {why}: unset {name} to run the experiment"
                )
        readable = set().union(
            *(config_variables(str(config_dir() / f)) for f in CONFIG_FILES.values())
        )
        self.overridden = []
        for name in sorted(set(os.environ) - readable):
            other = other_name(name, readable)
            set_there = other and set_by_the_experiment(other[0], list(PHASE_KINDS))
            if set_there:
                raise self._fail(
                    f"{name}={os.environ[name]} is set in the environment, which every phase "
                    f"inherits; {set_there}: unset {name} to run the experiment"
                )
            # as each config would refuse it, less its advice of `allennlp train -o`
            meant = meant_variable(name, readable, overridable=False)
            if meant is not None:
                raise self._fail(
                    f"{name}={os.environ[name]} is set in the environment, which every phase "
                    f"inherits, but it is not a variable of the configs; {meant}"
                )
        for name in sorted(readable & set(os.environ)):
            source = experiment_source(name)
            if source is not None:
                self.overridden.append(name)
                logger.warning(
                    "%s is set in the environment, but the experiment sets it for every phase "
                    "that reads it (from its %s): the environment's value has no effect",
                    name,
                    source,
                )

    def _check_unread_environment(self) -> None:
        """
        Logs a variable of the environment that some config reads but no phase of the
        experiment does (NUM_STEPS in an experiment without DAPT) as having no effect.
        """
        # the held-out losses are measured with dapt.jsonnet as it resolves for the base model
        kinds = {"dapt" if phase.kind == "mlm_loss" else phase.kind for phase in self.phases}
        variables_of = {
            kind: config_variables(str(config_dir() / config))
            for kind, config in CONFIG_FILES.items()
        }
        for name in sorted(set(os.environ) - set(self.overridden)):
            readers = [kind for kind, variables in variables_of.items() if name in variables]
            if readers and not kinds.intersection(readers) and not name.startswith(PLUGIN_PREFIX):
                logger.warning(
                    "%s is set in the environment, but no phase of the experiment reads it (it "
                    "is a variable of %s): it has no effect",
                    name,
                    " and ".join(CONFIG_FILES[kind] for kind in readers),
                )

    # -- the plan ---------------------------------------------------------------------------

    def encoder(self, phase: Optional[str]) -> str:
        """`MODEL_NAME` of the encoder a masked-LM phase exports, or of the base model (`None`)."""
        if phase is None:
            return self.spec.base_model
        return str(self.output / phase / "exported_model")

    def train_path(self) -> str:
        """What the phases read as the task's training data: `task.train`, or its sample."""
        if self.spec.task_sample is None:
            return self.spec.task["train"]
        return str(self.output / _SAMPLE / "train.jsonl")

    def _phases(self) -> List[Phase]:
        spec, variants = self.spec, self.spec.variants
        phases: Dict[str, Phase] = {}

        def add(
            name: str,
            kind: str,
            directory: Path,
            outputs: List[str],
            settings: Dict[str, Any],
            **fields,
        ) -> None:
            phases[name] = Phase(
                name,
                kind,
                directory,
                [directory / output for output in outputs],
                settings,
                **fields,
            )

        # with a sample, every phase that reads the task's training data reads it instead
        train, reads = self.train_path(), []
        if spec.task_sample is not None:
            add(
                _SAMPLE,
                "sample",
                self.output / _SAMPLE,
                ["train.jsonl"],
                {
                    "path": spec.task["train"],
                    "size": spec.task_sample,
                    "seed": spec.task_sample_seed,
                },
            )
            reads = [_SAMPLE]
        # each variant's chain of phases; a phase that is made from the same inputs as one
        # already planned (by an earlier variant's chain) is that one, run once and shared
        made: Dict[str, str] = {}

        def once(kind: str, name: str, settings: Dict[str, Any], **fields) -> str:
            key = json.dumps([kind, settings, fields.get("upstream")], sort_keys=True)
            if key not in made:
                if name in phases:
                    raise self._fail(
                        f"two different phases would be named {name!r} (after variant "
                        f"{fields['variant']!r}); rename that variant"
                    )
                if kind == "selection":
                    directory, output = self.output / "selection", fields.pop("output")
                else:
                    directory, output = self.output / name, None
                outputs = [output] if output else _MLM_OUTPUTS
                add(name, kind, directory, outputs, settings, **fields)
                made[key] = name
            return made[key]

        def dapt(chain: Variant) -> str:
            corpus = chain.dapt.corpus or spec.domain_corpus
            settings = {
                **spec.env("dapt"),
                **as_environment(chain.dapt.settings),
                "MODEL_NAME": spec.base_model,
                "CORPUS_PATH": corpus,
            }
            own = chain.dapt.settings or corpus != spec.domain_corpus
            return once(
                "dapt", f"dapt_{chain.name}" if own else "dapt", settings, variant=chain.name
            )

        def select(chain: Variant, method: str, k: int, size: Optional[int]) -> str:
            step = chain.select
            corpus = step.corpus or spec.domain_corpus
            # sentences, as the paper selected, unless the step says otherwise; in the
            # fingerprint, so that a selection of whole documents (the unit before) is made again
            # rather than reused
            settings = {
                "task_paths": train,
                "domain_paths": corpus,
                "method": method,
                "unit": step.unit,
            }
            for key in (
                "pool_size",
                "embedder",
            ):  # only when given: the defaults' fingerprints stay
                if getattr(step, key) is not None:
                    settings[key] = getattr(step, key)
            upstream = None
            if method == "knn":
                settings["k"] = k
            elif size is not None:
                settings["size"] = size
            else:  # as many documents as the kNN selection of the same k: its fingerprint is part of this one's
                upstream = select(chain, "knn", k, None)
            # the paper's kNN-TAPT and RAND-TAPT of the experiment's `knn_k`, and others
            default = (corpus, k, size, step.unit, step.pool_size, step.embedder) == (
                spec.domain_corpus,
                spec.knn_k,
                None,
                "sentence",
                None,
                None,
            )
            name = f"select_{method}" if default else f"select_{method}_{chain.name}"
            output = (
                f"{'knn' if method == 'knn' else 'rand'}_tapt.jsonl" if default else f"{name}.jsonl"
            )
            return once(
                "selection",
                name,
                settings,
                variant=chain.name,
                upstream=upstream,
                reads=reads,
                output=output,
            )

        def tapt(chain: Variant, start: Optional[str], selection: Optional[str]) -> str:
            step = chain.tapt
            extra = list(spec.tapt_extra if step.extra is None else step.extra)
            if selection is not None:
                extra.append(str(phases[selection].outputs[0]))
            settings = {
                **spec.env("tapt"),
                **as_environment(step.settings),
                "TAPT_PATH": step.text or train,
                "EXTRA_TAPT_PATHS": ",".join(extra),
                "MODEL_NAME": self.encoder(start),
            }
            # it starts from the DAPT model (or the base model), and reads the selection and
            # the task's sample; each of them run again runs it again
            upstream = start or selection
            read = [selection] if start is not None and selection is not None else []
            if step.text is None:
                read += reads
            return once(
                "tapt", chain.name, settings, variant=chain.name, upstream=upstream, reads=read
            )

        final: Dict[str, Optional[str]] = {}  # the phase each variant's encoder comes from
        # the paper's variants first: a phase that one of them shares with a variant of the
        # file's own is named after it, whatever the order of the variants or which of the others
        # are there, so that its runs are reused as these change
        for chain in sorted(spec.chains.values(), key=lambda chain: chain.name not in BUILT_IN):
            start = dapt(chain) if chain.dapt is not None else None
            selection = None
            if chain.select is not None:
                step = chain.select
                selection = select(chain, step.method, step.k or spec.knn_k, step.size)
            if chain.tapt is not None:
                start = tapt(chain, start, selection)
            final[chain.name] = start
        for variant in variants:
            for seed in spec.seeds:
                add(
                    f"classifier/{variant}/seed_{seed}",
                    "classifier",
                    self.output / "classifier" / variant / f"seed_{seed}",
                    _CLASSIFIER_OUTPUTS,
                    {
                        **spec.env("classifier"),
                        **({"PRESET": spec.preset} if spec.preset is not None else {}),
                        "MODEL_NAME": self.encoder(final[variant]),
                        "SEED": str(seed),
                        "TRAIN_PATH": train,
                        "DEV_PATH": spec.task["dev"],
                    },
                    variant=variant,
                    seed=seed,
                    upstream=final[variant],
                    reads=reads,
                )
        if spec.heldout:
            # the base model, then the export of every masked-LM phase, each on every text
            adapted = [phase.name for phase in phases.values() if phase.kind in ("dapt", "tapt")]
            for encoder in ["base", *adapted]:
                upstream = None if encoder == "base" else encoder
                add(
                    f"mlm_loss/{encoder}",
                    "mlm_loss",
                    self.output / "mlm_loss" / encoder,
                    ["losses.json"],
                    {
                        "MODEL_NAME": self.encoder(upstream),
                        "heldout": dict(spec.heldout),
                    },
                    variant=upstream,
                    upstream=upstream,
                )
        # by kind, each kind in the order its phases were planned: a phase after those it reads
        return sorted(phases.values(), key=lambda phase: _ORDER.index(phase.kind))

    def _fail(self, message: str) -> ConfigurationError:
        return ConfigurationError(f"experiment {self.spec.path}: {message}")

    def _fingerprint(self, phase: Phase) -> None:
        """Resolves the phase's config (a jsonnet error stops here), hashes its inputs."""
        if phase.kind == "sample":
            config, data_paths = phase.settings, [phase.settings["path"]]
        elif phase.kind == "selection":
            config, data_paths = (
                phase.settings,
                [phase.settings["task_paths"], phase.settings["domain_paths"]],
            )
        elif phase.kind == "mlm_loss":
            try:
                base_config = self._base_mlm_config()
            except ConfigurationError as error:
                raise self._fail(f"phase {phase.name}: {error.message}") from None
            reference = _mlm_loss_reference(base_config)
            config = {**phase.settings, "reference": reference}
            phase.run_config = {"reference": reference, "base_config": base_config}
            data_paths = list(phase.settings["heldout"].values())
        else:
            try:
                config = resolve_config(
                    self._config_file(phase), phase.settings, self.overridden
                ).as_dict(quiet=True)
            except ConfigurationError as error:
                raise self._fail(f"phase {phase.name}: {error.message}") from None
            phase.run_config = config
            data_paths = [
                config.get(key)
                for key in ("train_data_path", "validation_data_path", "test_data_path")
            ]
        paths = self._input_files(phase, data_paths)
        model = phase.settings.get("MODEL_NAME")
        if model and os.path.isdir(model) and not self._produced(model):
            paths.append(model)
        phase.config = self._portable(config)
        upstream = self._upstream(phase)
        earlier_upstream = self._earlier_upstream(phase)
        hashes = self.hashes.of(paths)
        training, earlier_training = "", ""
        if phase.kind == "classifier":
            training = fingerprint(phase.config, self._portable(hashes), upstream)
            earlier_training = fingerprint(
                phase.config, self._portable(hashes), earlier_upstream, whole=True
            )
            test_files = self._input_files(phase, [self.spec.task["test"]])
            hashes = {**hashes, **self.hashes.of(test_files)}
        phase.inputs = self._portable(hashes)
        phase.fingerprint = fingerprint(phase.config, phase.inputs, upstream)
        phase.training_fingerprint = training
        phase.earlier_fingerprints = (
            fingerprint(phase.config, phase.inputs, earlier_upstream, whole=True),
            earlier_training,
        )

    def _input_files(self, phase: Phase, data_paths: List[Optional[str]]) -> List[str]:
        """The files that `data_paths` (each a path, glob or comma list, or None) name."""
        inside = str(self.output) + os.sep
        files = []
        for data_path in filter(None, data_paths):
            # what the runner joined with commas may name an earlier phase's output: left to
            # `upstream`; the user's own files are hashed wherever they are, the output too
            items = data_path.split(",") if inside in data_path else [data_path]
            files.extend(item for item in items if item.strip() and not self._produced(item))
        try:
            return [path for item in files for path in expand_paths(item)]
        except DataError as error:
            raise self._fail(f"phase {phase.name}: {error}") from None

    def _produced(self, path: str) -> bool:
        """Whether `path` is, or is in, what a phase of the experiment writes."""
        path = Path(os.path.realpath(path))
        return any(
            path == output or output in path.parents
            for phase in self.phases
            for output in [*phase.outputs, phase.directory]
            if phase.kind != "selection" or output != phase.directory  # `selection/` is shared
        )

    @staticmethod
    def _config_file(phase: Phase) -> str:
        return str(config_dir() / CONFIG_FILES[phase.kind])

    def _base_mlm_settings(self) -> Dict[str, str]:
        """The environment of `dapt.jsonnet` for the base model, with the experiment's settings."""
        return {
            **self.spec.env("dapt"),
            "MODEL_NAME": self.spec.base_model,
            "CORPUS_PATH": self.spec.domain_corpus or self.spec.task["train"],
        }

    def _base_mlm_config(self) -> Dict[str, Any]:
        """`dapt.jsonnet` resolved for the base model with the experiment's DAPT settings."""
        dapt = str(config_dir() / CONFIG_FILES["dapt"])
        return resolve_config(dapt, self._base_mlm_settings(), self.overridden).as_dict(quiet=True)

    def _upstream(self, phase: Phase) -> Dict[str, str]:
        """The fingerprints of the phases whose outputs it starts from or reads."""
        return {name: self._phase(name).fingerprint for name in phase.needs}

    def _earlier_upstream(self, phase: Phase) -> Dict[str, str]:
        """`_upstream` as versions that fingerprinted run-only settings computed it."""
        return {name: self._phase(name).earlier_fingerprints[0] for name in phase.needs}

    def _portable(self, value: Any, output: Optional[Path] = None) -> Any:
        """`value` with the output directory (`output`, default this one) in its strings written `<output_dir>`."""
        output = output or self.output
        if isinstance(value, str):
            return value.replace(str(output) + os.sep, OUTPUT_DIR + "/")
        if isinstance(value, dict):
            return {
                self._portable(key, output): self._portable(item, output)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._portable(item, output) for item in value]
        return value

    # -- the dry run ------------------------------------------------------------------------

    def _check_base_model(self) -> None:
        """A hub name must be in the local cache or given by the hub (the spec checked the rest)."""
        try:
            check_model_name(self.spec.base_model)
        except ConfigurationError as error:
            raise self._fail(f"`base_model`: {error.message}") from None

    def _check_selection_dependency(self) -> None:
        """
        A kNN selection needs faiss, an optional dependency: missing (or failing to import), it
        stops the dry run, not the selection's phase, which may come after hours of DAPT. A
        complete selection that is reused needs none.
        """
        selections = [
            phase
            for phase, action, _ in self.plan()
            if phase.kind == "selection"
            and phase.settings.get("method") == "knn"
            and action != "reuse"
        ]
        if not selections:
            return
        from dapt_plugin.selection.tapt_selection import require_faiss

        try:
            require_faiss()
        except MissingDependency as error:
            raise self._fail(f"phase {selections[0].name}: {error}") from None

    def _check_selection_sizes(self) -> None:
        """
        A random selection of an explicit size (`select.size`) must fit in its pool
        (`select.pool_size`), which it is drawn from: found here, not by the selection after the
        phases before it. (One that matches a kNN selection takes as many units as that one
        selected from the same pool, which always fit.)
        """
        for phase in self.phases:
            size = phase.settings.get("size") if phase.kind == "selection" else None
            pool = phase.settings.get("pool_size", POOL_SIZE)
            if size is not None and size > pool:
                raise self._fail(
                    f"phase {phase.name} (variant {phase.variant}): its random sample of {size} "
                    f"{phase.settings['unit']}s (`select.size`) exceeds `select.pool_size` "
                    f"({pool}), the units it is drawn from; raise `select.pool_size` or lower "
                    "`select.size`"
                )

    def _check_lengths(self) -> None:
        """
        Every training phase's `MAX_LENGTH` within the base model's positions (every encoder of
        the experiment has its positions), which its reader would otherwise check only when the
        phase starts.
        """
        limit = position_limit(self.spec.base_model)
        for phase in self.phases:
            config = phase.run_config.get("base_config", phase.run_config)  # mlm_loss: its reader's
            reader = config.get("dataset_reader", {})
            length = reader.get("max_length", reader.get("max_sequence_length"))
            if length is not None and length > limit:
                raise self._fail(
                    f"phase {phase.name}: MAX_LENGTH {length} is above the position limit of "
                    f"`base_model` {self.spec.base_model!r}, {limit} tokens; set MAX_LENGTH to "
                    f"{limit} or less in its settings"
                )

    def _check_devices(self, phases: List[Phase]) -> None:
        """
        The devices of the training phases to run on this machine, which `allennlp train` would
        otherwise check only when the phase starts, after the phases before it have run: the GPUs
        that `CUDA_DEVICES` names must be visible, and `USE_AMP` or `BF16` needs one. (Those that
        are reused need none: a finished experiment can be looked over where it did not run.)
        """
        gpus = torch.cuda.device_count()
        for phase in phases:
            trainer = phase.run_config.get("trainer")
            if trainer is None:  # not a training phase
                continue
            devices = phase.run_config.get("distributed", {}).get("cuda_devices") or [
                trainer.get("cuda_device")  # None: AllenNLP's choice, the first GPU if any
            ]
            named = [device for device in devices if device is not None and device >= 0]
            if named and max(named) >= gpus:
                raise self._fail(
                    f"phase {phase.name}: CUDA_DEVICES names GPU {max(named)}, but this machine "
                    f"has {gpus} visible GPU(s); set CUDA_DEVICES=-1 to train on the CPU"
                )
            for variable, wanted in (
                ("USE_AMP", trainer.get("use_amp")),
                ("BF16", phase.run_config.get("model", {}).get("bf16")),
            ):
                if wanted and not named and not (gpus and None in devices):
                    raise self._fail(
                        f"phase {phase.name}: {variable}=true needs a CUDA GPU, but the phase "
                        f"trains on the CPU; set {variable}=false in its settings"
                    )

    def _check_jobs(self) -> None:
        """Phases run side by side (`jobs` above 1) must each be one process on one device."""
        if self.jobs == 1:
            return
        for phase in self.phases:
            if phase.run_config.get("distributed"):
                raise self._fail(
                    f"phase {phase.name} is distributed over several devices or machines (its "
                    f"config's `distributed`, from CUDA_DEVICES or NUM_NODES), which --jobs "
                    f"{self.jobs} cannot share out: run it with --jobs 1, or give the experiment "
                    "one device (`CUDA_DEVICES` of a single device in its `settings`)"
                )

    def _thread_shares(self) -> Dict[str, Dict[str, str]]:
        """
        What the processes of each phase run with over this process's environment. Nothing with
        `jobs` 1, nor with GNU's OpenMP runtime (`_gnu_openmp`): every phase runs with all the
        threads of this process, as with `jobs` 1, and the phases side by side share the cores
        as their threads wait for work (`server_environment`). With another runtime, whose idle
        threads may hold their cores: `OMP_NUM_THREADS`, this process's threads divided by
        `jobs` (at least 1), or all of them for a phase that no other phase of the experiment
        can run beside (each other phase starts from it, or it from them, through `upstream`
        and `reads`). Decided from the plan alone, not from what is complete or running: a phase
        runs with the same threads in every run of the experiment, whatever else is run or
        reused.
        """
        if self.jobs == 1 or _gnu_openmp():
            return {}
        threads = torch.get_num_threads()
        before: Dict[str, set] = {}  # each phase's upstream phases, transitively
        for phase in self.phases:  # in the order of the plan: a phase after those it reads
            before[phase.name] = set(phase.needs).union(*(before[name] for name in phase.needs))
        shares = {}
        for phase in self.phases:
            alone = all(
                other == phase.name or other in before[phase.name] or phase.name in before[other]
                for other in before
            )
            share = threads if alone else max(1, threads // self.jobs)
            shares[phase.name] = {"OMP_NUM_THREADS": str(share)}
        return shares

    def _check_labels(self) -> None:
        """
        Every line of the task's files must have a label, and every label of `task.dev` and
        `task.test` must occur in `task.train` (in its sample, with `task.sample`), as the
        classifier needs.
        """
        from allennlp.data import Vocabulary
        from allennlp.data.tokenizers import WhitespaceTokenizer

        from dapt_plugin.data.dataset_readers.text_classification_json_with_sampling import (
            TextClassificationJsonWithSamplingReader,
        )

        reader = TextClassificationJsonWithSamplingReader(
            tokenizer=WhitespaceTokenizer(), labelled=True
        )
        vocabulary = Vocabulary()
        split, sampled = "train", None
        try:
            if self.spec.task_sample is not None:
                self.sample_lines = self._draw_sample()
                sampled = set(self.sample_lines)
            for instance in reader.read(self.spec.task["train"]):
                label = instance["label"]
                if sampled is None or label.location[1] in sampled:
                    vocabulary.add_token_to_namespace(label.label, "labels")
            for split in ("dev", "test"):
                for instance in reader.read(self.spec.task[split]):
                    try:
                        instance["label"].index(vocabulary)  # raises, naming the file and line
                    except DataError as error:
                        hint = ""
                        if sampled is not None:
                            size = _count(self.spec.task_sample, "example")
                            hint = (
                                f" (the classifiers train on the sample of {size}, "
                                "`task.sample`: a larger sample or another `task.sample_seed` "
                                "may hold it)"
                            )
                        raise self._fail(f"`task.{split}`: {error}{hint}") from None
        except DataError as error:
            raise self._fail(f"`task.{split}`: {error}") from None
        labels = vocabulary.get_token_to_index_vocabulary("labels")
        if len(labels) < 2:
            where = "its sample (`task.sample`)" if sampled is not None else "`task.train`"
            raise self._fail(
                f"{where} has one label, {next(iter(labels))!r}: a classifier needs two or more "
                "(every score would be that label's)"
            )

    def _draw_sample(self) -> List[int]:
        """
        The line numbers, in file order, of `task.sample` examples of `task.train` drawn uniformly
        among its lines with a text (`reservoir_sample`, seeded by `task.sample_seed`): the lines
        the classifier's `TRAIN_SAMPLE` reader draws under the same seed.
        """
        path, size = self.spec.task["train"], self.spec.task_sample
        seen, lines = reservoir_sample(
            (line.line_number for line in iter_json_lines(path, warn_empty=False)),
            size,
            random.Random(self.spec.task_sample_seed),
        )
        if seen < size:
            raise DataError(
                path,
                0,
                f"`task.sample` is {size} but the file has only {seen} examples; lower it, or "
                "remove it to use every example",
            )
        return sorted(lines)

    # -- what to do with each phase ---------------------------------------------------------

    def plan(self) -> List[Tuple[Phase, str, str]]:
        """
        `(phase, action, reason)` for every phase: `reuse` (complete, same fingerprint), `run`
        (from the start; the reason says why when it ran before), `recover` (interrupted, same
        fingerprint, with a checkpoint) or `evaluate` (a classifier whose training completed).
        """
        plan: List[Tuple[Phase, str, str]] = []
        run_again = set()
        for phase in self.phases:
            action, reason = self._decide(phase)
            stale = next((n for n in phase.needs if n in run_again), None)
            if stale is not None and action != "run":
                # its upstream's outputs are written anew: what it made from the old ones is stale
                action, reason = "run", f"it starts from {stale}, which is run again"
            if action == "run":
                run_again.add(phase.name)
            plan.append((phase, action, reason))
        return plan

    def _decide(self, phase: Phase) -> Tuple[str, str]:
        marker = self._read_marker(phase)
        if marker is None:
            if self._has_outputs(phase):
                return "run", "no record that it completed; starting over"
            return "run", ""
        missing = [path.name for path in phase.outputs if not path.exists()]
        retest = ""  # a classifier's test files that alone changed: what its evaluation reads
        record = self._record(phase)
        if marker.get("upstream") == self._earlier_upstream(phase):  # of an earlier version
            record["upstream"] = marker["upstream"]
        if marker["fingerprint"] not in (phase.fingerprint, phase.earlier_fingerprints[0]):
            if not (
                phase.training_fingerprint
                and marker.get("training_fingerprint")
                in (phase.training_fingerprint, phase.earlier_fingerprints[1])
            ):
                variables = (
                    None if phase.kind in _STEPS else config_variables(self._config_file(phase))
                )
                return "run", describe_changes(marker, record, variables)
            retest = f"{describe_changes(marker, record)}, which only its evaluation reads"
        if marker["state"] == "complete" and not retest:
            return (
                ("reuse", "")
                if not missing
                else ("run", f"its outputs are missing ({', '.join(missing)})")
            )
        trained = "model.tar.gz" not in missing and (phase.directory / "metrics.json").is_file()
        if marker["state"] in ("trained", "complete") and trained:
            return "evaluate", f"{retest or 'its training completed'}; evaluating it"
        if marker["state"] == "complete":
            return "run", f"{retest}, and its outputs are missing ({', '.join(missing)})"
        if phase.kind in _STEPS:
            return "run", "interrupted; starting over"
        if not any(phase.directory.glob("model_state_e*_b*.th")):
            return "run", "interrupted before its first checkpoint; starting over"
        if not self._trained_its_config(phase, marker):
            return (
                "run",
                "interrupted, and its run's config.json is not its resolved config; starting over",
            )
        return "recover", "interrupted; resuming from its last checkpoint"

    def _trained_its_config(self, phase: Phase, marker: Dict[str, Any]) -> bool:
        """
        Whether the interrupted run of a training phase trained the phase's resolved config: its
        `config.json`, with paths in the output directory it ran in (`output_dir` of its marker;
        the output directory may have moved since) written `<output_dir>/...`, is `phase.config`,
        but for its run-only settings (`determining_config`: `--recover` then runs the new ones).
        """
        path = phase.directory / "config.json"
        if not path.is_file():
            return False
        ran_in = Path(marker.get("output_dir", self.output))
        trained = self._portable(json.loads(path.read_text()), ran_in)
        return determining_config(trained) == determining_config(phase.config)

    def _has_outputs(self, phase: Phase) -> bool:
        if phase.kind in _STEPS:
            return any(path.exists() for path in phase.outputs)
        return phase.directory.exists()

    # -- markers ----------------------------------------------------------------------------

    def _marker_path(self, phase: Phase) -> Path:
        return self.markers / (phase.name.replace("/", ".") + ".json")

    def _read_marker(self, phase: Phase) -> Optional[Dict[str, Any]]:
        path = self._marker_path(phase)
        return json.loads(path.read_text()) if path.exists() else None

    def _record(self, phase: Phase) -> Dict[str, Any]:
        return {
            "settings": self._portable(phase.settings),
            "config": phase.config,
            "inputs": phase.inputs,
            "upstream": self._upstream(phase),
        }

    def write_marker(self, phase: Phase, state: str) -> None:
        """
        Records the phase's fingerprint with `state`: `started` (before it writes anything),
        `trained` (a classifier whose `allennlp train` completed) or `complete` (written last).
        """
        self.markers.mkdir(parents=True, exist_ok=True)
        record = {
            "phase": phase.name,
            "state": state,
            "fingerprint": phase.fingerprint,
            "training_fingerprint": phase.training_fingerprint,
            **self._record(phase),
            # where it ran: its run's config.json names paths there (see `_trained_its_config`)
            "output_dir": str(self.output),
        }
        if state == "complete":
            record["completed"] = [path.name for path in phase.outputs]
        with atomic_file(str(self._marker_path(phase))) as handle:
            json.dump(record, handle, indent=2, sort_keys=True)

    def _clear(self, phase: Phase) -> None:
        """Removes the phase's marker, then what an earlier run of it wrote."""
        self._marker_path(phase).unlink(missing_ok=True)
        if phase.kind in ("sample", "selection"):
            for path in phase.outputs:
                path.unlink(missing_ok=True)
            if phase.directory.exists():  # the temporary file of a killed selection; other
                # selections share the directory and may be writing theirs (`jobs` above 1)
                remove_leftovers(str(phase.directory), [path.name for path in phase.outputs])
        elif phase.directory.exists():
            shutil.rmtree(phase.directory)

    # -- running ----------------------------------------------------------------------------

    def run(self) -> Dict:
        """Runs every phase not yet complete, then writes and returns the results."""
        # the devices of the phases to run as things stand, before anything is written (the
        # phases of a killed run that `_run` waits for can only complete meanwhile)
        self._check_devices([phase for phase, action, _ in self.plan() if action != "reuse"])
        self.output.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.output / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ConfigurationError(
                f"another `allennlp adapt` is running in {self.output}; wait for it "
                "to end, or give another output directory"
            ) from None
        try:
            return self._run()
        finally:
            lock.release()

    def _run(self) -> Dict:
        # the phases' processes of an earlier run killed by SIGKILL stop as soon as they notice
        # (`launch.end_with_the_caller`); nothing is planned or removed until they have
        self.markers.mkdir(parents=True, exist_ok=True)
        wait_for_holders(
            self.running_lock,
            lambda: logger.warning(
                "waiting for the phases' processes of an interrupted run in %s to stop: they "
                "hold %s (`fuser -v` on it lists them)",
                self.output,
                self.running_lock,
            ),
        )
        self.hashes.save()
        for directory in (self.output, self.markers, self.markers / "configs"):
            remove_leftovers(str(directory))  # of this runner's own writes, by a killed earlier run
        times = self._load_times()
        plan = self.plan()
        reused = [phase for phase, action, _ in plan if action == "reuse"]
        to_run = [(phase, action, reason) for phase, action, reason in plan if action != "reuse"]
        if to_run:  # they would report phases this run redoes, until it has written its own
            for name in (*_RESULT_FILES, *MLM_LOSS_FILES):
                (self.output / name).unlink(missing_ok=True)
        # the per-phase logs of phases killed while running side by side (`log_file`)
        for log in sorted((self.markers / "logs").glob("*.log")):
            self._append_to_train_log(log, f"left by an interrupted run of {log.stem}")
        if reused:  # in one line first, so that the phases run are numbered in their order
            names = ", ".join(phase.name for phase in reused)
            logger.info(
                "%s of %d complete, reused: %s", _count(len(reused), "phase"), len(plan), names
            )
        for phase in reused:
            self._log(phase, "skipped")
            # a marker of an earlier version (`earlier_fingerprints`) takes this version's
            # fingerprints, so that a later change of a run-only setting runs nothing again
            marker = self._read_marker(phase)
            if marker is not None and marker["fingerprint"] != phase.fingerprint:
                self.write_marker(phase, "complete")
        done = {phase.name for phase in reused}
        waiting = [
            (f"phase {number} of {len(to_run)} to run: {phase.name}", phase, action, reason)
            for number, (phase, action, reason) in enumerate(to_run, start=1)
        ]
        # each phase once those it starts from or reads are complete, at most `jobs` at once; after
        # a failure none starts, those running end, and the first failure is raised
        failure: Optional[BaseException] = None
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="phase") as pool:
            running: Dict[Future, Phase] = {}
            try:
                while waiting or running:
                    ready = [
                        item for item in waiting if all(name in done for name in item[1].needs)
                    ]
                    for item in ready[: self.jobs - len(running)] if failure is None else []:
                        waiting.remove(item)
                        running[pool.submit(self._run_phase, *item, times)] = item[1]
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        phase = running.pop(future)
                        error = future.exception()
                        if error is None:
                            done.add(phase.name)
                            continue
                        failure = failure or error
                        if running:  # raised once they end, said now
                            logger.error(
                                "%s failed: %s; no other phase starts, waiting for the %d running",
                                phase.name,
                                error,
                                len(running),
                            )
            except BaseException as error:
                # Ctrl-C (which a terminal sends the phases' processes too: they may be archiving
                # their model), or SIGTERM (allennlp's handler raises it here): the running
                # phases' processes are stopped, each as `allennlp` stops on SIGTERM
                stop_preloaded(grace=_GRACE_SECONDS if isinstance(error, KeyboardInterrupt) else 0)
                raise
        if failure is not None:
            raise failure
        results = self.results(times)
        with atomic_file(str(self.output / "results.json")) as handle:
            json.dump(results, handle, indent=2)
        plot = self.output / "results.png"
        draw(plot, "plot_results", results)
        with atomic_file(str(self.output / "results.md")) as handle:
            handle.write(self.report(results, plot.name if plot.exists() else None))
        if self.spec.heldout:
            write_mlm_loss(self.output, self.mlm_losses(), self.spec.heldout)
        else:  # those of an earlier run with `heldout` would not show these encoders
            for name in MLM_LOSS_FILES:
                (self.output / name).unlink(missing_ok=True)
        return results

    def _run_phase(
        self, title: str, phase: Phase, action: str, reason: str, times: Dict[str, float]
    ) -> None:
        """Runs (or resumes, or evaluates) one phase and records its completion and wall time."""
        logger.info("%s%s", title, f" ({reason})" if reason else "")
        start = time.time()
        if action == "run":
            self._clear(phase)
            with self._lock:
                times[phase.name] = 0.0
            self.write_marker(phase, "started")
        else:
            self._log(phase, "recovering" if action == "recover" else "evaluating", reason=reason)
        with self._phase_log(phase):
            {
                "sample": self._run_sample,
                "dapt": self._run_mlm,
                "tapt": self._run_mlm,
                "selection": self._run_selection,
                "classifier": self._run_classifier,
                "mlm_loss": self._run_mlm_loss,
            }[phase.kind](phase, action)
        self.write_marker(phase, "complete")
        with self._lock:
            times[phase.name] = times.get(phase.name, 0.0) + time.time() - start
            with atomic_file(str(self.output / "phase_times.json")) as handle:
                json.dump(times, handle, indent=2)
        self._log(phase, "ran", time.time() - start, reason if action == "run" else "")
        logger.info(
            "%s done in %s: %s; its outputs are in %s",
            phase.name,
            timedelta(seconds=round(time.time() - start)),
            self._outcome(phase),
            phase.directory,
        )

    def log_file(self, phase: Phase) -> Path:
        """
        Where the output of the phase's processes goes: `train.log`, or, with phases running at
        once (`jobs` above 1), `.phases/logs/<name>.log`, appended to `train.log` in one block when
        the phase ends (`_phase_log`).
        """
        if self.jobs == 1:
            return self.output / "train.log"
        return self.markers / "logs" / (phase.name.replace("/", ".") + ".log")

    @contextlib.contextmanager
    def _phase_log(self, phase: Phase) -> Iterator[None]:
        """With `jobs` above 1: the phase's own log, appended to `train.log` when the block ends."""
        try:
            yield
        finally:
            log = self.log_file(phase)
            if self.jobs > 1 and log.exists():
                self._append_to_train_log(log)

    def _append_to_train_log(self, log: Path, heading: Optional[str] = None) -> None:
        """Appends `log` to `train.log` (after `===== heading`, if given) and removes it."""
        with self._lock, open(self.output / "train.log", "ab") as whole, open(log, "rb") as part:
            if heading:
                whole.write(f"\n===== {heading}\n".encode())
            shutil.copyfileobj(part, whole)
        log.unlink()

    def mlm_losses(self) -> Dict[str, Dict[str, Dict[str, float]]]:
        """Encoder (`base`, then each masked-LM phase) -> held-out text -> its `METRICS`."""
        return {
            phase.name.split("/", 1)[1]: json.loads(phase.outputs[0].read_text())
            for phase in self.phases
            if phase.kind == "mlm_loss"
        }

    def _load_times(self) -> Dict[str, float]:
        """The wall seconds of this experiment's phases (not those of removed variants or seeds)."""
        path = self.output / "phase_times.json"
        times = json.loads(path.read_text()) if path.exists() else {}
        return {phase.name: times[phase.name] for phase in self.phases if phase.name in times}

    def _log(self, phase: Phase, action: str, seconds: float = 0.0, reason: str = "") -> None:
        entry = {"phase": phase.name, "action": action, "seconds": round(seconds, 2)}
        if reason:
            entry["reason"] = reason
        with self._lock, open(self.output / "phases.jsonl", "a") as log:
            log.write(json.dumps(entry) + "\n")

    def _train(self, phase: Phase, recover: bool) -> None:
        """
        `allennlp train` of the phase's config in a process of its own, with `--recover` to resume
        it. It runs the config as the dry run resolved and fingerprinted it, written to
        `.phases/configs/<name>.json`: a config file edited (or a plugin upgraded) while the
        experiment runs changes no phase of it, and what `results.json` records is what ran.
        """
        config_file = self._write_config(phase.name, phase.run_config)
        if recover:
            # The interrupted run trained this config (`_trained_its_config`), written with the
            # paths of where the output directory was then; `--recover` refuses any difference,
            # so the run's own copy is brought to where it is now.
            with atomic_file(str(phase.directory / "config.json")) as handle:
                json.dump(phase.run_config, handle, indent=2)
        arguments = ["train", str(config_file), "-s", str(phase.directory)] + (
            ["--recover"] if recover else []
        )
        log_file = self.log_file(phase)
        for directory in (phase.directory.parent, log_file.parent):
            directory.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a") as log:
            log.write(
                f"\n===== {phase.name} ({self._config_file(phase)} as the dry run resolved it): "
                f"{' '.join(allennlp_command(arguments))}\n"
            )
        # the console shows the run's progress lines as they come, and its plugin's warnings
        # the jsonnet its config comes from: what its export's card names
        settings = {
            **phase.settings,
            CONFIG_SOURCE_VARIABLE: self._config_file(phase),
            **self.phase_environment.get(phase.name, {}),
        }
        with PhaseProgress(phase.directory, phase.name, shown=self._warnings_shown):
            self._allennlp(
                phase,
                arguments,
                settings,
                f"phase {phase.name} failed",
                f"{self.output / 'train.log'} and {phase.directory / 'out.log'}",
            )

    def _allennlp(
        self,
        phase: Phase,
        arguments: List[str],
        settings: Dict[str, str],
        failed: str,
        logs: str,
    ) -> None:
        """
        `allennlp ARGUMENTS` for the phase in a process of its own (`run_allennlp_preloaded`,
        holding `running_lock`), its output appended to the phase's log; a failure raises
        `ProcessFailed`: `failed`, how the process ended, what it said last of its failure
        (`last_error`) and where its `logs` are.
        """
        log_file = self.log_file(phase)
        start = log_file.stat().st_size if log_file.exists() else 0
        exit_code = run_allennlp_preloaded(
            arguments, settings, log=log_file, hold=self.running_lock
        )
        if exit_code != 0:
            # a process killed by a signal says nothing of it: what the log holds is older
            said = last_error(log_file, start) if exit_code > 0 else None
            ended = f"killed by signal {-exit_code}" if exit_code < 0 else f"exit {exit_code}"
            raise ProcessFailed(
                f"{failed} ({ended}){f': {said}' if said else ''}; its log is in {logs}"
            )

    def _write_config(self, name: str, config: Dict[str, Any]) -> Path:
        """Writes `config` to `.phases/configs/<name>.json` (`/` written `.`); returns its path."""
        path = self.markers / "configs" / (name.replace("/", ".") + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(str(path)) as handle:
            json.dump(config, handle, indent=2)
        return path

    def _run_mlm(self, phase: Phase, action: str) -> None:
        self._train(phase, recover=action == "recover")

    def _run_sample(self, phase: Phase, action: str) -> None:
        """Writes the lines of `task.train` that the dry run drew, as they are, in file order."""
        chosen = set(self.sample_lines)
        phase.directory.mkdir(parents=True, exist_ok=True)
        with atomic_file(str(phase.outputs[0])) as sample:
            for line_number, line in iter_lines(phase.settings["path"]):
                if line_number in chosen:
                    sample.write(line + "\n")

    def _run_selection(self, phase: Phase, action: str) -> None:
        from dapt_plugin.selection.tapt_selection import select_tapt_data

        arguments = dict(phase.settings)
        # without a `size` of its own, a random selection draws as many as its kNN selection
        if arguments["method"] == "random" and "size" not in arguments:
            with open(self._phase(phase.upstream).outputs[0]) as selected:
                arguments["size"] = sum(1 for _ in selected)
        self._call(
            phase,
            functools.partial(select_tapt_data, output_path=str(phase.outputs[0]), **arguments),
        )

    def _run_classifier(self, phase: Phase, action: str) -> None:
        if action == "evaluate":
            remove_leftovers(
                str(phase.directory)
            )  # of an evaluation killed while writing its metrics
        else:
            self._train(phase, recover=action == "recover")
            self.write_marker(phase, "trained")
        # dev: the validation of the epoch whose weights were archived (`validation_data_path`
        # is `task.dev`, read and batched as `allennlp evaluate` does), not computed again
        trained = json.loads((phase.directory / "metrics.json").read_text())
        metrics = {
            "dev": {
                key[len("best_validation_") :]: value
                for key, value in trained.items()
                if key.startswith("best_validation_")
            }
        }
        # test: on the device the classifier trained on, in a process of its own like its training
        tested, seconds = self._call(
            phase,
            _evaluate_archive,
            str(phase.directory / "model.tar.gz"),
            {"test": self.spec.task["test"]},
            phase.config.get("trainer", {}).get("cuda_device"),
            {},
            str(phase.directory / "out.log"),
        )
        metrics.update(tested)
        for split, values in metrics.items():
            # AllenNLP's, which the plugin makes atomic
            common_util.dump_metrics(str(phase.directory / f"{split}_metrics.json"), values)
        with atomic_file(str(phase.directory / _EVALUATION_TIME)) as handle:
            json.dump({"evaluation_seconds": seconds}, handle)

    def _call(self, phase: Phase, function: Callable[..., Any], *args: Any) -> Any:
        """
        `function(*args)` in a process of its own (`call_preloaded`) with the phase's share of the
        threads, its output to the phase's log; a failure names the phase and the log.
        """
        try:
            return call_preloaded(
                function,
                *args,
                env=self.phase_environment.get(phase.name, {}),
                log=self.log_file(phase),
                hold=self.running_lock,
            )
        except PreloadedCallFailed as error:
            raise ProcessFailed(
                f"phase {phase.name}: {error}; the whole log is in {self.output / 'train.log'}"
            ) from None

    def _run_mlm_loss(self, phase: Phase, action: str) -> None:
        """
        Evaluates the encoder's masked-LM archive on every held-out text, with the reader,
        loader and masking of `_mlm_loss_reference`; the base model is first archived as it is
        (`allennlp archive-untrained`, in a process of its own like a training phase). Both
        with what the dry run resolved (`Phase.run_config`).
        """
        phase.directory.mkdir(parents=True, exist_ok=True)
        if phase.upstream is None:
            archive_dir = phase.directory / "base_model"
            config_file = self._write_config(phase.name + "/base", phase.run_config["base_config"])
            arguments = ["archive-untrained", str(config_file)]
            self._allennlp(
                phase,
                arguments + ["-s", str(archive_dir)],
                {**self._base_mlm_settings(), **self.phase_environment.get(phase.name, {})},
                f"phase {phase.name}: archiving the base model failed",
                str(self.output / "train.log"),
            )
            archive = archive_dir / "model.tar.gz"
        else:
            archive = self._phase(phase.upstream).directory / "model.tar.gz"
        reference = phase.run_config["reference"]
        overrides = {
            "dataset_reader": reference["dataset_reader"],
            "validation_data_loader": reference["validation_data_loader"],
            # dotted: these keys of the archive's model, the rest of it as it is
            **{f"model.{key}": value for key, value in reference["model"].items()},
        }
        metrics, seconds = self._call(
            phase,
            _evaluate_archive,
            str(archive),
            phase.settings["heldout"],
            reference["cuda_device"],
            overrides,
            str(phase.directory / "out.log"),
        )
        losses = {
            name: {key: values[key] for key in MLM_LOSS_METRICS} for name, values in metrics.items()
        }
        with atomic_file(str(phase.directory / _EVALUATION_TIME)) as handle:
            json.dump({"evaluation_seconds": seconds}, handle)
        with atomic_file(str(phase.outputs[0])) as handle:
            json.dump(losses, handle, indent=2)

    def _outcome(self, phase: Phase) -> str:
        """What a completed phase's final console line says of its result."""
        if phase.kind == "sample":
            return (
                f"{phase.settings['size']} examples of {phase.settings['path']} drawn "
                f"(seed {phase.settings['seed']})"
            )
        if phase.kind == "selection":
            with open(phase.outputs[0]) as selected:
                return f"{_count(sum(1 for _ in selected), phase.settings['unit'])} selected"
        if phase.kind == "mlm_loss":
            losses = json.loads(phase.outputs[0].read_text())
            return "held-out MLM loss " + ", ".join(
                f"{name} {_number(loss['mlm_loss'])}" for name, loss in losses.items()
            )
        if phase.kind == "classifier":
            return ", ".join(
                f"{split} {self.spec.metric} "
                + _number(
                    json.loads((phase.directory / f"{split}_metrics.json").read_text()).get(
                        self.spec.metric
                    )
                )
                for split in ("dev", "test")
            )
        metrics = json.loads((phase.directory / "metrics.json").read_text())
        outcome = f"training loss {_number(metrics.get('training_loss'))}"
        if "heldout_mlm_loss_start" in metrics:
            outcome += (
                f", held-out MLM loss {_number(metrics['heldout_mlm_loss_start'])} -> "
                f"{_number(metrics.get('heldout_mlm_loss_end'))}"
            )
        return outcome

    def _phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    # -- results ----------------------------------------------------------------------------

    def results(self, times: Dict[str, float]) -> Dict:
        """
        The metrics of every variant and seed, their mean and standard deviation, the held-out
        masked-LM losses of the phases that made each variant's encoder, wall times, the
        experiment file (its path, and its content as read: defaults filled in), and each phase's
        kind, settings (its environment, or a selection's arguments), resolved config and
        fingerprint.
        """
        metric = self.spec.metric
        variants = {}
        for variant in self.spec.variants:
            classifiers = [
                phase
                for phase in self.phases
                if phase.kind == "classifier" and phase.variant == variant
            ]
            runs = {
                str(phase.seed): {
                    split: json.loads((phase.directory / f"{split}_metrics.json").read_text())
                    for split in ("dev", "test")
                }
                for phase in classifiers
            }
            summary = {}
            for split in ("dev", "test"):
                values = [run[split][metric] for run in runs.values()]
                summary[split] = {
                    "mean": statistics.fmean(values),
                    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                }
            adaptation = self._adaptation(classifiers[0])
            variants[variant] = {
                "seeds": runs,
                **summary,
                "heldout_mlm_loss": self._heldout_losses(adaptation),
                "adaptation_seconds": sum(times.get(phase.name, 0.0) for phase in adaptation),
                "fine_tuning_seconds": sum(times.get(phase.name, 0.0) for phase in classifiers),
            }
        if "baseline" in variants:
            baseline = variants["baseline"]["dev"]
            for row in variants.values():
                # below the baseline by more than the spread over seeds: the adaptation hurt
                spread = max(row["dev"]["std"], baseline["std"])
                row["below_baseline"] = row["dev"]["mean"] < baseline["mean"] - spread
        phases = {
            phase.name: {
                "kind": phase.kind,
                "settings": self._portable(phase.settings),
                "config": phase.config,
                "fingerprint": phase.fingerprint,
            }
            for phase in self.phases
        }
        experiment = dataclasses.asdict(self.spec)
        del experiment["path"]
        return {
            "experiment": self.spec.path,
            "experiment_file": experiment,
            "metric": metric,
            "seeds": self.spec.seeds,
            "variants": variants,
            "phases": phases,
            "phase_seconds": times,
            "phase_timing": {phase.name: self._timing(phase, times) for phase in self.phases},
            # how this run ran them (`--jobs`, the OpenMP setting of the phases' processes,
            # and each phase's thread count if shared out)
            "jobs": self.jobs,
            "server_environment": self.server_environment,
            "phase_environment": self.phase_environment,
            "output_dir": str(self.output),
        }

    @staticmethod
    def _timing(phase: Phase, times: Dict[str, float]) -> Dict[str, float]:
        """
        The phase's wall time, and the seconds of it spent training and evaluating: AllenNLP's
        `training_duration` (its epochs, with their validation) and the head warm-up's steps
        (`head_warmup_seconds`, before the first epoch); the held-out masked-LM losses before and
        after training (`heldout_mlm_loss_seconds`) and the evaluations of a classifier (test:
        its dev metrics are its validation's) or of an `mlm_loss` phase (its held-out texts),
        archive loading left out. 0 where
        the phase has none (a sample, a selection) or an earlier version did not record it.
        """
        path = phase.directory / "metrics.json"
        metrics = (
            json.loads(path.read_text()) if phase.kind in CONFIG_FILES and path.exists() else {}
        )
        duration = metrics.get("training_duration")
        evaluation = phase.directory / _EVALUATION_TIME
        evaluated = (
            json.loads(evaluation.read_text())["evaluation_seconds"]
            if phase.kind in ("classifier", "mlm_loss") and evaluation.exists()
            else 0.0
        )
        return {
            "wall_seconds": times.get(phase.name, 0.0),
            "training_seconds": (duration_seconds(duration) if duration else 0.0)
            + metrics.get("head_warmup_seconds", 0.0),
            "evaluation_seconds": evaluated + metrics.get("heldout_mlm_loss_seconds", 0.0),
        }

    def _adaptation(self, classifier: Phase) -> List[Phase]:
        """The phases that made the encoder `classifier` starts from (following `upstream`), first first."""
        chain: List[Phase] = []
        name = classifier.upstream
        while name is not None:
            chain.insert(0, self._phase(name))
            name = chain[0].upstream
        return chain

    @staticmethod
    def _heldout_losses(phases: List[Phase]) -> Dict[str, Dict[str, float]]:
        """Held-out masked-LM loss at the start and end of each masked-LM phase of `phases`."""
        losses = {}
        for phase in phases:
            metrics_file = phase.directory / "metrics.json"
            if phase.kind in ("dapt", "tapt") and metrics_file.exists():
                metrics = json.loads(metrics_file.read_text())
                if "heldout_mlm_loss_start" in metrics:
                    losses[phase.name] = {
                        "start": metrics["heldout_mlm_loss_start"],
                        "end": metrics["heldout_mlm_loss_end"],
                    }
        return losses

    @staticmethod
    def table(results: Dict) -> str:
        """
        The results as markdown: a variant whose mean dev score is below the baseline's by more
        than the spread over seeds is marked, with the held-out masked-LM losses of its phases
        (start -> end) next to it, the first numbers to look at to find out why.
        """
        metric = results["metric"]
        lines = [
            f"| variant | dev {metric} | test {metric} | held-out MLM loss (start -> end) | adaptation time "
            f"| fine-tuning time ({_count(len(results['seeds']), 'seed')}) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for variant, row in results["variants"].items():
            losses = (
                ", ".join(
                    f"{name} {loss['start']:.3f} -> {loss['end']:.3f}"
                    for name, loss in row["heldout_mlm_loss"].items()
                )
                or "-"
            )
            flag = " (below baseline)" if row.get("below_baseline") else ""
            lines.append(
                f"| {variant}{flag} | {100 * row['dev']['mean']:.1f} ± {100 * row['dev']['std']:.1f} "
                f"| {100 * row['test']['mean']:.1f} ± {100 * row['test']['std']:.1f} "
                f"| {losses} | {row['adaptation_seconds']:.0f} s | {row['fine_tuning_seconds']:.0f} s |"
            )
        harmful = [
            variant for variant, row in results["variants"].items() if row.get("below_baseline")
        ]
        if harmful:
            lines.append("")
            lines.append(
                f"(below baseline): {', '.join(harmful)} scored below the baseline on dev by more than "
                "the spread over seeds: the adaptation hurt. A held-out loss that went up, or a start "
                "far above the end, points at the masked-LM phase (learning rate, data, a random head)."
            )
        return "\n".join(lines) + "\n"

    @classmethod
    def report(cls, results: Dict, plot: Optional[str] = None) -> str:
        """
        `results.md`: the table (see `table`), the plot at the relative path `plot` if there is
        one, the experiment file as read, and the main resolved settings of each kind of phase.
        """
        sections = [f"# Results of {results['experiment']}\n", cls.table(results)]
        if plot:
            sections.append(f"![{results['metric']} of every variant, mean and spread]({plot})\n")
        sections.append(
            f"## Experiment\n\n`{results['experiment']}`, as `allennlp adapt` read it:\n\n"
            f"```json\n{json.dumps(results['experiment_file'], indent=2)}\n```\n"
        )
        sections.append(
            "## Settings\n\nThe main values each kind of phase ran with: its config resolved with "
            "the experiment's `settings` and the configs' defaults (several values: they differ "
            "between its phases). Every phase's whole resolved config is in `results.json`, under "
            "`phases.<phase>.config`.\n\n" + cls._settings_table(results["phases"])
        )
        return "\n".join(sections)

    @staticmethod
    def _settings_table(phases: Dict[str, Dict]) -> str:
        kinds: Dict[str, List[Dict]] = {}
        for phase in phases.values():
            if phase.get("kind") in CONFIG_FILES:
                kinds.setdefault(phase["kind"], []).append(phase["config"])
        rows = {}
        for kind, configs in kinds.items():
            settings = [_key_settings(config) for config in configs]
            # each distinct value once, in the order of the phases
            rows[kind] = {
                label: ", ".join(
                    dict.fromkeys(str(row[label]) for row in settings if row[label] is not None)
                )
                or "-"
                for label in settings[0]
            }
        labels = [
            label
            for label in next(iter(rows.values()), {})
            if any(row[label] != "-" for row in rows.values())
        ]
        lines = ["| phase | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
        for kind, row in rows.items():
            lines.append(f"| {kind} | " + " | ".join(row[label] for label in labels) + " |")
        return "\n".join(lines) + "\n"


def _key_settings(config: Dict) -> Dict[str, Any]:
    """
    What the settings table of `results.md` shows of a resolved config of the plugin (None where
    the config has no such value): the length of the run (optimizer steps, or passes over the
    data), the batch, the optimizer's main values, the masking and the seed.
    """

    def get(*keys: str) -> Any:  # the value at the first dotted path present
        for key in keys:
            value: Any = config
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                return value
        return None

    epochs, accumulation = get("trainer.num_epochs"), get("trainer.num_gradient_accumulation_steps")
    batches_per_epoch = get("data_loader.batches_per_epoch")
    if epochs and batches_per_epoch:  # a run of NUM_STEPS optimizer steps
        length = _count(epochs * batches_per_epoch // (accumulation or 1), "step")
    else:
        length = _count(epochs, "epoch") if epochs else None
    batch = get("data_loader.batch_size", "data_loader.batch_sampler.batch_size")
    return {
        "length": length,
        "batch × accumulation": f"{batch} × {accumulation or 1}" if batch else None,
        "learning rate": get("trainer.optimizer.lr"),
        "warmup ratio": get("trainer.learning_rate_scheduler.warmup_ratio"),
        "weight decay": get("trainer.optimizer.weight_decay"),
        "max length": get("dataset_reader.max_length", "dataset_reader.max_sequence_length"),
        "MLM probability": get("model.mlm_probability"),
        "seed": get("random_seed"),
        "device": get("trainer.cuda_device"),
    }


def _evaluate_archive(
    archive_file: str,
    data_paths: Dict[str, str],
    configured_device: Optional[int],
    overrides: Dict[str, Any],
    log: str,
) -> Tuple[Dict[str, Dict[str, Any]], float]:
    """
    `allennlp evaluate` of the archive (with `overrides`) on each of `data_paths`, loaded once, on
    the configured device (`_device`), its log records appended to `log`: the metrics of each
    name, and the seconds of the evaluations themselves (archive loading, reading the data and
    building the data loaders left out). Run in a phase's process (`ExperimentRunner._call`).
    """
    from allennlp.models.archival import load_archive

    device = _device(configured_device)
    metrics, seconds = {}, 0.0
    with logs_to_file(log):
        archive = load_archive(archive_file, cuda_device=device, overrides=overrides)
        for name, data_path in data_paths.items():
            metrics[name], elapsed = _evaluate(archive, data_path, device)
            seconds += elapsed
    return metrics, seconds


def _evaluate(archive, data_path: str, cuda_device: int) -> Tuple[Dict[str, Any], float]:
    """
    `allennlp evaluate` of a loaded `archive` on `data_path` (what `evaluate_from_archive` does
    after loading it, so that several data share one loading), and the seconds of the evaluation
    itself, reading the data and building the data loader left out.
    """
    from allennlp.common.util import prepare_environment
    from allennlp.data import DataLoader
    from allennlp.evaluation import Evaluator

    config = deepcopy(archive.config)
    prepare_environment(config)
    archive.model.eval()
    evaluator_params = config.pop("evaluation", {})
    evaluator_params["cuda_device"] = cuda_device
    evaluator = Evaluator.from_params(evaluator_params)
    data_loader_params = config.get("validation_data_loader", None)
    if data_loader_params is None:
        data_loader_params = config.get("data_loader")
    data_loader = DataLoader.from_params(
        params=data_loader_params, reader=archive.validation_dataset_reader, data_path=data_path
    )
    data_loader.index_with(archive.model.vocab)
    start = time.perf_counter()
    metrics = evaluator(archive.model, data_loader)
    return metrics, time.perf_counter() - start


def _device(configured: Optional[int]) -> int:
    """The device of an evaluation: the config's, or, unset, the first GPU if there is one."""
    if configured is not None:
        return configured
    return 0 if torch.cuda.is_available() else -1


# With `jobs` above 1 and GNU's OpenMP runtime, an idle OpenMP thread of a phase's process sleeps
# after this many spins waiting for work (`GOMP_SPINCOUNT`), so that another phase's threads get its
# core. On two cores (`benchmarks/shared_cores.py`), two classifiers' steps side by side with both
# threads each took 2.5x the time of two with one thread each with libgomp's default, 300,000
# spins, 1.15x with 1,000 (masked LM: 1.5x and 1.0x); alone, 1,000 spins cost 1.1x to 1.2x
_SPIN_COUNT = "1000"


@functools.lru_cache(maxsize=None)
def _gnu_openmp() -> bool:
    """Whether torch's OpenMP runtime in this process is GNU's, libgomp (torch's Linux builds)."""
    try:
        with open("/proc/self/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:  # no /proc: not Linux
        return False


def server_environment(jobs: int) -> Dict[str, str]:
    """
    The OpenMP setting that the server of the phases' processes starts with (`start_preloading`)
    when `jobs` phases may run at once: `GOMP_SPINCOUNT=_SPIN_COUNT` with `jobs` above 1 and GNU's
    OpenMP runtime, unless this process's environment sets `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`
    (its setting then holds); else nothing.
    """
    if jobs == 1 or not _gnu_openmp() or {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ):
        return {}
    return {"GOMP_SPINCOUNT": _SPIN_COUNT}


def duration_seconds(duration: str) -> float:
    """Seconds of a `str(timedelta)`, as AllenNLP writes `training_duration` ("1 day, 0:02:03.5")."""
    days, _, clock = duration.rpartition(", ")
    hours, minutes, seconds = clock.split(":")
    return (
        int(days.split()[0] if days else 0) * 86400
        + int(hours) * 3600
        + int(minutes) * 60
        + float(seconds)
    )


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def run_experiment(spec: ExperimentSpec, output_dir: str, jobs: int = 1) -> Dict:
    """Checks `spec` (a dry run of every phase), runs or resumes it in `output_dir` with up to
    `jobs` phases at once; prints the table and where the results are."""
    # the phases' processes: their imports overlap with the checks
    start_preloading(server_environment(jobs))
    runner = ExperimentRunner(spec, output_dir, jobs)
    results = runner.run()
    print(runner.table(results))
    written = [
        str(runner.output / name) for name in _RESULT_FILES if (runner.output / name).exists()
    ]
    print(f"Results: {', '.join(written[:-1])} and {written[-1]}; runs under {runner.output}")
    return results
