"""
Writing files and directories so that a kill at any moment (SIGKILL, a preempted node, an
out-of-memory kill) never leaves a partial file under its final name, and removing what such a
kill leaves behind.

Everything is written to a temporary name beside its target, `.<name>.tmp-<random>`, and renamed
into place; a rename within a directory is atomic, so the target is at every moment either absent,
its old complete content, or its new complete content. Files and directories are created with the
default permissions filtered by the umask (as `open` and `mkdir` do), not private ones, so that
collaborators sharing a cluster can read exports and checkpoints.
"""

import contextlib
import fcntl
import glob
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
from typing import IO, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from allennlp.common.checks import ConfigurationError

logger = logging.getLogger(__name__)

_TMP = ".tmp-"
_OLD = ".old-"
_SCRATCH = "dapt_plugin_scratch-"


def temporary_path(target: str) -> str:
    """A new name beside `target` for writing it: `<dir>/.<name>.tmp-<random>`."""
    directory, name = os.path.split(os.path.abspath(target))
    return os.path.join(directory, f".{name}{_TMP}{secrets.token_hex(4)}")


def target_name(temporary_name: str) -> Optional[str]:
    """The name that the temporary `.<name>.tmp-<random>` was written for, or None for another name."""
    match = re.fullmatch(rf"\.(.+){re.escape(_TMP)}[0-9a-f]+", temporary_name)
    return match.group(1) if match else None


@contextlib.contextmanager
def atomic_path(target: str) -> Iterator[str]:
    """
    Yields a temporary name beside `target` (see `temporary_path`) for the block to write a file
    or a directory to; when the block ends without an exception, what it wrote is renamed to
    `target` (a directory replaces any old `target`, see `replace_directory`), otherwise removed.
    """
    tmp = temporary_path(target)
    try:
        yield tmp
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            replace_directory(tmp, target)
        else:
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def output_path(path: Union[str, os.PathLike]) -> Iterator[str]:
    """
    Yields the name to write a command's output file `path` to: a temporary name
    that takes `path` (a symbolic link's target) when the block ends without an exception (see
    `atomic_path`). A descriptor, a device or a pipe (`/dev/stdout`, `/dev/fd/N`,
    `>(gzip > p.gz)`, see `written_in_place`) is not replaced: the output is written to a
    temporary file, then appended to it whole when the block ends without an exception, so that
    `--output-file /dev/stdout >> log` adds to `log`. A missing parent folder is created.
    """
    if written_in_place(path):
        handle, temporary = tempfile.mkstemp(prefix="dapt_plugin_output_")
        os.close(handle)
        try:
            yield temporary
            try:
                with open(temporary, "rb") as source, open(path, "ab") as target:
                    shutil.copyfileobj(source, target)
            except OSError as error:  # a full device (`/dev/full`), a closed pipe
                raise ConfigurationError(
                    f"{path} could not be written: {error.strerror or error}"
                ) from None
        finally:
            os.remove(temporary)
        return
    target = os.path.realpath(path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with atomic_path(target) as temporary:
        yield temporary


# an open descriptor of the process: `/dev/stdout`, `/dev/fd/3`, `/proc/self/fd/1`
_DESCRIPTOR = re.compile(r"/dev/(stdin|stdout|stderr|fd/\d+)|/proc/(self|thread-self|\d+)/fd/\d+")


def written_in_place(path: Union[str, os.PathLike]) -> bool:
    """
    Whether the output `path` is a descriptor of the process (`/dev/stdout`, `/dev/fd/N`, or a
    symbolic link to one), a device or a pipe, which the output goes into rather than replaces.
    A regular file anywhere else, `/dev/shm` included, is replaced.
    """
    link = os.path.abspath(path)
    for _ in range(40):  # the links from `path` on, each hop as it is named
        if _DESCRIPTOR.fullmatch(link):
            return True
        if not os.path.islink(link):
            break
        link = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)  # `os.stat` follows the links
    except OSError:  # missing, through a file, a loop of links: no descriptor either
        return False


def check_not_an_input(output: str, option: str, inputs: Sequence[Tuple[str, str]]) -> None:
    """
    Refuses the output file `output` (given as `option`, e.g. `--output-file`) when writing it
    would replace one of the command's `inputs` (`(what, path)`, e.g. `("the model archive",
    "model.tar.gz")`): the same file (through any link), or a file that an input directory holds
    (a new file in it is no input).
    """
    if written_in_place(output) or not os.path.exists(output):
        return
    real = os.path.realpath(output)
    for what, path in inputs:
        if not os.path.exists(path):
            continue
        if os.path.isdir(path):
            directory = os.path.realpath(path)
            if os.path.commonpath([real, directory]) == directory:
                raise ConfigurationError(
                    f"{option} {output} is a file of {what} {path}, which writing it would "
                    "replace; give another output file"
                )
        elif os.path.samefile(output, path):
            raise ConfigurationError(
                f"{option} {output} is {what} {path}, which writing it would replace; give "
                "another output file"
            )


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """
    Opens a temporary file beside `path` for writing (`mode` "w" or "wb"); when the block ends
    without an exception the file is flushed to disk and renamed to `path`, otherwise removed.
    """
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": encoding})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_torch_save(obj, path: str) -> None:
    """`torch.save(obj, path)` that never leaves a partial `path`."""
    with atomic_file(path, "wb") as handle:
        torch.save(obj, handle)


def replace_directory(source: str, target: str) -> None:
    """
    Moves the complete directory `source` to `target`, replacing any `target` there. Each step is
    a rename, so `target` is at every moment either absent, the old complete directory or the
    new complete one; after a kill between the two renames, `.<target>.old-*` is the complete
    old copy, which `remove_leftovers` puts back.
    """
    old = None
    if os.path.exists(target):
        directory, name = os.path.split(os.path.abspath(target))
        old = os.path.join(directory, f".{name}{_OLD}{secrets.token_hex(4)}")
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str) -> Iterator[str]:
    """
    Yields a new empty temporary directory beside `target` to fill; when the block ends without
    an exception it replaces `target` (see `replace_directory`), otherwise it is removed.
    """
    with atomic_path(target) as tmp:
        os.mkdir(tmp)
        yield tmp


def check_writable_path(path: Union[str, os.PathLike], kind: str, replaced: bool = False) -> None:
    """
    Refuses `path` as the place to write a `kind` ("file" or "directory") when it cannot be one,
    before anything is read or computed: a file where a directory is wanted, a directory where a
    file is wanted, a file that stands where one of its parent directories would be created, or
    a directory to write in that is not writable (a read-only file system, its permissions):
    an existing directory itself, unless it is `replaced` (written anew beside it and renamed,
    or removed and made again), else the folder where the path is made; for a file, the folder
    of the file it names (through links), where `output_path` writes it and renames it.
    """
    path = os.fspath(path)
    if not path.strip():
        raise ConfigurationError(f"the path {path!r} names no {kind}; give a {kind}")
    named = path.rstrip(os.sep) or os.sep  # `file/` names the file, which is not a directory
    if os.path.exists(named) and os.path.isdir(named) != (kind == "directory"):
        other = "file" if kind == "directory" else "directory"
        raise ConfigurationError(f"{path} is a {other}; give a {kind}")
    if os.path.islink(named) and not os.path.exists(named):
        raise ConfigurationError(
            f"{path} is a symbolic link to {os.readlink(named)}, which does not exist; give "
            "another path, or make what it points to"
        )
    parent = os.path.dirname(os.path.abspath(named))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigurationError(
            f"{path} cannot be written: {parent} is a file, not a directory; give a path that "
            "does not go through a file"
        )
    if kind == "file":
        if written_in_place(named):
            return  # written into, not replaced in its folder
        written_in = os.path.dirname(os.path.realpath(named))
        while not os.path.exists(written_in):
            written_in = os.path.dirname(written_in)
    elif os.path.isdir(named) and not replaced:
        written_in = named
    else:
        written_in = parent
    if not os.access(written_in, os.W_OK):
        raise ConfigurationError(
            f"{path} cannot be written: {written_in} is not writable (a read-only file system, "
            "or its permissions); give a path where you can write"
        )


def check_output_directory(output_dir: str, force: bool, inputs: Sequence[str] = ()) -> None:
    """
    Refuses the `-o OUTPUT_DIR` of a command that writes it whole with `atomic_directory`: a file,
    a path through a file, a directory that holds the working directory or one of the command's
    `inputs` (which replacing it would delete, `--force` or not), or a directory that holds
    anything else, unless `force` (`--force`) lets it be replaced.
    """
    check_writable_path(output_dir, "directory", replaced=True)
    if os.path.isdir(output_dir):
        for kept, what in [(os.getcwd(), "the working directory "), *((i, "") for i in inputs)]:
            if os.path.commonpath([os.path.realpath(output_dir), os.path.realpath(kept)]) == (
                os.path.realpath(output_dir)
            ):
                raise ConfigurationError(
                    f"{output_dir} holds {what}{kept}, which replacing it would delete; give a new "
                    "directory"
                )
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not force:
        raise ConfigurationError(
            f"{output_dir} already exists and is not empty; give a new "
            "directory, or --force to replace it"
        )


def remove_leftovers(directory: str, names: Optional[Sequence[str]] = None) -> List[str]:
    """
    Removes what writers killed in `directory` left behind: temporary files and directories
    (`.<name>.tmp-*`), and the old copy of a replaced directory (`.<name>.old-*`), which is put
    back under its name when the kill came before the new copy took it. Only for a directory that
    no live process is writing to (a run's own serialization directory when the run starts), or,
    with `names`, for those of the files and directories of these names only, which no live
    process may be writing. Returns the names removed or restored.
    """
    handled = []
    prefixes = [".*"] if names is None else [f".{glob.escape(name)}" for name in names]

    def leftovers(kind: str) -> List[str]:
        return sorted(
            path
            for prefix in prefixes
            for path in glob.glob(os.path.join(glob.escape(directory), f"{prefix}{kind}*"))
        )

    for path in leftovers(_TMP):
        _remove(path)
        handled.append(os.path.basename(path))
    for path in leftovers(_OLD):
        match = re.fullmatch(rf"\.(.+){re.escape(_OLD)}[0-9a-f]+", os.path.basename(path))
        original = os.path.join(directory, match.group(1)) if match else None
        if original is not None and not os.path.exists(original):
            os.replace(path, original)
        else:
            _remove(path)
        handled.append(os.path.basename(path))
    if handled:
        logger.info("Removed what an interrupted run left in %s: %s", directory, ", ".join(handled))
    return handled


@contextlib.contextmanager
def scratch_directory(kind: str) -> Iterator[str]:
    """
    Yields a new private directory in the system's temporary directory (`TMPDIR`) for the block
    to fill and read, and removes it when the block ends. A process killed inside the block
    (SIGKILL, the out-of-memory killer) leaves its directory behind, which the next call, in any
    process, removes: each such directory is locked (`flock`) by its process before it takes its
    `dapt_plugin_scratch-<kind>-*` name until it is removed, so one that can be locked has no
    process left. Where the file system cannot lock a directory (NFS), it keeps the plain name
    that `tempfile.mkdtemp` gives and is never removed by another process. For one machine's
    processes: a `TMPDIR` shared by several machines whose file system takes `flock` locks on
    each machine alone (NFS with `local_lock`, Lustre's `localflock`) would let one remove
    another's directory in use.
    """
    base = tempfile.gettempdir()
    _remove_abandoned_scratch(base, kind)
    path = tempfile.mkdtemp(dir=base)
    handle = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            named = os.path.join(base, f"{_SCRATCH}{kind}-{os.path.basename(path)}")
            os.rename(path, named)
            path = named
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(handle)


def _remove_abandoned_scratch(base: str, kind: str) -> None:
    """Removes the scratch directories of `kind` in `base` whose process has gone."""
    for path in glob.glob(os.path.join(glob.escape(base), f"{_SCRATCH}{glob.escape(kind)}-*")):
        try:
            handle = os.open(path, os.O_RDONLY)
        except OSError:  # gone meanwhile, or another user's
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive
            continue
        else:
            if os.path.isdir(path):  # not removed by its own process since it was listed
                shutil.rmtree(path, ignore_errors=True)
                logger.info("Removed %s, left by a process killed while it used it", path)
        finally:
            os.close(handle)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
