"""
What the console shows of a run, and what only the log files keep.

AllenNLP logs everything at INFO to the console as well as to `out.log`: every config parameter,
every parameter name of the model (twice), each parameter group, a tensor dump of the first
batch. The console carries what a user reads (phases, progress, losses and metrics, where the
outputs are, and every warning); `ConsoleFilter` leaves the rest to the log files.
`ALLENNLP_DEBUG=1` (the root logger at DEBUG) shows everything on the console again.
"""

import contextlib
import logging
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

# Loggers whose records below WARNING are detail: the logger name, and the functions of it that log
# detail (None: all of them). Functions, not messages, so a reworded message stays where it was.
DETAIL = {
    "allennlp.common.params": None,  # every config parameter, as it is read
    "allennlp.common.checks": None,  # "Pytorch version: ..."
    "allennlp.nn.initializers": None,  # every parameter the initializer leaves alone
    "allennlp.training.optimizers": None,  # every parameter's group
    "allennlp.data.vocabulary": None,
    "allennlp.models.archival": None,  # temporary directories and file names
    "allennlp.common.util": {"log_frozen_and_tunable_parameter_names"},
    "allennlp.training.callbacks.console_logger": {
        "on_batch",
        "_log_fields",
    },  # the first batch's tensors
    "faiss.loader": None,  # which CPU instruction set faiss could load, on `import faiss`
}

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(name)s - %(message)s"  # AllenNLP's, in out.log


class ConsoleFilter(logging.Filter):
    """Passes the records a user reads on the console; the `DETAIL` records stay in the log files."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno >= logging.WARNING
            or logging.NOTSET < logging.getLogger().level <= logging.DEBUG
        ):
            return True
        if record.name not in DETAIL:
            return True
        functions = DETAIL[record.name]
        return functions is not None and record.funcName not in functions


def quiet_console() -> None:
    """Adds `ConsoleFilter` to the root logger's console handlers (not to its log files), once."""
    for handler in logging.getLogger().handlers:
        if is_console(handler) and not any(isinstance(f, ConsoleFilter) for f in handler.filters):
            handler.addFilter(ConsoleFilter())
            handler.emit = _clear_of_progress_bars(handler.emit)  # type: ignore[assignment]


@contextlib.contextmanager
def quiet_logger(log: logging.Logger) -> Iterator[None]:
    """Within the block, `log` passes only errors (what a caller reports better itself)."""
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def is_console(handler: logging.Handler) -> bool:
    """AllenNLP's (and `logging.basicConfig`'s) handlers that write to stdout or stderr."""
    return type(handler) is logging.StreamHandler and handler.stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


def _clear_of_progress_bars(
    emit: Callable[[logging.LogRecord], None],
) -> Callable[[logging.LogRecord], None]:
    """
    On a terminal, a line logged while a progress bar is drawn would be appended to the bar's
    line: the bars are cleared, the line written, and the bars drawn again below it (as
    `tqdm.write` does).
    """
    from tqdm import tqdm

    def emit_between_bars(record: logging.LogRecord) -> None:
        bars = [bar for bar in list(getattr(tqdm, "_instances", ())) if not bar.disable]
        if not bars or not sys.stderr.isatty():
            emit(record)
            return
        for bar in bars:
            bar.clear(nolock=True)
        emit(record)
        for bar in bars:
            bar.refresh(nolock=True)

    return emit_between_bars


class _WarningsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextlib.contextmanager
def logs_to_file(path: Union[str, Path]) -> Iterator[None]:
    """
    Within the block, log records and whatever is written to stderr (progress bars, Python
    warnings) are appended to the file at `path` instead of going to the console; warnings and
    errors still reach the console too.
    """
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    consoles = [h for h in root.handlers if is_console(h)]
    warnings_only = _WarningsOnly()
    root.addHandler(handler)
    for console in consoles:
        console.addFilter(warnings_only)
    try:
        with contextlib.redirect_stderr(handler.stream):
            yield
    finally:
        for console in consoles:
            console.removeFilter(warnings_only)
        root.removeHandler(handler)
        handler.close()


def with_option_names(message: str, names: Iterable[str]) -> str:
    """
    `message`, of an error a back-end function raised, with each of its argument `names` quoted
    in it (`` `pool_size` ``) given as the command-line option that sets it (`` `--pool-size` ``),
    for a command that calls the function with its options.
    """
    pattern = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    if not pattern:
        return message
    return re.sub(
        rf"`({pattern})`", lambda match: f"`--{match.group(1).replace('_', '-')}`", message
    )


def some_of(items: Sequence[str], count: int = 3) -> str:
    """The first `count` of `items` joined with commas, and how many more there are: a message
    about a glob of thousands of files stays one readable line."""
    return ", ".join(items[:count]) + (
        f" and {len(items) - count} more" if len(items) > count else ""
    )
