from dapt_plugin.common.distributed import rank, world_size


def test_a_process_outside_a_distributed_run_is_worker_0_of_1():
    assert (rank(), world_size()) == (0, 1)
