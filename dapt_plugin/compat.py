"""
Patches that let allennlp 2.10.1 (its last release, which pins torch<1.13 and transformers<4.21)
run on the stack in `requirements.txt` (torch 2.x, transformers 4.4x, Python 3.11).

Every patch is applied once, when `dapt_plugin` is imported, and each says what breaks without it.
Nothing here changes behaviour on a stack where the patch is not needed.
"""
import functools
import json
import logging
import os
import re
import shutil
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch
import transformers
from allennlp.common import cached_transformers
from allennlp.common.checks import ConfigurationError


def _patch_get_tokenizer() -> None:
    """
    allennlp's `PretrainedTransformerTokenizer` (also used inside the `pretrained_transformer`
    token indexer) loads its tokenizer with
    `cached_transformers.get_tokenizer(name, add_special_tokens=...)`, which forwards the flag to
    `AutoTokenizer.from_pretrained` as an init argument. transformers (4.49 here) rejects init
    arguments named like a tokenizer method, so building any `pretrained_transformer` tokenizer
    or indexer fails with "AttributeError: add_special_tokens conflicts with the method
    add_special_tokens in RobertaTokenizerFast". The flag never belonged in `from_pretrained`:
    allennlp passes `add_special_tokens` again on every call that encodes text, so the patch
    drops it there.
    """
    original = cached_transformers.get_tokenizer
    if getattr(original, "_dapt_plugin_patched", False):
        return

    @functools.wraps(original)
    def get_tokenizer(model_name: str, **kwargs) -> transformers.PreTrainedTokenizer:
        kwargs.pop("add_special_tokens", None)
        return original(model_name, **kwargs)

    get_tokenizer._dapt_plugin_patched = True  # type: ignore[attr-defined]
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

    if getattr(AdamWOptimizer.__init__, "_dapt_plugin_patched", False):
        return

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
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, foreach=foreach, fused=fused,
        )

    __init__._dapt_plugin_patched = True  # type: ignore[attr-defined]
    AdamWOptimizer.__init__ = __init__


def _patch_atomic_outputs() -> None:
    """
    AllenNLP writes `metrics.json`, `metrics_epoch_<N>.json` (`common.util.dump_metrics`) and
    `model.tar.gz` (`models.archival.archive_model`) in place, so a run killed while writing one
    leaves a truncated file under the final name: `allennlp adapt` then took the phase as done
    and every re-run died with "tarfile.ReadError: empty file", naming no file. The patches
    write each to a temporary name beside it and rename it into place.
    """
    import allennlp.commands.train as train_command
    import allennlp.models as models
    from allennlp.common import util as common_util
    from allennlp.models import archival

    from dapt_plugin.common.atomic import atomic_file, temporary_path

    if getattr(archival.archive_model, "_dapt_plugin_patched", False):
        return
    original_archive_model = archival.archive_model

    @functools.wraps(original_archive_model)
    def archive_model(serialization_dir, weights=archival._DEFAULT_WEIGHTS, archive_path=None,
                      include_in_archive=None) -> str:
        if archive_path is None:
            target = os.path.join(serialization_dir, "model.tar.gz")
        elif os.path.isdir(archive_path):
            target = os.path.join(archive_path, "model.tar.gz")
        else:
            target = os.fspath(archive_path)
        tmp = temporary_path(target)
        try:
            original_archive_model(serialization_dir, weights, tmp, include_in_archive)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return target

    def dump_metrics(file_path: Optional[str], metrics: Dict[str, Any], log: bool = False) -> None:
        metrics_json = json.dumps(metrics, indent=2)
        if file_path:
            with atomic_file(file_path) as handle:
                handle.write(metrics_json)
        if log:
            common_util.logger.info("Metrics: %s", metrics_json)

    archive_model._dapt_plugin_patched = True  # type: ignore[attr-defined]
    archival.archive_model = models.archive_model = train_command.archive_model = archive_model
    common_util.dump_metrics = dump_metrics


def _patch_reusable_serialization_dir() -> None:
    """
    `allennlp train` refuses a serialization directory that is not empty unless `--recover` is
    given, and a run that failed before training (bad data, a bad variable found while the
    model or the data loader is built) has already written its config and log there: after
    fixing the input, the same command failed with "already exists and is not empty". A
    directory that holds only what such a run writes (no checkpoint, weights, metrics or
    archive) is emptied and used as new; anything else is refused as before.
    """
    from allennlp.training import util as training_util

    if getattr(training_util.create_serialization_dir, "_dapt_plugin_patched", False):
        return
    original = training_util.create_serialization_dir

    @functools.wraps(original)
    def create_serialization_dir(params, serialization_dir, recover: bool, force: bool) -> None:
        if not recover and not force and os.path.isdir(serialization_dir):
            names = set(os.listdir(serialization_dir))
            if names and names <= _WRITTEN_BEFORE_TRAINING:
                logging.getLogger(__name__).info(
                    "%s holds only the config and logs of a run that stopped before training; "
                    "starting over in it", serialization_dir)
                shutil.rmtree(serialization_dir)
        original(params, serialization_dir, recover, force)

    create_serialization_dir._dapt_plugin_patched = True  # type: ignore[attr-defined]
    training_util.create_serialization_dir = create_serialization_dir


# what `allennlp train` writes in the serialization directory before the first optimizer step
_WRITTEN_BEFORE_TRAINING = {"config.json", "meta.json", "out.log", "vocabulary"}


def _patch_user_error_output() -> None:
    """
    AllenNLP (from `prepare_global_logging` on) logs every uncaught exception with its traceback
    to the console, so a configuration mistake or a bad input line (`ConfigurationError`, the
    plugin's `DataError`), whose message already says what to fix, came out buried in a
    20-frame traceback. For those two, the console gets one line, plus the path of the log
    file that holds the traceback; every other exception is reported as before.
    """
    from allennlp.common import logging as common_logging

    if getattr(common_logging.prepare_global_logging, "_dapt_plugin_patched", False):
        return
    original = common_logging.prepare_global_logging

    @functools.wraps(original)
    def prepare_global_logging(*args, **kwargs) -> None:
        original(*args, **kwargs)
        sys.excepthook = functools.partial(_report_user_errors, sys.excepthook)

    prepare_global_logging._dapt_plugin_patched = True  # type: ignore[attr-defined]
    common_logging.prepare_global_logging = prepare_global_logging
    sys.excepthook = functools.partial(_report_user_errors, sys.excepthook)


def _report_user_errors(fallback, exctype, value, traceback) -> None:
    from allennlp.common.checks import ConfigurationError

    from dapt_plugin.data.text_files import DataError

    if not issubclass(exctype, (ConfigurationError, DataError)):
        fallback(exctype, value, traceback)
        return
    log_files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    record = logging.LogRecord(__name__, logging.CRITICAL, __file__, 0, "Uncaught exception", None,
                               (exctype, value, traceback))
    for handler in log_files:
        handler.handle(record)
    where = f" (traceback in {', '.join(h.baseFilename for h in log_files)})" if log_files else ""
    sys.stderr.write(f"Error: {value}{where}\n")


def _patch_jsonnet_errors() -> None:
    """
    The jsonnet library reports an error in a config (an unset required variable, a value the
    config refuses, a syntax error) as `RuntimeError("RUNTIME ERROR: <message>\\n<jsonnet stack>")`,
    which `allennlp train` showed as a Python traceback. It is raised as a `ConfigurationError`
    naming the config and the message (the jsonnet stack stays in the exception's cause).
    Before a config of the plugin is evaluated, an environment variable that it does not read
    but that looks like a misspelling of one it does is refused (`check_environment`): jsonnet
    would silently use the default.
    """
    from allennlp.common import params

    from dapt_plugin.common.config_variables import check_environment

    if getattr(params.evaluate_file, "_dapt_plugin_patched", False):
        return
    original = params.evaluate_file

    @functools.wraps(original)
    def evaluate_file(filename: str, **kwargs) -> str:
        check_environment(filename, kwargs.get("ext_vars") or {})
        try:
            return original(filename, **kwargs)
        except RuntimeError as error:
            message = re.sub(r"^(RUNTIME|STATIC) ERROR: ", "", str(error).split("\n")[0])
            raise ConfigurationError(f"{filename}: {message}") from error

    evaluate_file._dapt_plugin_patched = True  # type: ignore[attr-defined]
    params.evaluate_file = evaluate_file


def apply_patches() -> None:
    from dapt_plugin.common import archived_encoders  # self-contained archives: its own module, being larger

    _patch_get_tokenizer()
    _patch_adamw_kernels()
    _patch_atomic_outputs()
    _patch_reusable_serialization_dir()
    _patch_user_error_output()
    _patch_jsonnet_errors()
    archived_encoders.install()
