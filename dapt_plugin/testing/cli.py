"""
The `allennlp` command line run inside the test process: the same argument parsing, subcommands,
plugin discovery and error report as `python -m allennlp`, without the ~10 s of imports that a new
process pays. What a run changes in the process (environment, working directory, `sys.argv`,
logging handlers, `sys.excepthook`) is put back when it ends.

A test needs a real process only where the behaviour under test is one: a kill, plugin discovery
from another directory, several workers, a file that must be read from disk rather than from a
cache of this process.
"""

import contextlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

from dapt_plugin.common.launch import temporary_environment

# loggers that allennlp's `evaluate` (and its test case) disable for the rest of the process
_DISABLED_BY_ALLENNLP = ("allennlp.common.params", "allennlp.nn.initializers")


@contextlib.contextmanager
def fresh_logging() -> Iterator[None]:
    """
    Logging as a new process has it while the block runs (the loggers that an earlier evaluation
    in this process disabled are enabled), and as it was afterwards: an `allennlp train` in the
    block replaces the root logger's handlers and `sys.excepthook` with its own.
    """
    root = logging.getLogger()
    handlers, level, excepthook = list(root.handlers), root.level, sys.excepthook
    disabled = {name: logging.getLogger(name).disabled for name in _DISABLED_BY_ALLENNLP}
    for name in disabled:
        logging.getLogger(name).disabled = False
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        sys.excepthook = excepthook
        for name, value in disabled.items():
            logging.getLogger(name).disabled = value


@contextlib.contextmanager
def _process_state(args: List[str], cwd: Optional[Path]) -> Iterator[None]:
    """Restores what `allennlp.commands.main` changes in the process: argv, cwd, threads, logging."""
    import torch

    argv, directory, threads = sys.argv, os.getcwd(), torch.get_num_threads()
    sys.argv = ["allennlp", *args]
    try:
        # a new process takes its thread count from OMP_NUM_THREADS
        if os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        with fresh_logging():
            if cwd is not None:
                os.chdir(cwd)
            yield
    finally:
        os.chdir(directory)
        sys.argv = argv
        torch.set_num_threads(threads)


def run_in_process(
    args: List[str], env: Optional[Dict[str, str]] = None, cwd: Union[str, Path, None] = None
) -> subprocess.CompletedProcess:
    """
    Runs `allennlp <args>` in this process and returns what a `subprocess.run(...,
    capture_output=True, text=True)` of it would: the exit status, and stdout and stderr as text.
    An uncaught exception is reported through `sys.excepthook` as the command line reports it
    (one line for a configuration or data error) and gives exit status 1.

    Plugin discovery is left out once `dapt_plugin` is imported in this process: it would import
    every module of the plugin again (~0.6 s a run), and finding the plugin is what the tests that
    run `allennlp` in a process of its own check.
    """
    from allennlp.commands import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        _plugins_imported_once(),
        temporary_environment(env or {}),
        _process_state(args, Path(cwd) if cwd else None),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            main(prog="allennlp")
            returncode = 0
        except SystemExit as exit_:
            returncode = _exit_status(exit_.code)
        except Exception as error:  # noqa: BLE001  (reported as the command line reports it)
            sys.excepthook(type(error), error, error.__traceback__)
            returncode = 1
    return subprocess.CompletedProcess(
        ["allennlp", *args], returncode, stdout.getvalue(), stderr.getvalue()
    )


@contextlib.contextmanager
def _plugins_imported_once() -> Iterator[None]:
    import allennlp.commands

    discover = allennlp.commands.import_plugins
    if "dapt_plugin" in sys.modules:
        allennlp.commands.import_plugins = lambda: None
    try:
        yield
    finally:
        allennlp.commands.import_plugins = discover


def _exit_status(code: object) -> int:
    """What the interpreter makes of `sys.exit(code)`: a message is printed and gives status 1."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1
