import numpy as np
import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data.samplers import BatchSampler

from dapt_plugin.data.samplers import LengthSortedBatchSampler, SeededShuffleBatchSampler
from tests.data.samplers import padding_share, task_like_instances


def test_batches_are_cut_from_the_lengths_sorted_longest_first():
    instances = task_like_instances()
    lengths = [len(instance["tokens"]) for instance in instances]
    sampler = LengthSortedBatchSampler(batch_size=16)
    batches = list(sampler.get_batch_indices(instances))
    assert len(batches) == sampler.get_num_batches(instances) == 13
    assert [len(batch) for batch in batches] == [16] * 12 + [11]
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(instances)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    # ties keep the data's order
    for first, second in zip(flat, flat[1:]):
        if lengths[first] == lengths[second]:
            assert first < second


def test_every_pass_gives_the_same_batches_whatever_the_random_state():
    instances = task_like_instances()
    sampler = LengthSortedBatchSampler(batch_size=16)
    first = list(sampler.get_batch_indices(instances))
    np.random.seed(3)
    assert list(sampler.get_batch_indices(instances)) == first
    assert list(LengthSortedBatchSampler(batch_size=16).get_batch_indices(instances)) == first


def test_batches_hold_almost_no_padding_against_batches_in_the_datas_order():
    instances = task_like_instances()
    in_order = [list(range(start, min(start + 16, 203))) for start in range(0, 203, 16)]
    sorted_batches = list(LengthSortedBatchSampler(batch_size=16).get_batch_indices(instances))
    shuffled = list(SeededShuffleBatchSampler(batch_size=16).get_batch_indices(instances))
    assert padding_share(in_order, instances) > 0.4
    assert padding_share(shuffled, instances) > 0.4
    assert padding_share(sorted_batches, instances) < 0.1  # the long tail's batch holds most of it


def test_is_built_from_a_config():
    sampler = BatchSampler.from_params(Params({"type": "length_sorted", "batch_size": 8}))
    assert isinstance(sampler, LengthSortedBatchSampler)
    assert sampler.get_batch_size() == 8


def test_a_batch_size_below_one_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigurationError, match="`batch_size` must be at least 1; got 0"):
        LengthSortedBatchSampler(batch_size=0)
