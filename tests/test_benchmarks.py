"""The measuring library (``ghostnetv2_mm.benchmarks``): the one timing loop every
benchmark tool uses, and the description of timm's reference models. No timing is
asserted: the tests check what is called, in which order, and how it is summarised."""
import pytest

from ghostnetv2_mm.benchmarks.timing import interleaved, median_ratio, percentile
from ghostnetv2_mm.benchmarks.timm_reference import timm_name


def recorder(calls, name):
    return lambda: calls.append(name)


def test_interleaved_warms_every_model_up_then_runs_each_once_per_round():
    calls = []
    times = interleaved({'a': recorder(calls, 'a'), 'b': recorder(calls, 'b')},
                        rounds=3, warmup=2)
    assert calls == ['a', 'a', 'b', 'b'] + ['a', 'b'] * 3
    assert [len(t) for t in times.values()] == [3, 3]


def test_interleaved_times_a_block_of_calls_between_two_syncs():
    calls = []
    times = interleaved({'a': recorder(calls, 'a')}, rounds=2, calls=3,
                        sync=recorder(calls, 'sync'))
    assert calls == ['sync', 'a', 'a', 'a', 'sync'] * 2
    assert len(times['a']) == 2


def test_interleaved_refuses_zero_rounds_naming_the_argument():
    with pytest.raises(ValueError, match=r'rounds=0 must be >= 1'):
        interleaved({'a': lambda: None}, rounds=0)


def test_percentile_interpolates_between_the_sorted_values():
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.1) == pytest.approx(1.3)
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.9) == pytest.approx(3.7)


def test_median_ratio_pairs_each_round_with_the_baselines_same_round():
    # the median of per-round ratios (1, 2, 4), not the ratio of the medians (2 / 1.5)
    assert median_ratio([1.0, 2.0, 4.0], [1.0, 1.0, 1.0]) == 2.0
    assert median_ratio([2.0, 2.0, 2.0], [2.0, 1.0, 0.5]) == 2.0


@pytest.mark.parametrize('type_name,arch,name', [
    ('GhostNetV2', '1.6x', 'ghostnetv2_160'), ('GhostNet', '1.0x', 'ghostnet_100'),
    ('GhostNetV3', '1.3x', 'ghostnetv3_130')])
def test_timm_name_of_each_family_and_width(type_name, arch, name):
    assert timm_name(type_name, arch) == name


def test_timm_name_refuses_a_width_timm_lacks_naming_what_it_has():
    with pytest.raises(ValueError, match=r"arch='1.6x' for GhostNet; timm has 1.0x, 1.3x"):
        timm_name('GhostNet', '1.6x')
