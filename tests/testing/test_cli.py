"""`run_in_process`: the `allennlp` command line in the test process, as a subprocess would report it."""

import logging
import os
import sys

from dapt_plugin.testing.cli import run_in_process
from tests.conftest import CONFIGS, mlm_env


def test_exit_status_and_output_are_those_of_the_command_line(tmp_path):
    help_ = run_in_process(["--help"])
    assert help_.returncode == 0 and "adapt" in help_.stdout
    unknown = run_in_process(["no-such-command"])
    assert unknown.returncode == 2 and "invalid choice: 'no-such-command'" in unknown.stderr
    # `sys.exit("message")`: the message on stderr, status 1
    missing = run_in_process(
        ["vocab-overlap", f"Gone={tmp_path / 'missing.txt'}", "--output-dir", str(tmp_path)]
    )
    assert missing.returncode == 1 and f"{tmp_path / 'missing.txt'}: no such file" in missing.stderr


def test_an_uncaught_user_error_is_reported_in_one_line_and_the_process_is_put_back(
    tiny_model, tmp_path
):
    def process_state():
        root = logging.getLogger()
        return (
            dict(os.environ),
            os.getcwd(),
            list(root.handlers),
            root.level,
            sys.argv,
            sys.excepthook,
        )

    before = process_state()
    env = mlm_env(tiny_model, TAPT_PATH="missing.jsonl")
    run = run_in_process(["train", str(CONFIGS / "tapt.jsonnet"), "-s", "run"], env, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.splitlines()[-1].startswith("Error: missing.jsonl: no such file")
    assert "Traceback" not in run.stderr
    assert process_state() == before
