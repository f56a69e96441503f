import os
import signal
import stat
import subprocess
import sys
import tempfile

import pytest
import torch
from allennlp.common.checks import ConfigurationError

from dapt_plugin.common.atomic import (
    atomic_directory,
    atomic_file,
    atomic_torch_save,
    check_not_an_input,
    check_output_directory,
    check_writable_path,
    output_path,
    remove_leftovers,
    scratch_directory,
    written_in_place,
)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "file.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(str(path)) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["file.json"]
    with atomic_file(str(path)) as handle:
        handle.write("new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["file.json"]


def test_files_and_directories_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_torch_save({"w": torch.zeros(2)}, str(tmp_path / "weights.th"))
        with atomic_directory(str(tmp_path / "export")) as directory:
            open(os.path.join(directory, "config.json"), "w").close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "weights.th").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "export").st_mode) == 0o755
    assert torch.equal(torch.load(tmp_path / "weights.th", weights_only=True)["w"], torch.zeros(2))


def test_a_replaced_directory_is_whole_and_a_failed_one_leaves_the_old(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(str(target)) as directory:
        open(os.path.join(directory, "a"), "w").close()
    with pytest.raises(RuntimeError):
        with atomic_directory(str(target)) as directory:
            open(os.path.join(directory, "b"), "w").close()
            raise RuntimeError("killed")
    assert os.listdir(target) == ["a"] and os.listdir(tmp_path) == ["export"]


def test_leftovers_are_removed_and_an_old_copy_without_its_new_one_is_put_back(tmp_path):
    (tmp_path / ".model_state_e1_b0.th.tmp-1a2b3c4d").write_bytes(b"partial")
    (tmp_path / ".exported_model.tmp-0f0f0f0f").mkdir()
    (tmp_path / ".exported_model_step_4.old-12345678").mkdir()  # killed between the two renames
    (tmp_path / ".exported_model_step_4.old-12345678" / "config.json").write_text("{}")
    (tmp_path / "exported_model_step_8").mkdir()
    (tmp_path / ".exported_model_step_8.old-87654321").mkdir()  # the new copy is in place
    (tmp_path / "keep.json").write_text("{}")
    removed = remove_leftovers(str(tmp_path))
    assert len(removed) == 4
    assert sorted(os.listdir(tmp_path)) == [
        "exported_model_step_4",
        "exported_model_step_8",
        "keep.json",
    ]
    assert os.listdir(tmp_path / "exported_model_step_4") == ["config.json"]


def test_the_leftovers_of_named_files_only_are_removed(tmp_path):
    """Those of other files may be the temporary files of writers still at work."""
    (tmp_path / ".knn_tapt.jsonl.tmp-1a2b3c4d").write_text("killed")
    (tmp_path / ".knn_tapt.jsonl.old-12345678").write_text("older")
    (tmp_path / ".rand_tapt.jsonl.tmp-0f0f0f0f").write_text("being written")
    assert sorted(remove_leftovers(str(tmp_path), ["knn_tapt.jsonl"])) == [
        ".knn_tapt.jsonl.old-12345678",
        ".knn_tapt.jsonl.tmp-1a2b3c4d",
    ]
    assert sorted(os.listdir(tmp_path)) == [".rand_tapt.jsonl.tmp-0f0f0f0f", "knn_tapt.jsonl"]


def test_an_output_directory_that_holds_anything_is_replaced_only_when_forced(tmp_path):
    check_output_directory(str(tmp_path / "new"), force=False)
    check_output_directory(str(tmp_path), force=False)  # empty
    (tmp_path / "notes.txt").write_text("a file of the user's")
    with pytest.raises(ConfigurationError) as error:
        check_output_directory(str(tmp_path), force=False)
    assert str(error.value) == (
        f"{tmp_path} already exists and is not empty; give a new directory, or --force to replace it"
    )
    check_output_directory(str(tmp_path), force=True)
    with pytest.raises(ConfigurationError, match="notes.txt is a file; give a directory"):
        check_output_directory(str(tmp_path / "notes.txt"), force=True)
    with pytest.raises(ConfigurationError) as error:
        check_output_directory(str(tmp_path / "notes.txt" / "new" / "out"), force=True)
    assert str(error.value) == (
        f"{tmp_path / 'notes.txt' / 'new' / 'out'} cannot be written: {tmp_path / 'notes.txt'} is "
        "a file, not a directory; give a path that does not go through a file"
    )


def test_a_file_to_write_is_refused_where_a_directory_is_or_under_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("a file of the user's")
    check_writable_path(str(tmp_path / "notes.txt"), "file")  # replaced, as any file output is
    check_writable_path(str(tmp_path / "new" / "out.jsonl"), "file")
    with pytest.raises(ConfigurationError, match=f"{tmp_path} is a directory; give a file"):
        check_writable_path(str(tmp_path), "file")
    with pytest.raises(ConfigurationError, match="notes.txt is a file, not a directory"):
        check_writable_path(str(tmp_path / "notes.txt" / "out.jsonl"), "file")


def test_an_output_directory_that_holds_an_input_or_the_working_directory_is_never_replaced(
    tmp_path, monkeypatch
):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "model.tar.gz").write_text("the run's archive")
    for force in (False, True):
        with pytest.raises(ConfigurationError) as error:
            check_output_directory(str(run), force, [str(run / "model.tar.gz")])
        assert str(error.value) == (
            f"{run} holds {run / 'model.tar.gz'}, which replacing it would delete; give a new "
            "directory"
        )
    monkeypatch.chdir(run / "sub")
    with pytest.raises(ConfigurationError, match="holds the working directory .*sub, which"):
        check_output_directory(str(tmp_path), force=True)
    check_output_directory(str(tmp_path / "new"), force=True)


def test_a_path_in_a_directory_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    """A read-only file system (or permissions): was an `OSError` traceback when written."""
    read_only = tmp_path / "read_only"
    (read_only / "run").mkdir(parents=True)
    (tmp_path / "writable").mkdir()
    for target, link in [
        (tmp_path / "writable" / "m.json", read_only / "link.json"),
        (read_only / "run" / "m.json", tmp_path / "link.json"),
    ]:
        target.write_text("{}")
        link.symlink_to(target)
    if os.geteuid() != 0:  # root writes whatever the permissions say: the file system's answer
        read_only.chmod(0o555)
        (read_only / "run").chmod(0o555)
    else:
        unwritable = {str(read_only), str(read_only / "run")}
        monkeypatch.setattr(os, "access", lambda path, mode: str(path) not in unwritable)
    try:
        for path, kind, replaced, where in [
            (read_only / "new" / "run", "directory", False, read_only),  # where `new` is made
            (read_only / "run", "directory", False, read_only / "run"),  # `--recover` writes in it
            (read_only / "run", "directory", True, read_only),  # replaced beside it
            (read_only / "run" / "metrics.json", "file", False, read_only / "run"),
            (tmp_path / "link.json", "file", False, read_only / "run"),  # written where it points
        ]:
            with pytest.raises(ConfigurationError) as error:
                check_writable_path(path, kind, replaced)
            assert error.value.message == (
                f"{path} cannot be written: {where} is not writable (a read-only file system, or "
                "its permissions); give a path where you can write"
            )
        check_writable_path("/dev/stdout", "file")  # written into: its directory is not written
        check_writable_path(tmp_path / "new" / "run", "directory")
        check_writable_path(read_only / "link.json", "file")  # points to a writable folder
    finally:
        read_only.chmod(0o755)
        (read_only / "run").chmod(0o755)


def test_an_empty_path_is_refused_as_naming_nothing():
    for kind in ("file", "directory"):
        with pytest.raises(ConfigurationError, match=f"the path '' names no {kind}; give a {kind}"):
            check_writable_path("", kind)
        with pytest.raises(ConfigurationError, match="the path ' ' names no"):
            check_writable_path(" ", kind)


def test_a_trailing_slash_or_a_broken_symbolic_link_is_refused_as_the_path_it_names(tmp_path):
    (tmp_path / "notes.txt").write_text("a file of the user's")
    with pytest.raises(ConfigurationError, match="notes.txt/ is a file; give a directory"):
        check_writable_path(str(tmp_path / "notes.txt") + "/", "directory")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    for kind in ("file", "directory"):
        with pytest.raises(ConfigurationError, match="dangling is a symbolic link to .*gone, whi"):
            check_writable_path(str(tmp_path / "dangling"), kind)
    check_writable_path(str(tmp_path / "new") + "/", "directory")


def test_an_output_through_a_descriptor_is_added_to_it_whole_and_a_file_is_replaced(tmp_path):
    # `--output-file /dev/stdout | wc`, `>(gzip > p.gz)`: /proc/self/fd/N, a link to
    # `pipe:[inode]`, which has no real path to write beside
    read_end, write_end = os.pipe()
    try:
        with output_path(f"/proc/self/fd/{write_end}") as name:
            with open(name, "w") as handle:
                handle.write("a prediction\n")
        assert os.read(read_end, 100) == b"a prediction\n"
    finally:
        os.close(read_end)
        os.close(write_end)
    # `--output-file /dev/stdout >> log`: a descriptor of a regular file, added to, not replaced
    log = tmp_path / "log"
    log.write_text("before\n")
    with open(log, "a") as shell_redirect:
        descriptor = f"/proc/self/fd/{shell_redirect.fileno()}"
        with pytest.raises(KeyboardInterrupt):
            with output_path(descriptor) as name:
                open(name, "w").write("cut short\n")
                raise KeyboardInterrupt
        with output_path(descriptor) as name:
            open(name, "w").write("whole\n")
        # the same through a link of the user's to the descriptor
        (tmp_path / "to_log").symlink_to(descriptor)
        with output_path(tmp_path / "to_log") as name:
            open(name, "w").write("linked\n")
    assert log.read_text() == "before\nwhole\nlinked\n"  # nothing of the interrupted output
    # a regular file under /dev or /proc is a file like any other: replaced, and checked
    (tmp_path / "regular.jsonl").write_text("old\n")
    for regular in [f"/proc/self/cwd/{tmp_path.name}.jsonl", "/dev/shm/dapt_plugin_test.jsonl"]:
        if os.path.isdir(os.path.dirname(regular)):
            assert not written_in_place(regular)
    assert not written_in_place(f"/proc/self/root{tmp_path / 'regular.jsonl'}")
    assert not [path for path in os.listdir(tempfile.gettempdir()) if "dapt_plugin_output_" in path]
    with output_path(tmp_path / "new" / "predictions.jsonl") as name:
        open(name, "w").write("whole\n")
    assert (tmp_path / "new" / "predictions.jsonl").read_text() == "whole\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_device_that_takes_no_output_is_named_in_one_line():
    with pytest.raises(ConfigurationError, match="^/dev/full could not be written: No space left"):
        with output_path("/dev/full") as name:
            open(name, "w").write("a prediction\n")


def test_an_output_that_would_replace_an_input_is_refused(tmp_path):
    archive, data = tmp_path / "model.tar.gz", tmp_path / "test.jsonl"
    archive.write_text("weights")
    data.write_text("{}")
    (tmp_path / "link").symlink_to(archive)
    inputs = [("the model archive", str(archive)), ("the input file", str(data))]
    with pytest.raises(ConfigurationError) as error:
        check_not_an_input(str(tmp_path / "link"), "--output-file", inputs)
    assert error.value.message == (
        f"--output-file {tmp_path / 'link'} is the model archive {archive}, which writing it would "
        "replace; give another output file"
    )
    (tmp_path / "run").mkdir()  # a model archive given as its directory
    (tmp_path / "run" / "config.json").write_text("{}")
    run = [("the model archive", str(tmp_path / "run"))]
    with pytest.raises(
        ConfigurationError, match=r"config.json is a file of the model archive .*run"
    ):
        check_not_an_input(str(tmp_path / "run" / "config.json"), "--output-file", run)
    check_not_an_input(str(tmp_path / "run" / "predictions.jsonl"), "--output-file", run)  # new
    # a path that cannot be a file is left to `check_writable_path`
    check_not_an_input(str(tmp_path / "run" / "config.json" / "p.jsonl"), "--output-file", run)
    check_not_an_input(str(tmp_path / "predictions.jsonl"), "--output-file", inputs)
    check_not_an_input("/dev/stdout", "--output-file", [("the input file", "/dev/stdout")])


_HOLD_A_SCRATCH_DIRECTORY = """
import os, signal, sys
from dapt_plugin.common.atomic import scratch_directory
with scratch_directory("archive") as path:
    open(os.path.join(path, "weights.th"), "wb").write(bytes(1000))
    print(path, flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()
"""


@pytest.mark.process
def test_a_scratch_directory_is_removed_after_use_and_after_a_kill_once_its_process_is_gone(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with scratch_directory("archive") as path:
        assert os.path.dirname(path) == str(tmp_path) and os.path.isdir(path)
    assert os.listdir(tmp_path) == []

    def hold(how: str) -> "tuple[subprocess.Popen, str]":
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLD_A_SCRATCH_DIRECTORY, how],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
        return process, process.stdout.readline().strip()

    killed, left = hold("kill")
    assert killed.wait() == -signal.SIGKILL and os.path.isdir(left)
    alive, held = hold("wait")
    try:
        with scratch_directory("archive"):
            assert not os.path.exists(left)
            assert os.listdir(held) == ["weights.th"]  # its process still uses it
        with scratch_directory("other"):  # removes only those of its kind
            pass
    finally:
        alive.communicate("")
    assert alive.returncode == 0 and os.listdir(tmp_path) == []
