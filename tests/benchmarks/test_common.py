"""`benchmarks/_common.py`: what the benchmarks' `allennlp train` processes get."""

import os


def test_the_training_environment_keeps_the_pythonpath_the_packages_may_be_on(
    monkeypatch, tmp_path
):
    import _common

    monkeypatch.setenv("PYTHONPATH", "/tmp/site")  # where offline_site.py's archive is unpacked
    env = _common.dapt_env(tmp_path / "model", tmp_path / "corpus.txt", tmp_path / "cache", 1)
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(_common.REPO / "benchmarks"),
        str(_common.REPO),
        "/tmp/site",
    ]
    assert env["OMP_NUM_THREADS"] == "1" and env["CUDA_DEVICES"] == "-1"
