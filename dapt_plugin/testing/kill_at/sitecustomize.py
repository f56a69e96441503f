"""
Loaded by Python at start-up when this directory is on PYTHONPATH (`dapt_plugin.testing.kill`): the process
kills itself with SIGKILL at a chosen moment of writing a file, as a preempted node or an
out-of-memory kill would, so that tests can stop a run exactly there.

$DAPT_TEST_KILL_AT is `<operation>:<pattern>[:<n>]`: just before the n-th (default first)
`os.replace` (operation `replace`) or `os.link` (operation `link`) whose destination's file name
matches the regular expression `pattern` in full. A replace is how every file and directory of
the plugin takes its final name, so the moment is "the new content is written but not in place".
"""
import os
import re
import signal

_SPEC = os.environ.get("DAPT_TEST_KILL_AT")

if _SPEC:
    _operation, _pattern, *_count = _SPEC.split(":")
    _remaining = [int(_count[0]) if _count else 1]

    def _guard(original):
        def guarded(source, destination, *args, **kwargs):
            if re.fullmatch(_pattern, os.path.basename(os.fspath(destination).rstrip(os.sep))):
                _remaining[0] -= 1
                if _remaining[0] == 0:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(source, destination, *args, **kwargs)

        return guarded

    setattr(os, _operation, _guard(getattr(os, _operation)))
