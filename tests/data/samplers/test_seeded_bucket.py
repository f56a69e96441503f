import numpy as np
import pytest
from allennlp.common import Params
from allennlp.common.checks import ConfigurationError
from allennlp.data.samplers import BatchSampler

from dapt_plugin.data.samplers import SeededBucketBatchSampler, SeededShuffleBatchSampler
from tests.data.samplers import padding_share, task_like_instances


def _passes(sampler, instances, count):
    return [list(sampler.get_batch_indices(instances)) for _ in range(count)]


def test_every_instance_is_in_one_batch_of_every_pass():
    instances = task_like_instances()
    sampler = SeededBucketBatchSampler(batch_size=16, seed=3)
    for batches in _passes(sampler, instances, 3):
        assert len(batches) == sampler.get_num_batches(instances) == 13
        assert sorted(i for batch in batches for i in batch) == list(range(len(instances)))
        assert sorted(len(batch) for batch in batches)[1:] == [16] * 12  # one batch of 11


def test_drop_last_leaves_out_a_random_remainder_and_keeps_batches_full():
    instances = task_like_instances()
    sampler = SeededBucketBatchSampler(batch_size=16, seed=3, drop_last=True)
    left_out = []
    for batches in _passes(sampler, instances, 4):
        assert [len(batch) for batch in batches] == [16] * 12
        used = [i for batch in batches for i in batch]
        assert len(set(used)) == 192
        left_out.append(set(range(len(instances))) - set(used))
    # not always the same (the longest) instances
    assert len(set.union(*left_out)) > 11


def test_each_pass_is_a_function_of_the_seed_and_the_pass_alone():
    instances = task_like_instances()
    first = _passes(SeededBucketBatchSampler(batch_size=16, seed=5), instances, 3)
    # a new sampler (a resumed run) replays the same passes, whatever the global random state
    np.random.seed(1)
    assert _passes(SeededBucketBatchSampler(batch_size=16, seed=5), instances, 3) == first
    assert first[0] != first[1] != first[2]
    assert _passes(SeededBucketBatchSampler(batch_size=16, seed=6), instances, 1)[0] != first[0]


def test_batches_hold_far_less_padding_than_random_batches():
    instances = task_like_instances()
    bucketed = _passes(SeededBucketBatchSampler(batch_size=16), instances, 5)
    shuffled = _passes(SeededShuffleBatchSampler(batch_size=16), instances, 5)
    bucketed_share = np.mean([padding_share(batches, instances) for batches in bucketed])
    shuffled_share = np.mean([padding_share(batches, instances) for batches in shuffled])
    assert shuffled_share > 0.4
    assert bucketed_share < 0.15  # the noise (10% of a length) costs some


def test_without_noise_batches_are_cut_from_the_sorted_lengths():
    instances = task_like_instances()
    lengths = [len(instance["tokens"]) for instance in instances]
    sampler = SeededBucketBatchSampler(batch_size=16, padding_noise=0.0)
    batches = sorted(next(_passes(sampler, instances, 1).__iter__()), key=lambda b: lengths[b[0]])
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)


def test_is_built_from_a_config():
    sampler = BatchSampler.from_params(
        Params({"type": "seeded_bucket", "batch_size": 8, "seed": 2, "padding_noise": 0.2})
    )
    assert isinstance(sampler, SeededBucketBatchSampler)
    assert (sampler.get_batch_size(), sampler.seed, sampler.padding_noise) == (8, 2, 0.2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"padding_noise": 1.0}, "`padding_noise` must be in [0, 1); got 1.0"),
        ({"padding_noise": -0.1}, "`padding_noise` must be in [0, 1); got -0.1"),
        ({"batch_size": 0}, "`batch_size` must be at least 1; got 0"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_it(kwargs, message):
    with pytest.raises(ConfigurationError) as error:
        SeededBucketBatchSampler(**{"batch_size": 16, **kwargs})
    assert str(error.value).strip("'\"") == message
