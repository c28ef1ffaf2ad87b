"""Behaviours that ``make mutants`` (tools/dev/mutants.py) found without a test of
their own: strict loading refuses each kind of misfit alone, and BatchNorm folding
keeps eps. Each test here kills a mutant of tools/dev/mutant_list.py."""
import pytest
import torch

from ghostnetv2_mm.checkpoint import CheckpointMismatch, load_model_weights
from ghostnetv2_mm.models import GhostNetV2

from conftest import randomise_bn

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


def test_folding_a_batch_norm_keeps_its_eps():
    """Where a channel's running variance is comparable to eps (1e-5), folding without
    eps would scale it by up to sqrt(2)."""
    from ghostnetv2_mm.models.conv_module import ConvModule
    from ghostnetv2_mm.models.deploy import fuse_conv_module
    module = ConvModule(4, 6, 3, padding=1, norm_cfg=dict(type='BN'), act_cfg=None).eval()
    module.bn.running_var.uniform_(1e-6, 1e-5)
    module.bn.running_mean.uniform_(-1, 1)
    x = torch.randn(2, 4, 7, 5)
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(fuse_conv_module(module)(x), expected,
                                   rtol=1e-5, atol=1e-5 * expected.abs().max().item())
