"""
The progress of a training phase of `allennlp adapt` on its console. Each phase's `allennlp train`
runs in a process of its own whose output goes to `train.log`; while it runs, `PhaseProgress`
follows the phase's `out.log` (`out_worker0.log` in a distributed run, where the primary worker
logs) and logs each progress line of the `training_curves` callback (one every `LOG_EVERY`
optimizer steps: step k/N, epoch, loss, tokens/s, elapsed and time left), and each warning of
the plugin's own (a checkpoint without a masked-LM head, texts cut to `MAX_LENGTH`, ...), once
per experiment, prefixed with the phase's name.
"""

import logging
import re
import threading
from pathlib import Path
from typing import List, Optional, Set, Union

from dapt_plugin.training.callbacks import training_curves

logger = logging.getLogger(__name__)

# where AllenNLP logs in a serialization directory: alone, or as the primary of a distributed run
LOG_FILES = ("out.log", "out_worker0.log")
# a line of the callback in those, in AllenNLP's format:
# "[<rank> | ]<time> - INFO - <logger> - <message>"
PROGRESS_LINE = re.compile(
    rf" - INFO - {re.escape(training_curves.logger.name)} - (?P<message>step \d+\S* \(epoch .*)$"
)
# a warning of the plugin's own (of its first line, for one of several lines)
WARNING_LINE = re.compile(r" - WARNING - dapt_plugin\.\S+ - (?P<message>.*)$")


class PhaseProgress:
    """
    Follows the log files of a run (`LOG_FILES` in `serialization_dir`, which need not exist yet)
    from their current end, in a thread that reads them every `interval` seconds, from entering
    the `with` block to leaving it (when what was left is read too); each progress line of the
    `training_curves` callback is logged as `<phase>: <message>` and kept in `lines`, and each
    warning of the plugin's loggers is logged as a warning, `<phase>: <message>`, unless
    `shown` holds its message already (it is added). What the files held before (a run resumed
    with `--recover` appends to its old `out.log`) is not repeated.

    # Parameters

    serialization_dir : `str` or `Path`
        The run's serialization directory.
    phase : `str`
        The phase's name, the prefix of every line.
    interval : `float`, optional (default = `1.0`)
        Seconds between two reads.
    shown : `Set[str]`, optional (default = `None`)
        The warnings' messages shown already (by the experiment's other phases), not shown
        again; `None`: a set of this follower's own.
    """

    def __init__(
        self,
        serialization_dir: Union[str, Path],
        phase: str,
        interval: float = 1.0,
        shown: Optional[Set[str]] = None,
    ) -> None:
        self.logs = [Path(serialization_dir) / name for name in LOG_FILES]
        self.phase = phase
        self.interval = interval
        self.shown = set() if shown is None else shown
        self.lines: List[str] = []
        self._offsets = {log: log.stat().st_size if log.exists() else 0 for log in self.logs}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "PhaseProgress":
        self._thread = threading.Thread(
            target=self._follow, name=f"progress of {self.phase}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()

    def poll(self) -> List[str]:
        """
        Reads the complete lines added to the log files since the last read; logs the progress
        lines and the warnings not shown yet among them, and returns the progress lines.
        """
        found = []
        for log in self.logs:
            try:
                with open(log, "rb") as handle:
                    handle.seek(self._offsets[log])
                    text = handle.read()
            except FileNotFoundError:
                continue
            complete = text[: text.rfind(b"\n") + 1]  # a line being written is read next time
            self._offsets[log] += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                match = PROGRESS_LINE.search(line)
                if match:
                    found.append(match["message"])
                    logger.info("%s: %s", self.phase, match["message"])
                warning = WARNING_LINE.search(line)
                if warning and warning["message"] not in self.shown:
                    self.shown.add(warning["message"])
                    logger.warning("%s: %s", self.phase, warning["message"])
        self.lines.extend(found)
        return found

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except OSError as error:  # the console's progress is not worth stopping the run for
                logger.debug("cannot follow the logs of %s: %s", self.phase, error)
