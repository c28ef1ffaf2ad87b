"""Strict loading refuses each kind of misfit alone (one missing, one unexpected
tensor) and loads nothing; only BatchNorm's counters may be missing."""
import pytest
import torch

from ghostnetv2_mm.checkpoint import CheckpointMismatch, load_model_weights
from ghostnetv2_mm.models import GhostNetV2

from helpers import randomise_bn

KEY = 'layer7.0.ghost1.dfc.vertical.bn.running_var'


@pytest.fixture
def model_and_state():
    """A fresh backbone and the state dict of another, with distinct BN statistics."""
    source = randomise_bn(GhostNetV2(out_indices=(10,)), seed=1)
    return GhostNetV2(out_indices=(10,)), source.state_dict()


def _unchanged(model, before):
    return all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_checkpoint_missing_one_weight_is_refused_and_nothing_is_loaded(
        model_and_state):
    model, state = model_and_state
    del state[KEY]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatch, match=f'1 missing: {KEY}') as info:
        load_model_weights(model, state)
    assert (info.value.missing, info.value.unexpected, info.value.mismatched) == \
        ([KEY], [], [])
    assert _unchanged(model, before)


def test_a_checkpoint_with_one_unexpected_tensor_is_refused_and_nothing_is_loaded(
        model_and_state):
    model, state = model_and_state
    state['layer7.0.ghost1.dfc.extra.weight'] = torch.zeros(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatch, match='1 unexpected') as info:
        load_model_weights(model, state)
    assert info.value.unexpected == ['layer7.0.ghost1.dfc.extra.weight']
    assert info.value.missing == [] and info.value.mismatched == []
    assert _unchanged(model, before)


def test_only_the_batch_norm_counters_may_be_missing(model_and_state):
    model, state = model_and_state
    state = {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}
    load_model_weights(model, state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
