"""`benchmarks/gpu.py` on a machine without CUDA, as every CI machine is: it stops at once, saying why."""

import pytest
import torch


def test_without_cuda_the_gpu_benchmark_stops_at_once_saying_so_on_one_line(monkeypatch):
    import gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        gpu.main([])
    # sys.exit with a message: exit status 1, the message on stderr
    assert stop.value.code == gpu.NO_CUDA and "\n" not in gpu.NO_CUDA
    assert gpu.NO_CUDA.startswith("benchmarks/gpu.py needs a CUDA GPU")


def test_a_bad_run_is_refused_naming_it():
    import gpu

    assert gpu.parse_runs("128:bf16,512:fp16") == [(128, "bf16"), (512, "fp16")]
    with pytest.raises(SystemExit, match="--runs: '512:fp32' is not LENGTH:PRECISION"):
        gpu.parse_runs("128:bf16,512:fp32")
