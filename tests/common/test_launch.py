"""The one launcher of `allennlp` subprocesses: its command line and environment (the runs themselves
are exercised by every test that starts a real `allennlp` process)."""

import os
import sys

import pytest

from dapt_plugin.common.launch import (
    AllennlpFailed,
    allennlp_command,
    allennlp_environment,
    last_error,
)


def test_the_command_is_the_running_pythons_allennlp_with_the_packages_to_include(tmp_path):
    assert allennlp_command(
        ["train", tmp_path / "c.jsonnet", "-s", "run"], ["dapt_plugin", "step_timer"]
    ) == [
        sys.executable,
        "-m",
        "allennlp",
        "train",
        str(tmp_path / "c.jsonnet"),
        "-s",
        "run",
        "--include-package",
        "dapt_plugin",
        "--include-package",
        "step_timer",
    ]


def test_the_environment_is_this_ones_then_threads_then_env_then_python_path(monkeypatch):
    monkeypatch.setenv("KEEP", "kept")
    monkeypatch.setenv("PYTHONPATH", "/old")
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    env = allennlp_environment({"NUM_STEPS": 4, "UNSET": None}, threads=1, python_path=["/first"])
    assert env["KEEP"] == "kept" and env["NUM_STEPS"] == "4" and "UNSET" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["PYTHONPATH"] == os.pathsep.join(
        ["/first", "/old"]
    )
    assert (
        allennlp_environment({"OMP_NUM_THREADS": "2"}, threads=1)["OMP_NUM_THREADS"] == "2"
    )  # env wins


def test_a_failed_run_says_what_ran_and_shows_its_output():
    error = AllennlpFailed(
        2,
        [sys.executable, "-m", "allennlp", "train", "x.jsonnet"],
        "",
        "Error: x.jsonnet: no such file",
    )
    assert (
        str(error) == "`allennlp train x.jsonnet` failed (exit 2):\nError: x.jsonnet: no such file"
    )


@pytest.mark.process
def test_a_preloaded_run_is_a_process_of_its_own_with_the_callers_environment_directory_and_exit_code(
    tiny_model, tmp_path, monkeypatch
):
    from dapt_plugin.common.launch import run_allennlp_preloaded
    from tests.conftest import CONFIGS, mlm_env

    monkeypatch.chdir(tmp_path)
    log = tmp_path / "train.log"
    # a config error: the exit code and the one-line report of `python -m allennlp`, in the log
    env = mlm_env(tiny_model, NUM_STEPS="4", TAPT_PATH="missing.jsonl")
    assert (
        run_allennlp_preloaded(["train", CONFIGS / "tapt.jsonnet", "-s", "run"], env, log=log) == 1
    )
    assert "Error: missing.jsonl: no such file" in log.read_text()
    assert "TAPT_PATH" not in os.environ  # nothing of the run is left in this process
    # a run that trains writes where the caller is, with the caller's environment of this call
    monkeypatch.setenv("TAPT_PATH", "ignored")
    assert (
        run_allennlp_preloaded(
            ["train", CONFIGS / "tapt.jsonnet", "-s", "run"],
            {**env, "TAPT_PATH": str(tmp_path / "task.jsonl")},
            log=log,
        )
        == 1
    )
    (tmp_path / "task.jsonl").write_text('{"text": "the compound inhibits the receptor ."}\n' * 20)
    assert (
        run_allennlp_preloaded(
            ["train", CONFIGS / "tapt.jsonnet", "-s", "run"],
            {**env, "TAPT_PATH": str(tmp_path / "task.jsonl"), "OMP_NUM_THREADS": "1"},
            log=log,
        )
        == 0
    )
    assert (tmp_path / "run" / "model.tar.gz").exists()


def _record_start_method(path):
    import multiprocessing

    with open(path, "w") as handle:
        handle.write(multiprocessing.get_start_method())


@pytest.mark.process
def test_a_preloaded_run_starts_its_own_processes_as_a_new_process_would(tmp_path):
    """Not through the server (which would be sent the whole data set for each data-loader worker)."""
    import functools
    import multiprocessing

    from dapt_plugin.common.launch import run_allennlp_preloaded

    record = functools.partial(_record_start_method, str(tmp_path / "start_method"))
    assert run_allennlp_preloaded(["--help"], log=tmp_path / "log", prepare=record) == 0
    assert (tmp_path / "start_method").read_text() == multiprocessing.get_all_start_methods()[0]
    assert "train" in (tmp_path / "log").read_text()


def _threads_and_directory(offset):
    import torch

    return torch.get_num_threads() + offset, os.getcwd()


def _fail(message):
    raise ValueError(message)


def _fail_unpicklably(message):
    class Local(Exception):
        pass

    raise Local(message)


def _sleep_once_started(started, seconds):
    import time

    with open(started, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(seconds)


@pytest.mark.process
def test_a_preloaded_call_returns_the_value_of_a_function_run_in_a_process_of_its_own(tmp_path):
    import functools

    from dapt_plugin.common.launch import PreloadedCallFailed, call_preloaded

    log = tmp_path / "logs" / "call.log"
    assert call_preloaded(
        _threads_and_directory, 10, env={"OMP_NUM_THREADS": 3}, log=log, cwd=tmp_path
    ) == (13, str(tmp_path))
    # what it raises is raised here, its traceback in the log
    with pytest.raises(ValueError, match="^no such label$"):
        call_preloaded(_fail, "no such label", log=log)
    assert "ValueError: no such label" in log.read_text()
    with pytest.raises(PreloadedCallFailed, match="^Local: cannot be sent$"):
        call_preloaded(_fail_unpicklably, "cannot be sent", log=log)
    with pytest.raises(PreloadedCallFailed) as failure:
        call_preloaded(functools.partial(os._exit, 3), log=log)
    assert str(failure.value) == "_exit ended in its process without an answer (exit code 3)"


@pytest.mark.process
def test_stopped_preloaded_processes_end_and_no_other_starts_until_preloading_starts_again(
    tmp_path,
):
    import threading
    import time

    from allennlp.common.util import SigTermReceived

    from dapt_plugin.common.launch import (
        PreloadedCallFailed,
        call_preloaded,
        start_preloading,
        stop_preloaded,
    )

    log, started, outcome = tmp_path / "call.log", tmp_path / "started", {}

    def call():
        try:
            call_preloaded(_sleep_once_started, str(started), 600, log=log)
        except Exception as error:
            outcome["error"] = error

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.time() + 60
    while not started.exists():
        assert time.time() < deadline
        time.sleep(0.05)
    try:
        stop_preloaded(grace=0.5)  # the sleep does not end by itself: SIGTERM after half a second
        caller.join(timeout=60)
        assert not caller.is_alive()
        # allennlp's SIGTERM handler raised in the sleep, and here
        assert isinstance(outcome["error"], SigTermReceived)
        with pytest.raises(PreloadedCallFailed, match="the preloaded processes were stopped"):
            call_preloaded(os.getpid, log=log)
    finally:
        start_preloading()
    assert call_preloaded(os.getpid, log=log) != os.getpid()


@pytest.mark.process
def test_a_preloaded_process_stops_when_its_caller_is_killed_and_lets_go_of_its_lock(tmp_path):
    """
    Its parent is the server, not the caller: a caller killed by SIGKILL (`kill -9` of
    `allennlp adapt`) cannot stop it, and it would run on beside the caller's rerun.
    """
    import fcntl
    import signal
    import subprocess
    import threading
    import time

    from dapt_plugin.common.launch import wait_for_holders
    from tests.conftest import PROJECT_ROOT

    started, lock = tmp_path / "started", tmp_path / "running.lock"
    script = f"""
from dapt_plugin.common.launch import call_preloaded
from tests.common.test_launch import _sleep_once_started
call_preloaded(_sleep_once_started, {str(started)!r}, 600, log={str(tmp_path / "log")!r},
               hold={str(lock)!r})
"""
    caller = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT)
    try:
        deadline = time.time() + 120
        while not (started.exists() and started.read_text()):
            assert time.time() < deadline and caller.poll() is None
            time.sleep(0.05)
        process = int(started.read_text())
        with open(lock) as handle, pytest.raises(BlockingIOError):  # held while it runs
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    waited = []
    waiting = threading.Thread(
        target=wait_for_holders, args=(lock, lambda: waited.append(1)), daemon=True
    )
    waiting.start()
    waiting.join(timeout=60)
    assert not waiting.is_alive()  # the sleep of 600 s stopped with its caller
    deadline = time.time() + 10
    while os.path.exists(f"/proc/{process}") and "Z" not in _state(process):
        assert time.time() < deadline, "the process outlived its caller"
        time.sleep(0.05)


def _state(pid: int) -> str:
    """The state letter of a process in /proc (`Z`: ended, not yet reaped), or "" when gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


@pytest.mark.process
def test_the_server_starts_with_the_environment_given_for_what_torch_reads_once(tmp_path):
    """In a new process: the server of this one (the tests') may have started already."""
    import subprocess

    from tests.conftest import PROJECT_ROOT

    script = f"""
import os
from dapt_plugin.common.launch import call_preloaded, start_preloading
os.environ.pop("GOMP_SPINCOUNT", None)
os.environ["OMP_WAIT_POLICY"] = "active"
start_preloading({{"GOMP_SPINCOUNT": "1000", "OMP_WAIT_POLICY": "passive"}})
# this process's environment is as it was
assert "GOMP_SPINCOUNT" not in os.environ and os.environ["OMP_WAIT_POLICY"] == "active"
start_preloading({{"GOMP_SPINCOUNT": "5"}})  # started already: as it was
server = call_preloaded(os.getppid, log={str(tmp_path / "log")!r})
with open(f"/proc/{{server}}/environ", "rb") as environ:
    variables = environ.read().decode().split("\\0")
print(sorted(v for v in variables if v.startswith(("GOMP_", "OMP_WAIT"))))
"""
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr
    assert output.stdout.splitlines()[-1] == "['GOMP_SPINCOUNT=1000', 'OMP_WAIT_POLICY=passive']"


def test_last_error_is_the_processs_one_line_report_or_its_tracebacks_last_line(tmp_path):
    log = tmp_path / "train.log"
    earlier = "Error: an earlier run's error\n"
    log.write_text(earlier + "===== tapt\n2026-12-02 INFO - reading\n")
    assert last_error(log, len(earlier)) is None  # the earlier run's line is not this run's
    with open(log, "a") as handle:
        handle.write(
            "Traceback (most recent call last):\n"
            '  File "x.py", line 1, in <module>\n'
            "    raise KeyError('inner')\n"
            "KeyError: 'inner'\n"
            "\nDuring handling of the above exception, another exception occurred:\n\n"
            "Traceback (most recent call last):\n"
            '  File "x.py", line 3, in <module>\n'
            "ValueError: Invalid learning rate: -1\n"
            "2026-12-02 INFO - a line after it\n"
        )
    assert last_error(log, len(earlier)) == "ValueError: Invalid learning rate: -1"
    with open(log, "a") as handle:
        handle.write("Error: data/bad.jsonl:2: not valid JSON (traceback in run/out.log)\n")
    assert last_error(log) == "data/bad.jsonl:2: not valid JSON (traceback in run/out.log)"
