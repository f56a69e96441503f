"""
Running the `allennlp` command line in a subprocess, as a user does: the one way the experiment
runner, the demo, the tests and the benchmarks start `allennlp train` (or `adapt`, `evaluate`...).

The command is `[sys.executable, "-m", "allennlp", *args]`: the allennlp of the running Python,
whatever the `PATH`. The plugin is found as `allennlp` finds it (`.allennlp_plugins` in `cwd`, or
`~/.allennlp/plugins`) unless `include_packages` names it (`--include-package`, which imports
every submodule of the package, so it needs the plugin's optional dependencies too). The
environment is this process's, overlaid with `env`.

`run_allennlp_preloaded` and `call_preloaded` run `allennlp` or a function in a process forked
from a server that has done the imports once; `stop_preloaded` stops those still running, and
each stops by itself when its caller is gone (SIGKILL included). A process may hold a lock file
shared while it runs (`hold`), which `wait_for_holders` waits on: how a new caller knows that no
process of a killed one still writes where it is about to.
"""

import contextlib
import fcntl
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Union

Log = Union[str, os.PathLike, IO]


class AllennlpFailed(subprocess.CalledProcessError):
    """An `allennlp` run that `run_allennlp(check=True)` started ended with a non-zero exit code."""

    def __str__(self) -> str:
        message = f"`{' '.join(['allennlp', *self.cmd[3:]])}` failed (exit {self.returncode})"
        output = "\n".join(text[-6000:] for text in (self.stdout, self.stderr) if text)
        return f"{message}:\n{output}" if output else message


def allennlp_command(
    args: Sequence[Union[str, os.PathLike]], include_packages: Sequence[str] = ()
) -> List[str]:
    """`[sys.executable, "-m", "allennlp", *args]`, then `--include-package P` for each of `include_packages`."""
    command = [sys.executable, "-m", "allennlp", *map(os.fspath, args)]
    for package in include_packages:
        command += ["--include-package", package]
    return command


def allennlp_environment(
    env: Optional[Mapping[str, object]] = None,
    threads: Optional[int] = None,
    python_path: Sequence[Union[str, os.PathLike]] = (),
) -> Dict[str, str]:
    """
    This process's environment, then `OMP_NUM_THREADS=threads` when `threads` is given, then `env`
    (values written with `str`; a variable whose value is `None` is left as it is), with the
    directories of `python_path` put before the resulting `PYTHONPATH`.
    """
    environment = dict(os.environ)
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    environment.update(
        {name: str(value) for name, value in (env or {}).items() if value is not None}
    )
    if python_path:
        directories = [os.fspath(directory) for directory in python_path] + [
            environment.get("PYTHONPATH", "")
        ]
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, directories))
    return environment


@contextlib.contextmanager
def _output(log: Optional[Log]) -> Iterator[Optional[IO]]:
    """A log file name is opened for appending; an open file is used as it is."""
    if log is None or hasattr(log, "write"):
        yield log  # type: ignore[misc]
    else:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as handle:
            yield handle


def run_allennlp(
    args: Sequence[Union[str, os.PathLike]],
    env: Optional[Mapping[str, object]] = None,
    *,
    cwd: Optional[Union[str, os.PathLike]] = None,
    threads: Optional[int] = None,
    include_packages: Sequence[str] = (),
    python_path: Sequence[Union[str, os.PathLike]] = (),
    log: Optional[Log] = None,
    capture: bool = False,
    check: bool = False,
    timeout: Optional[float] = None,
) -> subprocess.CompletedProcess:
    """
    Runs `allennlp ARGS` to its end and returns the finished process.

    # Parameters

    args : `Sequence[str]`
        The arguments after `allennlp`, e.g. `["train", config, "-s", directory]`.
    env : `Mapping[str, object]`, optional (default = `None`)
        Variables over this process's environment (see `allennlp_environment`).
    cwd : `str`, optional (default = this process's)
        The directory it runs in (where `allennlp` looks for `.allennlp_plugins`).
    threads : `int`, optional (default = `None`)
        `OMP_NUM_THREADS` unless `env` sets it; `None` leaves the environment's.
    include_packages : `Sequence[str]`, optional (default = `()`)
        Packages passed with `--include-package`.
    python_path : `Sequence[str]`, optional (default = `()`)
        Directories put first on the `PYTHONPATH`.
    log : `str` or an open file, optional (default = `None`)
        Where stdout and stderr go, together: a file name (appended to) or an open file.
    capture : `bool`, optional (default = `False`)
        Keep stdout and stderr as text in the returned process (`log` is then ignored). With
        neither `log` nor `capture`, the output goes where this process's goes.
    check : `bool`, optional (default = `False`)
        Raise `AllennlpFailed` (a `subprocess.CalledProcessError` that shows the captured output)
        when the exit code is not 0.
    timeout : `float`, optional (default = `None`)
        Seconds before the run is killed and `subprocess.TimeoutExpired` raised.
    """
    command, environment = (
        allennlp_command(args, include_packages),
        allennlp_environment(env, threads, python_path),
    )
    if capture:
        process = subprocess.run(
            command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
        )
    else:
        with _output(log) as output:
            process = subprocess.run(
                command,
                cwd=cwd,
                env=environment,
                timeout=timeout,
                stdout=output,
                stderr=None if output is None else subprocess.STDOUT,
            )
    if check and process.returncode != 0:
        raise AllennlpFailed(process.returncode, command, process.stdout, process.stderr)
    return process


def start_allennlp(
    args: Sequence[Union[str, os.PathLike]],
    env: Optional[Mapping[str, object]] = None,
    *,
    log: Optional[IO] = None,
    **options,
) -> subprocess.Popen:
    """
    Starts `allennlp ARGS` and returns the running process, for a caller that watches or kills it.
    `env`, `cwd`, `threads`, `include_packages` and `python_path` are those of `run_allennlp`;
    `log` must be an open file (or `None`: the output goes where the other keywords send it, by
    default where this process's goes); any other keyword goes to `subprocess.Popen` (e.g.
    `start_new_session=True`, `stdout=subprocess.DEVNULL`).
    """
    command = allennlp_command(args, options.pop("include_packages", ()))
    environment = allennlp_environment(
        env, options.pop("threads", None), options.pop("python_path", ())
    )
    if log is not None:
        options.update(stdout=log, stderr=subprocess.STDOUT)
    return subprocess.Popen(command, env=environment, **options)


# what a process forked by `run_allennlp_preloaded` has imported before it starts
_PRELOADED = ["allennlp.commands", "dapt_plugin", "dapt_plugin.common.launch"]


@functools.lru_cache(maxsize=None)
def _preloaded_processes() -> multiprocessing.context.BaseContext:
    """
    multiprocessing's `forkserver`, its server started at once so that its imports overlap with
    what the caller does until its first run. The server is a fresh interpreter that only imports
    `_PRELOADED`: it never computes with torch or touches a GPU, so what it forks starts as clean
    as a new process would (a fork of a process that has used CUDA or OpenMP threads does not).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOADED)
    forkserver.ensure_running()
    return context


# the processes `_preloaded_process` started and has not yet joined, and whether `stop_preloaded`
# stopped them (no other starts until `start_preloading`)
_RUNNING: Set[multiprocessing.process.BaseProcess] = set()
_STOPPED = threading.Event()
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def temporary_environment(env: Mapping[str, Optional[object]]) -> Iterator[None]:
    """Sets `env` (a value of None unsets the variable) and puts the previous values back."""
    previous = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            _set_variable(name, value)
        yield
    finally:
        for name, value in previous.items():
            _set_variable(name, value)


def _set_variable(name: str, value: Optional[object]) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def start_preloading(environment: Optional[Mapping[str, str]] = None) -> None:
    """
    Starts the server of `run_allennlp_preloaded` now, to have its imports done by the first run;
    processes may be started again after `stop_preloaded`. `environment`: variables the server
    starts with, over this process's, for what is read once when torch is imported and so holds
    in every process forked from the server whatever that process's own environment says: the
    OpenMP runtime's settings, such as `GOMP_SPINCOUNT`. A server already started in this process
    (by an earlier call) keeps the environment it started with.
    """
    _STOPPED.clear()
    with temporary_environment(environment or {}):  # for the server's start, if not started yet
        _preloaded_processes()


def run_allennlp_preloaded(
    args: Sequence[Union[str, os.PathLike]],
    env: Optional[Mapping[str, object]] = None,
    *,
    log: Union[str, os.PathLike],
    cwd: Optional[Union[str, os.PathLike]] = None,
    prepare: Optional[Callable[[], None]] = None,
    hold: Optional[Union[str, os.PathLike]] = None,
) -> int:
    """
    Runs `allennlp ARGS` to its end as `run_allennlp(args, env, cwd=cwd, log=log)` does, in a
    process of its own, and returns its exit code (negative: killed by that signal). The process
    is forked from a server that has imported allennlp, transformers and the plugin once, so it does
    not pay the ~10 s of imports again: what an experiment of many short phases spends starting
    them. It runs as `python -m allennlp ARGS` would: the same entry point, SIGTERM handling, error
    report and exit code, with `env` over this process's environment and in `cwd` (default: this
    process's directory), both read now, not when the server started; its output is appended to
    `log` (a file name), and nothing of it is left in this process. `prepare`, a module-level
    function (it is pickled), is called first in the new process: a test's hook, for instance.
    `hold`: a lock file the process holds shared while it runs (`wait_for_holders`). The process
    stops as on SIGTERM once this one is gone, killed or not: it is the server's child, not this
    process's, and would otherwise run on. After `stop_preloaded`, it raises
    `PreloadedCallFailed` without starting anything.
    """
    arguments = ([os.fspath(arg) for arg in args], prepare)
    with _preloaded_process(_allennlp_main, arguments, env, log, cwd, hold) as process:
        pass  # the block's end waits for the process to end
    return process.exitcode


class PreloadedCallFailed(RuntimeError):
    """The process of `call_preloaded` died without an answer, or was not started."""


class ProcessFailed(RuntimeError):
    """
    A process that a command started for a step of its work (a phase of `allennlp adapt`)
    failed; the message names the step and holds what the process said of its failure
    (`last_error`). Reported in one line, as a configuration or data error is (`compat.py`): the
    traceback of the command that started the process says nothing about it.
    """


# how much of the end of a log `last_error` reads: a failure is said in its last lines
_LOG_TAIL_BYTES = 1 << 16


def last_error(log: Union[str, os.PathLike], start: int = 0) -> Optional[str]:
    """
    What a process said last of its failure in `log`, after byte `start` (where its output
    began): the later of its last one-line report of a configuration or data error (`Error:
    ...`, without the prefix) and the last line of its last Python traceback (`ValueError:
    ...`); `None` when neither is there. A process killed by a signal says nothing: what the log
    holds then is older.
    """
    with open(log, "rb") as handle:
        handle.seek(max(start, os.fstat(handle.fileno()).st_size - _LOG_TAIL_BYTES))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    said = {}  # line number -> what it says; the last one counts
    reports = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    if reports:
        said[reports[-1]] = lines[reports[-1]][len("Error: ") :].strip()
    tracebacks = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if tracebacks:
        # the exception's line: the first after the traceback's header that is not indented
        for number in range(tracebacks[-1] + 1, len(lines)):
            if lines[number].strip() and not lines[number][0].isspace():
                said[number] = lines[number].strip()
                break
    return said[max(said)] if said else None


def call_preloaded(
    function: Callable[..., Any],
    *args: Any,
    env: Optional[Mapping[str, object]] = None,
    log: Union[str, os.PathLike],
    cwd: Optional[Union[str, os.PathLike]] = None,
    hold: Optional[Union[str, os.PathLike]] = None,
) -> Any:
    """
    `function(*args)` in a process forked as `run_allennlp_preloaded`'s are (the same environment,
    thread count, directory, output to `log`, `hold`, and end with this process), and its return
    value; `function` (module-level, or a `functools.partial` of one), `args` and the value are
    pickled. What it raises is raised here (its traceback is in `log`; an exception that cannot be
    pickled is raised as a `PreloadedCallFailed` with its type and message); a process that dies
    without an answer (killed, or exiting) raises `PreloadedCallFailed` with its signal or exit
    code. After `stop_preloaded`, it raises `PreloadedCallFailed` without starting anything.
    """
    name = getattr(function, "__qualname__", None) or getattr(function, "func").__qualname__
    receiver, sender = _preloaded_processes().Pipe(duplex=False)
    try:
        call = (function, args, sender)
        with _preloaded_process(_call_main, call, env, log, cwd, hold) as process:
            sender.close()  # the child's copy alone
            # the answer, or the process's end (its own children may hold the pipe open)
            multiprocessing.connection.wait([receiver, process.sentinel])
            try:
                outcome = receiver.recv() if receiver.poll() else None
            except (EOFError, OSError):  # ended during its answer
                outcome = None
    finally:
        sender.close()
        receiver.close()
    if outcome is None:
        ended = (
            f"killed by signal {-process.exitcode}"
            if process.exitcode < 0
            else f"exit code {process.exitcode}"
        )
        raise PreloadedCallFailed(f"{name} ended in its process without an answer ({ended})")
    answered, value = outcome
    if not answered:
        raise value
    return value


@contextlib.contextmanager
def _preloaded_process(
    target: Callable[..., None],
    args: tuple,
    env: Optional[Mapping[str, object]],
    log: Union[str, os.PathLike],
    cwd: Optional[Union[str, os.PathLike]],
    hold: Optional[Union[str, os.PathLike]],
) -> Iterator[multiprocessing.process.BaseProcess]:
    """
    `target(*args)` in a process forked by the server, set up by `_preloaded_main`, for the
    block; joined when the block ends.
    """
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    if hold is not None:
        hold = os.path.abspath(hold)
        Path(hold).parent.mkdir(parents=True, exist_ok=True)
    setup = (allennlp_environment(env), os.fspath(cwd or os.getcwd()), os.fspath(log), hold)
    process = _preloaded_processes().Process(target=_preloaded_main, args=(setup, target, args))
    with _RUNNING_LOCK:
        if _STOPPED.is_set():
            raise PreloadedCallFailed("not started: the preloaded processes were stopped")
        process.start()
        _RUNNING.add(process)
    try:
        yield process
    finally:
        process.join()
        with _RUNNING_LOCK:
            _RUNNING.discard(process)


def stop_preloaded(grace: float = 0.0) -> None:
    """
    Stops every process that `run_allennlp_preloaded` and `call_preloaded` started in this
    process and that has not ended: those that do not end within `grace` seconds (a Ctrl-C on a
    terminal reaches them too, and `allennlp train` may be archiving its model) are sent SIGTERM,
    on which each stops as `allennlp` does. No other starts until `start_preloading` is called
    again. What a caller stopping on a signal or an error does, so that nothing it started
    outlives it.
    """
    with _RUNNING_LOCK:
        _STOPPED.set()
        running = list(_RUNNING)
    # the sentinels tell when each has ended, without reaping it (its caller's join does)
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        sentinels = [process.sentinel for process in running]
        ended = multiprocessing.connection.wait(sentinels, deadline - time.monotonic())
        running = [process for process in running if process.sentinel not in ended]
    for process in running:
        process.terminate()


def wait_for_holders(
    path: Union[str, os.PathLike], waiting: Callable[[], None], every: float = 60.0
) -> None:
    """
    Returns once no process holds the lock file `path` (`hold` of `run_allennlp_preloaded` and
    `call_preloaded`), calling `waiting` at once if one does, and again every `every` seconds.
    """
    said = None
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if said is None or time.monotonic() - said >= every:
                    waiting()
                    said = time.monotonic()
                time.sleep(0.1)
        fcntl.flock(handle, fcntl.LOCK_UN)


# the lock file a process holds while it runs (`hold_lock`), open until it ends
_HELD: List[IO] = []

# names, in the environment of a process forked by the server, the lock file it holds, for the
# processes it starts to hold too (`hold_inherited_lock`)
HELD_LOCK_VARIABLE = "DAPT_PLUGIN_HELD_LOCK"


def hold_lock(path: Union[str, os.PathLike]) -> None:
    """Holds the lock file `path` (shared, see `wait_for_holders`) until this process ends."""
    handle = open(path, "a")
    fcntl.flock(handle, fcntl.LOCK_SH)
    _HELD.append(handle)


def hold_inherited_lock() -> None:
    """
    In a process started by a process forked by the server (a distributed run's worker): holds
    the lock file its starter holds, so that `wait_for_holders` waits for it too.
    """
    if os.environ.get(HELD_LOCK_VARIABLE):
        hold_lock(os.environ[HELD_LOCK_VARIABLE])


def end_with_the_caller() -> None:
    """
    In a process started through multiprocessing that a SIGKILL (the OOM killer, `kill -9`) of
    the process that asked for it cannot stop (one forked by the server, whose parent is the
    server, not its caller; a worker spawned by a distributed `allennlp train`): it would run on,
    writing where a rerun of the caller resumes. It watches its caller and, once the caller is
    gone, sends itself SIGTERM, on which it stops as `allennlp` and `stop_preloaded` stop it.
    """
    caller = multiprocessing.parent_process()
    if caller is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([caller.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="end-with-the-caller", daemon=True).start()


def _preloaded_main(setup: tuple, target: Callable[..., None], args: tuple) -> None:
    """
    In a process forked by the server: ends with its caller, holds the lock file given, takes the
    caller's environment (`OMP_NUM_THREADS` included) and directory, appends stdout and stderr to
    the log, then runs `target(*args)`.
    """
    import torch

    environment, cwd, log, hold = setup
    end_with_the_caller()
    if hold is not None:
        hold_lock(hold)
        environment = {**environment, HELD_LOCK_VARIABLE: hold}
    os.chdir(cwd)
    with open(log, "a") as output:
        os.dup2(output.fileno(), sys.stdout.fileno())
        os.dup2(output.fileno(), sys.stderr.fileno())
    # torch took its thread count from the server's OMP_NUM_THREADS; a new process reads the caller's
    if environment.get("OMP_NUM_THREADS") and environment["OMP_NUM_THREADS"] != os.environ.get(
        "OMP_NUM_THREADS"
    ):
        torch.set_num_threads(int(environment["OMP_NUM_THREADS"]))
    os.environ.clear()
    os.environ.update(environment)
    # a process forked by the server would start its own processes (data-loader workers) through
    # the server too, which must then be sent the whole data set: they start as in a new process
    multiprocessing.set_start_method(None, force=True)
    target(*args)


def _allennlp_main(args: List[str], prepare: Optional[Callable[[], None]]) -> None:
    """`python -m allennlp ARGS` in a process forked by `run_allennlp_preloaded`."""
    sys.argv = ["allennlp", *args]
    if prepare is not None:
        prepare()
    from allennlp.__main__ import run

    try:
        run()
    except Exception:  # reported as an uncaught exception of `python -m allennlp` is
        sys.excepthook(*sys.exc_info())
        sys.exit(1)


def _call_main(function: Callable[..., Any], args: tuple, sender: Connection) -> None:
    """
    `function(*args)` in a process forked by `call_preloaded`, with the logging and the SIGTERM
    handling of the `allennlp` command; sends back `(True, value)`, or `(False, exception)` with
    its traceback in the log.
    """
    import allennlp.__main__  # noqa: F401 (sets up logging as the command does)
    from allennlp.common.util import install_sigterm_handler

    install_sigterm_handler()
    try:
        outcome = (True, function(*args))
    except Exception as error:
        sys.excepthook(*sys.exc_info())
        sys.stderr.flush()
        try:
            pickle.dumps(error)
            outcome = (False, error)
        except Exception:  # what cannot be pickled is sent as its type and message
            outcome = (False, PreloadedCallFailed(f"{type(error).__name__}: {error}"))
    sender.send(outcome)
    sender.close()
