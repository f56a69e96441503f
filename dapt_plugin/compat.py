"""
Every patch the plugin makes to allennlp and transformers, in one place: those that let allennlp
2.10.1 (its last release, which pins torch<1.13 and transformers<4.21) run on the stack in
`requirements.txt` (torch 2.x, transformers 4.4x, Python 3.11), and those that make allennlp do
what the plugin promises (optional config variables, checked model names, self-contained and
atomically written archives, one-line user errors, a quiet console).

The patches are applied once, when `dapt_plugin` is imported (`apply_patches`), and each says
what fails without it. The logic a patch calls lives in its own module (`common/...`); only the
wiring is here.
"""

import contextlib
import functools
import glob
import inspect
import itertools
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import transformers
from allennlp.common import cached_transformers
from allennlp.common.checks import ConfigurationError

_applied = False


def _patch_transformer_loading() -> None:
    """
    allennlp loads every transformer and tokenizer (readers, tokenizers, token indexers,
    embedders, archives) through `cached_transformers.get` and `get_tokenizer`. Three failures:

    - `PretrainedTransformerTokenizer` (also inside the `pretrained_transformer` token indexer)
      calls `get_tokenizer(name, add_special_tokens=...)`, which forwards the flag to
      `AutoTokenizer.from_pretrained` as an init argument. transformers (4.49 here) rejects init
      arguments named like a tokenizer method, so building any `pretrained_transformer` tokenizer
      or indexer failed with "AttributeError: add_special_tokens conflicts with the method
      add_special_tokens in RobertaTokenizerFast". The flag never belonged in `from_pretrained`:
      allennlp passes it again on every call that encodes text, so it is dropped there.
    - transformers takes a `MODEL_NAME` it cannot find on disk for a model-hub id and, offline,
      failed with a message about the hub; a path that does not exist, or an export without its
      weights or tokenizer, is a `ConfigurationError` that says so
      (`common.pretrained.check_model_name`).
    - a model directory with its own Python code (`auto_map`) made transformers ask on the
      terminal whether to run it; it is refused unless `trust_remote_code=True` is passed
      (`TRUST_REMOTE_CODE=true` in the configs; `common.pretrained.check_remote_code`).
    """
    from dapt_plugin.common.pretrained import check_model_name, check_remote_code

    original_get, original_get_tokenizer = (
        cached_transformers.get,
        cached_transformers.get_tokenizer,
    )

    @functools.wraps(original_get)
    def get(model_name: str, *args, **kwargs) -> transformers.PreTrainedModel:
        # `load_weights=False` (a model loaded from an archive) builds from the config alone
        check_model_name(
            model_name, ("model",) if kwargs.get("load_weights", True) else ("config",)
        )
        check_remote_code(model_name, kwargs.setdefault("trust_remote_code", False))
        return original_get(model_name, *args, **kwargs)

    @functools.wraps(original_get_tokenizer)
    def get_tokenizer(model_name: str, **kwargs) -> transformers.PreTrainedTokenizer:
        check_model_name(model_name, ("tokenizer",))
        check_remote_code(model_name, kwargs.setdefault("trust_remote_code", False))
        kwargs.pop("add_special_tokens", None)
        return original_get_tokenizer(model_name, **kwargs)

    cached_transformers.get = get
    cached_transformers.get_tokenizer = get_tokenizer


def _patch_adamw_kernels() -> None:
    """
    allennlp's `adamw` optimizer (`AdamWOptimizer`) predates PyTorch's `foreach` and `fused` AdamW
    kernels and accepts only the arguments it names, so `"fused": true` in a config
    (`FUSED_ADAMW=true`) fails with "Extra parameters passed to AdamWOptimizer: {'fused': True}".
    The fused kernel (CPU and CUDA) updates every parameter in one pass instead of about ten
    tensor operations per parameter; the masked-LM configs use it (see `benchmarks/RESULTS.md`).
    The patch adds torch's two arguments; left unset (`null`), torch chooses as before.
    """
    from allennlp.training.optimizers import AdamWOptimizer, make_parameter_groups

    def __init__(
        self,
        model_parameters: List[Tuple[str, torch.nn.Parameter]],
        parameter_groups: List[Tuple[List[str], Dict[str, Any]]] = None,
        lr: float = 0.001,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-08,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
        foreach: Optional[bool] = None,
        fused: Optional[bool] = None,
    ) -> None:
        super(AdamWOptimizer, self).__init__(
            params=make_parameter_groups(model_parameters, parameter_groups),
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            foreach=foreach,
            fused=fused,
        )

    AdamWOptimizer.__init__ = __init__


def _patch_atomic_outputs() -> None:
    """
    AllenNLP writes `metrics.json`, `metrics_epoch_<N>.json` (`common.util.dump_metrics`) and
    `model.tar.gz` (`models.archival.archive_model`) in place, so a run killed while writing one
    leaves a truncated file under the final name: `allennlp adapt` then took the phase as done
    and every re-run died with "tarfile.ReadError: empty file", naming no file. The patches
    write each to a temporary name beside it and rename it into place. A metrics file ends with
    a newline (AllenNLP's did not, which ran the next line of `evaluate ... --output-file
    /dev/stdout >> log` on from its closing brace).
    """
    import allennlp.commands.train as train_command
    import allennlp.models as models
    from allennlp.common import util as common_util
    from allennlp.models import archival

    from dapt_plugin.common.atomic import atomic_file, atomic_path

    original_archive_model = archival.archive_model

    @functools.wraps(original_archive_model)
    def archive_model(
        serialization_dir,
        weights=archival._DEFAULT_WEIGHTS,
        archive_path=None,
        include_in_archive=None,
    ) -> str:
        if archive_path is None:
            target = os.path.join(serialization_dir, "model.tar.gz")
        elif os.path.isdir(archive_path):
            target = os.path.join(archive_path, "model.tar.gz")
        else:
            target = os.fspath(archive_path)
        with atomic_path(target) as tmp:
            original_archive_model(serialization_dir, weights, tmp, include_in_archive)
        # where the run's output is (allennlp logs only the temporary name, which the console leaves out)
        logging.getLogger(__name__).info("Model archive: %s", target)
        return target

    def dump_metrics(file_path: Optional[str], metrics: Dict[str, Any], log: bool = False) -> None:
        metrics_json = json.dumps(metrics, indent=2)
        if file_path:
            with atomic_file(file_path) as handle:
                handle.write(metrics_json + "\n")  # a text file's last line ends, as `cat` wants
        if log:
            common_util.logger.info("Metrics: %s", metrics_json)

    archival.archive_model = models.archive_model = train_command.archive_model = archive_model
    common_util.dump_metrics = dump_metrics


def _patch_archive_compression() -> None:
    """
    AllenNLP writes `model.tar.gz` at gzip's slowest level (9): 20 s for the 90 MB of MiniLM-L6's
    weights on a 2-core machine, minutes for roberta-base's 500 MB, at the end of every run and
    every phase of `allennlp adapt`, for an archive only 8% smaller (float weights hardly
    compress), and reading it back costs 3.6 s against 0.6 s. The patch writes it at level 0
    (gzip's stored blocks): still a `.tar.gz` that `load_archive`, `tar` and every reader open,
    written in well under a second.
    """
    import tarfile

    from allennlp.models import archival

    class StoredGzipTarfile:  # `tarfile` as `archival` sees it
        def __getattr__(self, name: str) -> Any:
            return getattr(tarfile, name)

        @staticmethod
        def open(name=None, mode="r", *args, **kwargs):
            if mode == "w:gz":
                kwargs.setdefault("compresslevel", 0)
            return tarfile.open(name, mode, *args, **kwargs)

    archival.tarfile = StoredGzipTarfile()


def _patch_self_contained_archives() -> None:
    """
    A `model.tar.gz`'s `config.json` names each encoder by the path it had at training time, so
    `allennlp evaluate`/`predict` failed with "MODEL_NAME 'runs/.../exported_model': no such
    directory" once that directory was moved or deleted (or relative to another working
    directory). `archive_model` also archives the config and tokenizer files of every encoder
    directory the config names, and `load_archive` loads from that copy (see
    `common/archived_encoders.py`).
    """
    import allennlp.commands.train as train_command
    import allennlp.models as models
    from allennlp.common.params import Params
    from allennlp.models import archival

    from dapt_plugin.common.archived_encoders import (
        ENCODERS_DIRECTORY,
        copy_encoders,
        forget_copies,
        use_archived_encoders,
    )

    original_archive_model = archival.archive_model
    original_load_dataset_readers = archival._load_dataset_readers
    original_load_model = archival._load_model

    @functools.wraps(original_archive_model)
    def archive_model(
        serialization_dir,
        weights=archival._DEFAULT_WEIGHTS,
        archive_path=None,
        include_in_archive=None,
    ) -> str:
        if copy_encoders(os.fspath(serialization_dir)):
            include_in_archive = [*(include_in_archive or []), ENCODERS_DIRECTORY]
        return original_archive_model(serialization_dir, weights, archive_path, include_in_archive)

    def load_dataset_readers(config: Params, serialization_dir: str):
        copies = use_archived_encoders(config, serialization_dir)
        try:
            return original_load_dataset_readers(config, serialization_dir)
        finally:
            forget_copies(copies)

    def load_model(config: Params, weights_path: str, serialization_dir: str, cuda_device: int):
        copies = use_archived_encoders(config, serialization_dir)
        try:
            return original_load_model(config, weights_path, serialization_dir, cuda_device)
        finally:
            forget_copies(copies)

    archival.archive_model = models.archive_model = train_command.archive_model = archive_model
    archival._load_dataset_readers = load_dataset_readers
    archival._load_model = load_model


def _patch_reusable_serialization_dir() -> None:
    """
    `allennlp train` refuses a serialization directory that is not empty unless `--recover` is
    given, and a run that failed before training (bad data, a bad variable found while the
    model or the data loader is built) has already written its config and log there: after
    fixing the input, the same command failed with "already exists and is not empty". A
    directory that holds only what such a run writes (no checkpoint, weights, metrics or
    archive) is emptied and used as new; anything else is refused as before. A file, or a path
    through one, is refused with the path (it was a `NotADirectoryError` traceback). With
    `--force`, which removes the directory first, one that holds the working directory, the
    config file or a path the config names (its data paths, its `MODEL_NAME` directory) is
    refused: `-s . -f` deleted the project, `-s data -f` the corpus.
    """
    from allennlp.commands import train
    from allennlp.training import util as training_util

    from dapt_plugin.common.atomic import check_output_directory, check_writable_path

    original_from_file = train.train_model_from_file

    @functools.wraps(original_from_file)
    def train_model_from_file(*args, **kwargs):
        # the config file, which the config does not name (the paths it names are checked
        # with the directory, `create_serialization_dir`)
        given = inspect.signature(original_from_file).bind(*args, **kwargs).arguments
        serialization_dir = os.fspath(given["serialization_dir"])
        if given.get("force") and os.path.isdir(serialization_dir):
            check_output_directory(
                serialization_dir, True, [os.fspath(given["parameter_filename"])]
            )
        return original_from_file(*args, **kwargs)

    train.train_model_from_file = train_model_from_file

    original = training_util.create_serialization_dir

    @functools.wraps(original)
    def create_serialization_dir(params, serialization_dir, recover: bool, force: bool) -> None:
        # `--force` removes the directory and makes it again
        check_writable_path(serialization_dir, "directory", replaced=force)
        if force:
            named = _named_paths(params.as_dict(quiet=True))
            check_output_directory(os.fspath(serialization_dir), True, named)
        if recover and not force:
            _check_recovered_config(params, serialization_dir)
        if not recover and not force and os.path.isdir(serialization_dir):
            names = set(os.listdir(serialization_dir))
            tensorboard = os.path.join(serialization_dir, "log")
            if (
                "config.json" in names
                and names <= _WRITTEN_BEFORE_TRAINING
                and all(
                    name.startswith("events.out.tfevents.")
                    for _, _, files in os.walk(tensorboard)
                    for name in files
                )
            ):
                logging.getLogger(__name__).info(
                    "%s holds only the config and logs of a run that stopped before training; "
                    "starting over in it",
                    serialization_dir,
                )
                shutil.rmtree(serialization_dir)
        original(params, serialization_dir, recover, force)

    training_util.create_serialization_dir = create_serialization_dir


def _named_paths(config: Any, path_valued: bool = False) -> List[str]:
    """
    The existing files and directories that the path-valued keys of `config` name (`*_path`,
    `*_file`, `*_dir`, `directory`, `model_name`, and what a mapping under one holds): a path,
    a glob or a comma-separated list of them, as AllenNLP's readers and `MODEL_NAME` read them.
    Not any string: a type or an activation (`train`, `tanh`) may be the name of a directory
    too. Not the token cache's `cache_directory`, which may be deleted at any time.
    """
    if isinstance(config, dict):
        return [
            path
            for key, value in config.items()
            for path in _named_paths(
                value,
                path_valued
                or key.endswith(("_path", "_file", "_dir"))
                or key in ("directory", "model_name"),
            )
        ]
    if isinstance(config, list):
        return [path for value in config for path in _named_paths(value, path_valued)]
    if not isinstance(config, str) or not path_valued:
        return []
    named = []
    for part in dict.fromkeys([config, *config.split(",")]):  # a name with a comma, or a list
        part = os.path.expanduser(part.strip())
        if part and os.path.exists(part):  # `data[1].txt` is a file before it is a pattern
            named.append(part)
        elif part and glob.has_magic(part):
            named.extend(glob.glob(part))
    return named


def _check_recovered_config(params, serialization_dir: str) -> None:
    """
    Refuses `--recover` with a config other than the run's `config.json`, naming the keys that
    differ: AllenNLP's own comparison logged each difference, then stopped with a `KeyError`
    traceback when a key was in one config only (`HELDOUT_PATH` unset, another config file).
    """
    from allennlp.common.params import Params

    recorded = os.path.join(serialization_dir, "config.json")
    if not os.path.isfile(recorded):
        return  # AllenNLP's own message
    given = params.as_flat_dict()
    loaded = Params.from_file(recorded).as_flat_dict()
    differences = [
        f"{key} "
        + (
            "(only in the new config)"
            if key not in loaded
            else "(only in the run's)"
            if key not in given
            else f"{json.dumps(loaded[key])} -> {json.dumps(given[key])}"
        )
        for key in sorted(given.keys() | loaded.keys())
        if given.get(key, ...) != loaded.get(key, ...)
    ]
    if differences:
        shown = "; ".join(differences[:5]) + (
            f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        )
        raise ConfigurationError(
            f"--recover: the config differs from the one the run in {serialization_dir} started "
            f"with (its config.json): {shown}. Recover with the same config and variables as the "
            "interrupted run, or give a new -s directory"
        )


# what `allennlp train` writes in the serialization directory before the first optimizer step,
# `config.json` first (`log`: the TensorBoard callback's event files; a run killed after steps
# but before its first checkpoint leaves nothing else, and nothing to recover from)
_WRITTEN_BEFORE_TRAINING = {"config.json", "meta.json", "out.log", "vocabulary", "log"}


def _patch_user_error_output() -> None:
    """
    AllenNLP (from `prepare_global_logging` on) logs every uncaught exception with its traceback
    to the console, so a configuration mistake or a bad input line (`ConfigurationError`, the
    plugin's `DataError`), whose message already says what to fix, came out buried in a
    20-frame traceback. For those two, and for a `ProcessFailed` (a phase of `allennlp adapt`
    that failed: its message holds what the phase's process said), the console gets one line,
    plus the path of the log file that holds the traceback; every other exception is reported
    as before.
    """
    from allennlp.common import logging as common_logging

    original = common_logging.prepare_global_logging

    @functools.wraps(original)
    def prepare_global_logging(*args, **kwargs) -> None:
        original(*args, **kwargs)
        sys.excepthook = functools.partial(_report_user_errors, sys.excepthook)

    common_logging.prepare_global_logging = prepare_global_logging
    sys.excepthook = functools.partial(_report_user_errors, sys.excepthook)


def _report_user_errors(fallback, exctype, value, traceback) -> None:
    from allennlp.common.checks import ConfigurationError

    from dapt_plugin.common.launch import ProcessFailed
    from dapt_plugin.data.text_files import DataError

    if not issubclass(exctype, (ConfigurationError, DataError, ProcessFailed)):
        fallback(exctype, value, traceback)
        return
    log_files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    record = logging.LogRecord(
        __name__,
        logging.CRITICAL,
        __file__,
        0,
        "Uncaught exception",
        None,
        (exctype, value, traceback),
    )
    for handler in log_files:
        handler.handle(record)
    # a failed phase's message says where its own traceback is; this process's says nothing
    where = (
        f" (traceback in {', '.join(h.baseFilename for h in log_files)})"
        if log_files and not issubclass(exctype, ProcessFailed)
        else ""
    )
    sys.stderr.write(f"Error: {value}{where}\n")


def _jsonnet_library():
    """
    go-jsonnet's module, unless this process was forked from one that had loaded it: the C++
    library's then.

    Go's runtime starts with the module and does not survive a fork: a call into it from a
    forked child (a forkserver's child, which `allennlp adapt` starts its phases with) never
    returns. The module is loaded at the first evaluation, not at import (the forkserver imports
    the plugin and evaluates nothing), and a process forked after it was loaded evaluates with
    the C++ library, which gives the same output (`tests/test_compat.py`).
    """
    if _go_jsonnet_usable:
        import _gojsonnet

        return _gojsonnet
    import _jsonnet

    return _jsonnet


def _after_fork_in_child() -> None:
    global _go_jsonnet_usable
    _go_jsonnet_usable = _go_jsonnet_usable and "_gojsonnet" not in sys.modules


# False in a process forked from one that had loaded go-jsonnet
_go_jsonnet_usable = True


def _patch_go_jsonnet() -> None:
    """
    allennlp evaluates configs with the C++ jsonnet library, which parses and analyses its
    standard library again for every file a config imports: ~0.13 s for a config of the plugin
    (it imports six `lib/*.libsonnet`), paid by every `allennlp train` and up to 35 times by
    `allennlp adapt` before it starts. go-jsonnet (`gojsonnet`, the reference implementation,
    the same language and the same output) evaluates the same config in ~4 ms; allennlp's
    `evaluate_file` and `evaluate_snippet` use it wherever it can run (`_jsonnet_library`),
    before `_patch_jsonnet_errors` wraps the first.
    """
    from allennlp.common import params

    def evaluate_file(filename: str, **kwargs) -> str:
        return _jsonnet_library().evaluate_file(filename, **kwargs)

    def evaluate_snippet(filename: str, expr: str, **kwargs) -> str:
        return _jsonnet_library().evaluate_snippet(filename, expr, **kwargs)

    params.evaluate_file = evaluate_file
    params.evaluate_snippet = evaluate_snippet
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _patch_jsonnet_errors() -> None:
    """
    The jsonnet library reports an error in a config (an unset required variable, a value the
    config refuses, a syntax error) as `RuntimeError("RUNTIME ERROR: <message>\\n<jsonnet stack>")`,
    which `allennlp train` showed as a Python traceback. It is raised as a `ConfigurationError`
    naming the config and the message (the jsonnet stack stays in the exception's cause); so is
    an error in the overrides (`-o`), and a config file that is not there (`cached_path`'s
    `FileNotFoundError`).
    Before a config of the plugin is evaluated, an environment variable that it does not read
    but that is the old name of one it does (`SAMPLE`, now `TRAIN_SAMPLE`) or looks like a
    misspelling of one is refused (`check_environment`): jsonnet would silently use the default.
    `TASK=chemprot` becomes the task's TRAIN_PATH, DEV_PATH and TEST_PATH (`with_task_files`).
    """
    from allennlp.common import params

    from dapt_plugin.common.config_variables import (
        ENV_EXT_VAR,
        check_environment,
        with_task_files,
    )

    original = params.evaluate_file

    @functools.wraps(original)
    def evaluate_file(filename: str, **kwargs) -> str:
        ext_vars = kwargs.get("ext_vars") or {}
        # the environment the config reads (`resolve_config` may leave out some of the process's)
        check_environment(
            filename, json.loads(ext_vars[ENV_EXT_VAR]) if ENV_EXT_VAR in ext_vars else ext_vars
        )
        kwargs["ext_vars"] = with_task_files(filename, ext_vars)
        try:
            return original(filename, **kwargs)
        except RuntimeError as error:
            raise ConfigurationError(f"{filename}: {_jsonnet_message(error)}") from error

    original_snippet = params.evaluate_snippet

    @functools.wraps(original_snippet)
    def evaluate_snippet(filename: str, expr: str, **kwargs) -> str:
        try:
            return original_snippet(filename, expr, **kwargs)
        except RuntimeError as error:
            raise ConfigurationError(
                f"the overrides (-o) {expr!r}: {_jsonnet_message(error)}"
            ) from error

    original_from_file = params.Params.from_file.__func__

    @functools.wraps(original_from_file)
    def from_file(cls, params_file, *args, **kwargs) -> params.Params:
        path = os.path.expanduser(os.fspath(params_file))  # as `cached_path` reads it
        if "://" not in path and not os.path.isfile(path):
            what = "is a directory" if os.path.isdir(path) else "not found"
            raise ConfigurationError(
                f"config {path} {what}; give a jsonnet or JSON file, e.g. "
                "training_config/dapt.jsonnet"
            )
        return original_from_file(cls, params_file, *args, **kwargs)

    params.evaluate_file = evaluate_file
    params.evaluate_snippet = evaluate_snippet
    params.Params.from_file = classmethod(from_file)


def _jsonnet_message(error: RuntimeError) -> str:
    """The first line of a jsonnet error, without its "RUNTIME ERROR: " or "STATIC ERROR: "."""
    return re.sub(r"^(RUNTIME|STATIC) ERROR: ", "", str(error).split("\n")[0])


def _patch_environment_variables() -> None:
    """
    Jsonnet's `std.extVar` fails on any unset variable and has no default, so a config that reads
    its sizes from the environment would need every one of them set. allennlp hands the
    environment to jsonnet as external variables; one more, `DAPT_PLUGIN_ENV`, holds the whole
    environment as a JSON object, which `training_config/lib/env.libsonnet` reads to give defaults
    and to name a missing required variable in its error.
    """
    from allennlp.common import params

    from dapt_plugin.common.config_variables import ENV_EXT_VAR

    original = params._environment_variables

    @functools.wraps(original)
    def environment_variables() -> Dict[str, str]:
        variables = original()
        variables[ENV_EXT_VAR] = json.dumps(variables)
        return variables

    params._environment_variables = environment_variables


def _patch_quiet_console() -> None:
    """
    AllenNLP logs everything at INFO to the console as well as to `out.log`: a tiny classifier
    run printed 370 lines, 159 of them config parameters (`allennlp.common.params`), every
    parameter name twice and a tensor dump of the first batch; a kNN selection adds faiss's 8
    loader lines. From `prepare_global_logging` on, and before it from the
    plugin's import on (the handler of `allennlp`'s `logging.basicConfig`, the only one of
    `evaluate`, `predict` and `adapt`), the console handlers leave those records to the log files
    (`dapt_plugin.common.console`).
    """
    from allennlp.common import logging as common_logging

    from dapt_plugin.common.console import quiet_console

    quiet_console()
    if getattr(common_logging.prepare_global_logging, "_dapt_plugin_quiet_console", False):
        return
    original = common_logging.prepare_global_logging

    @functools.wraps(original)
    def prepare_global_logging(*args, **kwargs) -> None:
        original(*args, **kwargs)
        quiet_console()

    prepare_global_logging._dapt_plugin_quiet_console = True  # type: ignore[attr-defined]
    common_logging.prepare_global_logging = prepare_global_logging


def _patch_amp_deprecation() -> None:
    """
    allennlp's trainer enters `torch.cuda.amp.autocast(use_amp)` around every forward pass (and
    builds `torch.cuda.amp.GradScaler()` under `use_amp`, as its DDP accelerator does), which torch
    2.4 deprecated: every run, on CPU too, printed "FutureWarning: `torch.cuda.amp.autocast(args...)`
    is deprecated" with a line of allennlp's source, which no user can act on. Those modules get
    the same objects from `torch.amp`, which do not warn.
    """
    import types

    from allennlp.nn.parallel import ddp_accelerator
    from allennlp.training import gradient_descent_trainer

    if isinstance(gradient_descent_trainer.amp, types.SimpleNamespace):
        return

    class GradScaler(torch.amp.GradScaler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__("cuda", *args, **kwargs)

    def autocast(
        enabled: bool = True, dtype: torch.dtype = torch.float16, cache_enabled: bool = True
    ):
        return torch.amp.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    gradient_descent_trainer.amp = ddp_accelerator.amp = types.SimpleNamespace(
        autocast=autocast, GradScaler=GradScaler
    )


def _patch_trainer_device_errors() -> None:
    """
    `use_amp` (`USE_AMP=true`) on the CPU stopped with AllenNLP's `ValueError: Using AMP requires a
    cuda device` in a traceback; it is a `ConfigurationError` that names the variable. A GPU that
    the machine lacks (`CUDA_DEVICES=0` on the CPU) was refused with a hint at
    `trainer.cuda_device=-1` "in the json config file", which the plugin's configs set from
    `CUDA_DEVICES`; the message names the variable.
    """
    from allennlp.training.gradient_descent_trainer import GradientDescentTrainer

    def missing_gpu(error: ConfigurationError, device) -> ConfigurationError:
        if not error.message.startswith("Experiment specified"):
            return error
        return ConfigurationError(
            f"`trainer.cuda_device` (CUDA_DEVICES in the configs) names GPU {device}, but this "
            f"machine has {torch.cuda.device_count()} visible GPU(s); set CUDA_DEVICES=-1 to "
            "train on the CPU, or name a visible GPU"
        )

    original = GradientDescentTrainer.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs) -> None:
        try:
            original(self, *args, **kwargs)
        except ValueError as error:
            if str(error) != "Using AMP requires a cuda device":
                raise
            raise ConfigurationError(
                "`use_amp` (USE_AMP=true) needs a CUDA GPU, but the trainer runs on the CPU; "
                "set USE_AMP=false, or train on a GPU (CUDA_DEVICES)"
            ) from None
        except ConfigurationError as error:
            raise missing_gpu(error, kwargs.get("cuda_device")) from None

    # a trainer built from a config checks its device here, before `__init__`
    original_partial = GradientDescentTrainer.from_partial_objects.__func__

    @functools.wraps(original_partial)
    def from_partial_objects(cls, *args, **kwargs):
        try:
            return original_partial(cls, *args, **kwargs)
        except ConfigurationError as error:
            raise missing_gpu(error, kwargs.get("cuda_device")) from None

    GradientDescentTrainer.__init__ = __init__
    GradientDescentTrainer.from_partial_objects = classmethod(from_partial_objects)


class _UnusedPoolerFilter(logging.Filter):
    """
    Drops transformers' "Some weights ... newly initialized" and "Some weights of the model
    checkpoint ... were not used" warnings when the weights are all a pooler's.
    """

    _POOLER_WEIGHTS = re.compile(
        r"(?:were not initialized from the model checkpoint at .* and are newly initialized"
        r"|were not used when initializing \w+): (\[[^\]]*\])",
        re.DOTALL,
    )

    def filter(self, record: logging.LogRecord) -> bool:
        import ast

        match = self._POOLER_WEIGHTS.search(str(record.msg))
        if match is None:
            return True
        try:
            names = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return True
        return not names or not all(re.search(r"(^|\.)pooler\.", name) for name in names)


def _quiet_unused_pooler_warning() -> None:
    """
    The classifier's encoder is loaded with transformers' `AutoModel`, which for RoBERTa, BERT
    and others adds a pooler that a masked-LM checkpoint (such as a DAPT/TAPT export of a
    checkpoint without one) does not have, and every classifier run warned "Some weights of
    RobertaModel were not initialized from the model checkpoint ... newly initialized:
    ['roberta.pooler.dense.bias', 'roberta.pooler.dense.weight'] You should probably TRAIN this
    model". The classifier's default head pools the first token's vector itself and never uses
    that pooler (`CLASSIFIER_HEAD=bert` starts its tanh layer from it: at random then, as
    `BertForSequenceClassification` does, see docs/configuration.md), so nothing is to be done:
    the warning is left out when every newly initialized weight is a pooler's. Any other missing
    weight is still reported. So is any unused weight of a checkpoint but a pooler's, which a
    masked-LM model (DAPT/TAPT from a BERT checkpoint) has no use for: "were not used when
    initializing BertForMaskedLM: ['bert.pooler.dense.bias', ...]" is left out too.
    """
    modeling_logger = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _UnusedPoolerFilter) for f in modeling_logger.filters):
        modeling_logger.addFilter(_UnusedPoolerFilter())


def _patch_distributed_workers() -> None:
    """
    A distributed `allennlp train` (`CUDA_DEVICES` of several devices, or `NUM_NODES`) trains in
    worker processes it spawns, which outlived the command: on SIGTERM (`kill PID`, or a phase
    of `allennlp adapt` whose caller was killed) it waited for them at exit while they trained
    on, and a SIGKILL (the OOM killer, `kill -9`) left them training where the caller had ignored
    SIGINT (PyTorch's signal to them when their parent dies; a command started in the background
    by a script ignores it), writing checkpoints where `--recover`, or a rerun of `allennlp
    adapt`, then resumed beside them. Now the command stops its workers when it is interrupted,
    and each worker ends with the command's process (`launch.end_with_the_caller`) and holds the
    lock that process holds as a phase of `allennlp adapt` (`launch.hold_inherited_lock`), so that
    a rerun waits for the workers too.
    """
    import types

    from allennlp.commands import train

    global _allennlp_train_worker
    _allennlp_train_worker = train._train_worker
    train._train_worker = _train_worker
    train.mp = types.SimpleNamespace(spawn=_spawn_stopping_workers)  # its only use of `mp`


def _spawn_stopping_workers(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """
    `torch.multiprocessing.spawn`, which stops the processes it started when its wait for them is
    interrupted (SIGTERM, which allennlp's handler turns into an exception, or Ctrl-C): SIGTERM
    first, then, after 30 seconds, SIGKILL.
    """
    context = torch.multiprocessing.start_processes(
        fn, args, nprocs, join=False, daemon=daemon, start_method=start_method
    )
    if not join:
        return context
    try:
        while not context.join():
            pass
    except BaseException:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 30
        for process in context.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        raise
    return None


_allennlp_train_worker: Optional[Callable[..., Any]] = None


def _train_worker(process_rank: int, *args, **kwargs) -> Any:
    """
    AllenNLP's `_train_worker`; in a distributed run (`world_size` above 1), whose every worker
    `train_model` spawns, after setting the worker up to end with the command's process, and
    followed by the end of the process group it joined.

    AllenNLP never ends the process group it starts: a CPU (gloo) worker then exited with it
    alive, and gloo's threads, which still held tensors of finished collectives, released them
    while the interpreter was being torn down, which now and then aborted the worker (SIGABRT)
    after a run that had succeeded, failing the command. It is ended after a worker's success
    only: a failed worker's peers may still wait in a collective, where ending the group can
    hang (NCCL), and the command fails anyway.
    """
    from dapt_plugin.common.launch import end_with_the_caller, hold_inherited_lock

    call = inspect.signature(_allennlp_train_worker).bind(process_rank, *args, **kwargs)
    distributed = call.arguments.get("world_size", 1) > 1
    if distributed:
        end_with_the_caller()
        hold_inherited_lock()
    result = _allennlp_train_worker(process_rank, *args, **kwargs)
    if distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return result


def _patch_archive_loading() -> None:
    """
    `load_archive` (`allennlp evaluate`, `allennlp predict`, `export-classifier`):

    - given a path that is not there, a file that is not a `model.tar.gz` or is cut short, or a
      directory that is not a run's (a Hugging Face model directory such as `exported_model`,
      say), it stopped with a traceback from `cached_path`, `tarfile`, `Params.from_file` or the
      dataset reader's loading; each is now a `ConfigurationError` that names the path.
    - it extracts a `model.tar.gz` to a temporary directory and removes that when it is done, so
      a process killed while loading (a kill, an `allennlp adapt` stopped during a classifier's
      test evaluation) left the copy behind for good: config, vocabulary and weights, ~500 MB
      for roberta-base, each time. It now extracts to an `atomic.scratch_directory`, which the
      next load removes once its process has gone.

    URLs are left to `cached_path` and AllenNLP's extraction.
    """
    import tarfile
    import zlib

    import allennlp.models as models
    from allennlp.commands import evaluate, predict
    from allennlp.models import archival
    from allennlp.predictors import predictor

    from dapt_plugin.common.atomic import scratch_directory

    original = archival.load_archive

    @functools.wraps(original)
    def load_archive(archive_file, *args, **kwargs) -> archival.Archive:
        path = os.fspath(archive_file)
        give = "give the model.tar.gz of a run, or its serialization directory"
        if "://" in path:
            return original(archive_file, *args, **kwargs)
        if not os.path.exists(path):
            raise ConfigurationError(f"archive {path} not found; {give}")
        if os.path.isdir(path):
            _check_run_directory(path, give)
            return original(archive_file, *args, **kwargs)
        damaged = (EOFError, tarfile.TarError, zlib.error)
        try:  # `is_tarfile` reads the first member: an archive cut within it fails here
            if not tarfile.is_tarfile(path):
                raise ConfigurationError(f"{path} is not a tar archive; {give}")
            with scratch_directory("archive") as extracted:
                logging.getLogger(__name__).info("Extracting %s to %s", path, extracted)
                with tarfile.open(path, "r:gz") as archive:
                    archive.extractall(extracted)
                return original(extracted, *args, **kwargs)
        except damaged as error:
            raise ConfigurationError(
                f"{path} is damaged or cut short ({error}); archive the run again, or copy "
                "the archive again"
            ) from error

    for module in (archival, models, evaluate, predict, predictor):
        module.load_archive = load_archive


def _check_run_directory(path: str, give: str) -> None:
    """Refuses a directory given as an archive that is not a serialization directory."""
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        raise ConfigurationError(f"{path} holds no config.json: not a run's directory; {give}")
    try:
        with open(config, encoding="utf-8") as handle:
            keys = json.load(handle)
    except (ValueError, UnicodeDecodeError):
        keys = {}
    if not isinstance(keys, dict):
        keys = {}
    if "model" not in keys:
        what = "a Hugging Face model directory" if "model_type" in keys else "not a run's directory"
        raise ConfigurationError(f"{path} is {what} (its config.json has no `model`); {give}")


def _patch_evaluate_outputs() -> None:
    """
    `allennlp evaluate` found that its `--output-file` or `--predictions-output-file` could not
    be written (a directory, a path through a file, a folder that does not exist) only when it
    wrote it, after the whole evaluation, with a traceback; it wrote both in place, so a run that
    failed or was killed halfway left a short predictions file under its name, and a predictions
    file that was the input file emptied it before it was read. Each path they name (one per
    input file, separated by commas, or the names `--auto-names` makes) is checked before the
    archive is loaded, and one that is an input file, the model or another output is refused;
    both files are written as `predict`'s output is (`output_path`: whole or not at all, a
    missing folder created), those of all the inputs when the last input is done. An input file
    whose name holds a comma is read as one file, as the plugin's readers read it, not split
    into two missing ones. Without `--output-file`, the final metrics are logged (AllenNLP
    logged them only as it wrote that file: the console showed none).
    """
    from allennlp.commands import evaluate
    from allennlp.common.util import dump_metrics
    from allennlp.evaluation.evaluator import SimpleEvaluator

    from dapt_plugin.common.atomic import (
        check_not_an_input,
        check_writable_path,
        output_path,
        written_in_place,
    )

    original = evaluate.evaluate_from_archive
    original_call = SimpleEvaluator.__call__

    # this thread's `evaluate` under way: the outputs of its inputs, committed together, in
    # their order, when the last input is done
    under_way = threading.local()

    @functools.wraps(original)
    def evaluate_from_archive(
        archive_file, input_file, metrics_output_file=None, predictions_output_file=None, **kwargs
    ) -> Dict[str, Any]:
        if "," in input_file and os.path.isfile(input_file):
            # one file whose name holds a comma, which AllenNLP would split: a JSON string, which
            # it reads as a list of one path
            input_file = json.dumps(input_file)
        try:  # as AllenNLP splits it
            inputs = json.loads(f"[{input_file}]")
        except json.JSONDecodeError:
            inputs = input_file.split(",")
        check_cuda_device(kwargs.get("cuda_device"))
        auto_names = kwargs.get("auto_names", "NONE")
        named = []
        for option, paths, made, suffix in [
            ("--output-file", metrics_output_file, "METRICS", "outputs"),
            ("--predictions-output-file", predictions_output_file, "PREDS", "preds"),
        ]:
            if paths is None:
                continue
            if auto_names in (made, "ALL"):  # AllenNLP's names, beside each input
                given = [
                    os.path.join(os.path.dirname(path), f"{Path(path).stem}.{suffix}")
                    for path in inputs
                    if isinstance(path, str)
                ]
            else:
                given = paths.split(",")
                if len(given) != len(inputs):
                    raise ConfigurationError(
                        f"{option} names {len(given)} file(s) for {len(inputs)} input file(s); "
                        "give one for each input, separated by commas"
                    )
            named += [(option, path) for path in given]
        read = [("the input file", path) for path in inputs if isinstance(path, str)]
        read += _model_files(archive_file, kwargs.get("weights_file"))
        for option, path in named:
            check_writable_path(path, "file")
            check_not_an_input(path, option, read)
        for (option, path), (other, later) in itertools.combinations(named, 2):
            if os.path.realpath(path) == os.path.realpath(later) and not written_in_place(path):
                raise ConfigurationError(
                    f"{option} {path} and {other} {later} are one file, where one output would "
                    "replace the other; give a file for each"
                )
        # each output is committed, or removed after a failure, whatever the others do; the
        # stack exits them last in, first out, so they are pushed in reverse
        with contextlib.ExitStack() as committing:
            under_way.outputs = outputs = []
            try:
                return original(
                    archive_file, input_file, metrics_output_file, predictions_output_file, **kwargs
                )
            finally:
                under_way.outputs = None
                for output in reversed(outputs):
                    committing.push(output)

    @functools.wraps(original_call)
    def __call__(
        self,
        model,
        data_loader,
        batch_weight_key=None,
        metrics_output_file=None,
        predictions_output_file=None,
    ) -> Dict[str, Any]:
        # `evaluate`'s outputs are committed when it is done; any other caller's when this is
        deferred = getattr(under_way, "outputs", None)
        with contextlib.ExitStack() as own:
            names = []
            for path in (metrics_output_file, predictions_output_file):
                if path is None:
                    names.append(None)
                    continue
                output = output_path(path)
                names.append(output.__enter__())
                (own.push if deferred is None else deferred.append)(output)
            metrics = original_call(self, model, data_loader, batch_weight_key, *names)
        if deferred is not None and metrics_output_file is None:
            # AllenNLP shows `evaluate`'s metrics only as it writes them
            dump_metrics(None, metrics, log=True)
        return metrics

    evaluate.evaluate_from_archive = evaluate_from_archive
    SimpleEvaluator.__call__ = __call__


def _patch_predict_files() -> None:
    """
    `allennlp predict` opened `--output-file` for writing before reading its input, so an output
    that is the input file emptied it, and wrote the predictions in place, so a run that failed
    or was killed halfway left a short file under the output's name; a missing input file and a
    bad input line (not JSON, not UTF-8, or refused by the predictor's `load_line`) stopped it
    with a traceback, the second naming neither the file nor the line (the plugin's readers'
    checks of a line, `decoded_lines`, now apply to it).
    An output that is the input or the model (which it overwrote), a directory or under a file,
    a missing input file and a GPU the machine lacks are refused before anything is opened; the
    predictions are written as `atomic.output_path` writes an output (whole, or not at all); a
    bad line raises a `DataError` naming the file and the line, standard input's too.
    """
    from allennlp.commands import predict
    from allennlp.predictors import Predictor

    from dapt_plugin.common.atomic import check_not_an_input, check_writable_path, output_path
    from dapt_plugin.data.documents import invalid_json
    from dapt_plugin.data.text_files import DataError, decoded_lines

    manager = predict._PredictManager
    original_init, original_data, original_run = (
        manager.__init__,
        manager._get_json_data,
        manager.run,
    )
    original_predictor = predict._get_predictor

    @functools.wraps(original_predictor)
    def _get_predictor(args):
        # before the archive is loaded: the GPU, and an output that would replace the model
        check_cuda_device(args.cuda_device)
        if args.output_file is not None:
            check_writable_path(args.output_file, "file")
            check_not_an_input(
                args.output_file,
                "--output-file",
                _model_files(args.archive_file, args.weights_file),
            )
        return original_predictor(args)

    @functools.wraps(original_init)
    def __init__(
        self,
        predictor,
        input_file,
        output_file,
        batch_size,
        print_to_console,
        has_dataset_reader,
        *args,
        **kwargs,
    ) -> None:
        if type(predictor) is Predictor and not has_dataset_reader:
            raise ConfigurationError(
                f"the archive's model ({type(predictor._model).__name__}) has no predictor to "
                "read JSON lines: `allennlp predict` runs a classifier's archive "
                "(classifier.jsonnet); measure a masked-LM archive with `allennlp evaluate` on "
                "held-out text"
            )
        if batch_size < 1:
            raise ConfigurationError(f"--batch-size must be 1 or more; got {batch_size}")
        # (a dataset reader reads its own paths: globs, lists)
        if not has_dataset_reader and input_file != "-" and "://" not in input_file:
            if not os.path.exists(input_file):
                raise ConfigurationError(f"input file {input_file} not found")
        if output_file is not None:
            check_writable_path(output_file, "file")
            # (`file://` is a path too, to AllenNLP's `cached_path`)
            what, read = "the input file", re.sub(r"^file://", "", input_file)
            if input_file == "-":  # standard input, which may be redirected from a file
                what = "the file of standard input,"
                read = os.path.realpath(f"/proc/self/fd/{_stdin_descriptor()}")
            if os.path.isfile(read):
                check_not_an_input(output_file, "--output-file", [(what, read)])
        # opened by `run`, under a temporary name
        original_init(
            self,
            predictor,
            input_file,
            None,
            batch_size,
            print_to_console,
            has_dataset_reader,
            *args,
            **kwargs,
        )
        self._output_path = output_file

    @functools.wraps(original_run)
    def run(self) -> None:
        if self._output_path is None:
            original_run(self)
            return
        with output_path(self._output_path) as path:
            with open(path, "w", encoding="utf-8") as self._output_file:
                original_run(self)  # closes the file when every prediction is written

    @functools.wraps(original_data)
    def _get_json_data(self):
        from allennlp.common.file_utils import cached_path, open_compressed

        # the plugin's line reading (UTF-8, NUL bytes, BOM, CRLF, each named by file and line),
        # over AllenNLP's opening of the file (a URL, .gz, .bz2 or .xz) or standard input (`-`)
        if self._input_file == "-":
            name, opened = "standard input", contextlib.nullcontext(sys.stdin.buffer)
        else:
            name = self._input_file
            opened = open_compressed(cached_path(self._input_file), "rb", encoding=None)
        with opened as handle:
            for number, line in decoded_lines(name, handle):
                if not line.strip():
                    continue
                try:
                    item = self._predictor.load_line(line)
                except json.JSONDecodeError as error:
                    raise invalid_json(name, number, error) from None
                except DataError as error:  # the predictor's own check of the line
                    raise DataError(name, number, error.message) from None
                yield item

    manager.__init__ = __init__
    manager._get_json_data = _get_json_data
    manager.run = run
    predict._get_predictor = _get_predictor


def _stdin_descriptor() -> int:
    """The descriptor of standard input (0 where `sys.stdin` has none, as under pytest)."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return 0


def _model_files(archive_file, weights_file: Optional[str]) -> List[Tuple[str, str]]:
    """The model files that `predict` or `evaluate` reads, as `check_not_an_input` takes them."""
    files = [("the model archive", os.fspath(archive_file))]
    if weights_file:
        files.append(("the weights file", os.fspath(weights_file)))
    return files


def check_cuda_device(device: Union[int, str, None]) -> None:
    """
    Refuses `--cuda-device` naming a GPU the machine lacks, before anything is loaded: AllenNLP
    gave a hint at `trainer.cuda_device`, or a traceback ("Found no NVIDIA driver"); and a
    negative number other than -1, which AllenNLP took for the CPU.
    """
    try:
        index = int(device) if device is not None else -1
    except ValueError:
        return  # a device name such as "cuda:0": left to torch
    if index < -1:
        raise ConfigurationError(
            f"--cuda-device {index} names no device; give -1 for the CPU, or a GPU's number "
            "(0, 1, ...)"
        )
    visible = torch.cuda.device_count()
    if index >= visible:
        raise ConfigurationError(
            f"--cuda-device {index} names a GPU, but this machine has {visible} visible GPU(s); "
            "give --cuda-device -1 to run on the CPU"
        )


def apply_patches() -> None:
    """Applies every patch of this module, once per process."""
    global _applied
    if _applied:
        return
    _applied = True
    _patch_transformer_loading()
    _patch_adamw_kernels()
    _patch_atomic_outputs()
    _patch_archive_compression()
    _patch_reusable_serialization_dir()
    _patch_user_error_output()
    _patch_go_jsonnet()
    _patch_jsonnet_errors()
    _patch_quiet_console()
    _patch_amp_deprecation()
    _patch_trainer_device_errors()
    _quiet_unused_pooler_warning()
    _patch_self_contained_archives()  # after the atomic archive_model, which it calls
    _patch_environment_variables()
    _patch_distributed_workers()
    _patch_archive_loading()
    _patch_evaluate_outputs()
    _patch_predict_files()
