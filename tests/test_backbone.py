"""Behaviour of the GhostNetV2 backbone: outputs, freezing, norms, checkpointing."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS, DefaultScope, Registry

from ghostnetv2_mm.models import GhostNetV2
from ghostnetv2_mm.models.blocks import DFCAttention

# Published channels per layer index 0-10 (stem, stages 0-8, final conv).
CHANNELS = {
    '1.0x': [16, 16, 24, 24, 40, 40, 80, 112, 160, 160, 960],
    '1.3x': [20, 20, 32, 32, 52, 52, 104, 144, 208, 208, 1248],
    '1.6x': [24, 24, 40, 40, 64, 64, 128, 180, 256, 256, 1536],
}
STRIDES = [2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 32]


@pytest.mark.parametrize('arch', ['1.0x', '1.3x', '1.6x'])
def test_every_layer_has_the_published_channels_and_stride(arch):
    model = GhostNetV2(arch, out_indices=tuple(range(11))).eval()
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == CHANNELS[arch]
    assert [64 // o.shape[-1] for o in outs] == STRIDES
    assert [f['num_chs'] for f in model.feature_info] == CHANNELS[arch]
    assert [f['reduction'] for f in model.feature_info] == STRIDES


def test_default_taps_are_the_last_block_of_each_stride():
    model = GhostNetV2().eval()
    assert model.out_indices == (3, 5, 7, 9)
    assert model.out_channels == (24, 40, 112, 160)
    outs = model(torch.rand(2, 3, 96, 128))
    assert [tuple(o.shape) for o in outs] == [
        (2, 24, 24, 32), (2, 40, 12, 16), (2, 112, 6, 8), (2, 160, 3, 4)]


def test_negative_out_indices_count_from_the_end():
    model = GhostNetV2(out_indices=(-1, 0))
    assert model.out_indices == (0, 10)
    assert model.out_channels == (16, 960)
    outs = model.eval()(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [16, 960]  # outputs follow network order


def test_dfc_attention_is_in_every_bottleneck_but_the_first_two():
    model = GhostNetV2()
    bottlenecks = [b for i in range(1, 10) for b in getattr(model, f'layer{i}')]
    assert len(bottlenecks) == 16
    assert [b.ghost1.dfc is not None for b in bottlenecks] == [False] * 2 + [True] * 14
    assert all(b.ghost2.dfc is None for b in bottlenecks)


def test_dfc_blocks_and_kernel_size_are_configurable():
    model = GhostNetV2(dfc_blocks=(0, 15), dfc_kernel_size=3)
    bottlenecks = [b for i in range(1, 10) for b in getattr(model, f'layer{i}')]
    assert [i for i, b in enumerate(bottlenecks) if b.ghost1.dfc is not None] == [0, 15]
    assert bottlenecks[0].ghost1.dfc.horizontal.conv.kernel_size == (1, 3)
    assert GhostNetV2(dfc_blocks=()).eval()(torch.rand(1, 3, 32, 32))[-1].shape[1] == 160


def test_custom_stage_table_with_widen_factor():
    table = [[[3, 16, 16, 0, 1]], [[3, 48, 24, 0, 2]], [[5, 96, 40, 0.25, 2]]]
    model = GhostNetV2(table, widen_factor=0.5, out_indices=(0, 1, 2, 3, 4)).eval()
    outs = model(torch.rand(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [8, 8, 12, 20, 48]
    assert [o.shape[-1] for o in outs] == [16, 16, 8, 4, 4]


@pytest.mark.parametrize('size', [(32, 32), (1, 1), (7, 13), (33, 65), (65, 31)])
def test_small_and_odd_inputs_work(size):
    # The reference crashes here when a side is 32 px or less (see the test below).
    model = GhostNetV2(out_indices=(10,)).eval()
    out = model(torch.rand(1, 3, *size))[0]
    expected = [s for s in size]
    for _ in range(5):  # five stride-2 layers, each ceil-halving (k odd, pad k//2)
        expected = [(s + 1) // 2 for s in expected]
    assert tuple(out.shape[-2:]) == tuple(expected)
    assert torch.isfinite(out).all()


def test_dfc_gate_on_one_pixel_side_skips_pooling_along_that_side():
    dfc = DFCAttention(4, 4).eval()
    x = torch.rand(1, 4, 1, 6)
    pooled = DFCAttention.downsample(x)
    assert pooled.shape[-2:] == (1, 3)
    torch.testing.assert_close(pooled, x.reshape(1, 4, 1, 3, 2).mean(-1))
    assert dfc(x, (1, 6)).shape == (1, 4, 1, 6)


@pytest.mark.parametrize('strides,dilations,output_stride', [
    ((1, 2, 1, 2, 1, 2, 1, 1, 1), (1, 1, 1, 1, 1, 1, 1, 2, 2), 16),
    ((1, 2, 1, 2, 1, 1, 1, 1, 1), (1, 1, 1, 1, 1, 2, 2, 4, 4), 8),
])
def test_dilated_backbone_keeps_resolution(strides, dilations, output_stride):
    model = GhostNetV2(strides=strides, dilations=dilations, out_indices=(3, 5, 7, 9, 10)).eval()
    outs = model(torch.rand(1, 3, 64, 64))
    assert outs[-1].shape[-1] == 64 // output_stride
    assert outs[-2].shape[-1] == 64 // output_stride
    # Same parameters as the undilated model: pretrained weights load unchanged.
    plain = GhostNetV2(out_indices=(3, 5, 7, 9, 10))
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}


def test_dilation_is_applied_after_the_removed_stride():
    model = GhostNetV2(strides=(1, 2, 1, 2, 1, 1, 1, 1, 1),
                       dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4))
    first = model.layer6[0]  # stage 5: its stride-2 depthwise conv became stride 1
    assert first.conv_dw.conv.stride == (1, 1)
    assert first.conv_dw.conv.dilation == (1, 1)  # the layer that had the stride
    assert first.ghost2.cheap_operation.conv.dilation == (2, 2)  # layers after it
    assert model.layer7[0].ghost1.dfc.horizontal.conv.dilation == (1, 2)
    assert model.layer9[1].ghost1.cheap_operation.conv.dilation == (4, 4)


@pytest.mark.parametrize('frozen_stages', [0, 4, 9])
def test_frozen_stages_get_no_gradients_and_stay_frozen_in_train(frozen_stages):
    model = GhostNetV2(frozen_stages=frozen_stages, out_indices=(10,))
    model.train()
    model(torch.rand(2, 3, 32, 32))[0].sum().backward()
    for i in range(11):
        layer = getattr(model, f'layer{i}')
        frozen = i <= frozen_stages
        for p in layer.parameters():
            assert p.requires_grad is not frozen
            assert (p.grad is None) is frozen
        for m in layer.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.training is not frozen


def test_frozen_stage_bn_statistics_do_not_change_in_training():
    model = GhostNetV2(frozen_stages=1).train()
    frozen = model.layer1[0].ghost1.primary_conv.bn.running_mean.clone()
    trained = model.layer2[0].ghost1.primary_conv.bn.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    torch.testing.assert_close(model.layer1[0].ghost1.primary_conv.bn.running_mean, frozen)
    assert not torch.equal(model.layer2[0].ghost1.primary_conv.bn.running_mean, trained)


def test_norm_eval_keeps_bn_statistics_while_training():
    model = GhostNetV2(norm_eval=True).train()
    stats = {k: v.clone() for k, v in model.state_dict().items() if 'running' in k}
    model(torch.rand(2, 3, 32, 32))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in stats.items())
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.training


def test_without_norm_eval_bn_statistics_update():
    model = GhostNetV2(norm_eval=False).train()
    before = model.layer0.bn.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    assert not torch.equal(model.layer0.bn.running_mean, before)


def test_with_cp_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = GhostNetV2(out_indices=(5, 9))
    checkpointed = GhostNetV2(out_indices=(5, 9), with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64)
    results = []
    for model in (plain.train(), checkpointed.train()):
        model.zero_grad()
        outs = model(x.clone().requires_grad_())
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, {n: p.grad.clone() for n, p in model.named_parameters()
                               if p.grad is not None}))
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b)
    assert results[0][1].keys() == results[1][1].keys()
    assert len(results[0][1]) > 100
    for name, grad in results[0][1].items():
        torch.testing.assert_close(grad, results[1][1][name], msg=name)


def _replace_modules(model, wanted, make):
    """Replace every submodule for which ``wanted(name, module)`` holds by ``make(module)``."""
    for name, module in list(model.named_modules()):
        if name and wanted(name, module):
            parent, _, attr = name.rpartition('.')
            setattr(model.get_submodule(parent) if parent else model, attr, make(module))
    return model


def _group_norm_like(bn, groups=4):
    gn = nn.GroupNorm(groups, bn.num_features)
    gn.load_state_dict({'weight': bn.weight, 'bias': bn.bias})
    return gn


def test_norm_cfg_builds_that_norm_everywhere_a_norm_is():
    """GN everywhere: the network equals the BN network with each BN replaced by GN."""
    ours = GhostNetV2(norm_cfg=dict(type='GN', num_groups=4), out_indices=(0, 5, 10))
    expected = _replace_modules(
        GhostNetV2(out_indices=(0, 5, 10)), lambda n, m: isinstance(m, nn.BatchNorm2d),
        _group_norm_like)
    expected.load_state_dict({k.replace('.gn.', '.bn.'): v
                              for k, v in ours.state_dict().items()}, strict=True)
    x = torch.randn(2, 3, 32, 48)
    for a, b in zip(ours.train()(x), expected.train()(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_syncbn_computes_what_bn_computes_in_eval():
    from helpers import randomise_bn
    model = randomise_bn(GhostNetV2(out_indices=(3, 10))).eval()
    synced = GhostNetV2(norm_cfg=dict(type='SyncBN'), out_indices=(3, 10))
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in synced.modules()) == \
        sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    synced.load_state_dict(model.state_dict(), strict=True)
    # SyncBN needs a process group to train; in eval it is a plain BN.
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(synced.eval()(x), model(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _activations_swapped(model, se_hidden):
    """``model`` with the ReLUs of act_cfg (se_hidden=False) or of SE's hidden layer
    (se_hidden=True) replaced by Hardswish."""
    return _replace_modules(
        model, lambda n, m: isinstance(m, nn.ReLU) and ('.se.' in n) == se_hidden,
        lambda m: nn.Hardswish())


@pytest.mark.parametrize('argument', ['act_cfg', 'se_act_cfg'])
def test_act_cfg_and_se_act_cfg_each_select_their_own_activations(argument):
    """act_cfg sets the stem, ghost1 and final-conv activations and not SE's hidden one
    (the references fix it to ReLU); se_act_cfg sets exactly that one."""
    ours = GhostNetV2(out_indices=(3, 5, 10), **{argument: dict(type='HSwish')})
    expected = _activations_swapped(GhostNetV2(out_indices=(3, 5, 10)),
                                    se_hidden=argument == 'se_act_cfg')
    expected.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours.eval()(x), expected.eval()(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        # and the swap matters: with ReLU everywhere the outputs differ
        plain = GhostNetV2(out_indices=(3, 5, 10)).eval()
        plain.load_state_dict(ours.state_dict())
        assert not torch.allclose(plain(x)[-1], ours(x)[-1], rtol=1e-2, atol=0)


def test_se_hidden_activation_is_relu_by_default():
    from ghostnetv2_mm.models.blocks import SqueezeExcite
    torch.manual_seed(0)
    se = GhostNetV2(act_cfg=dict(type='HSwish')).layer4[0].se
    assert isinstance(se, SqueezeExcite)
    x = torch.randn(2, se.conv_reduce.conv.in_channels, 5, 6)
    pooled = x.mean((2, 3), keepdim=True)
    hidden = torch.relu(se.conv_reduce.conv(pooled))
    expected = x * torch.nn.functional.relu6(se.conv_expand.conv(hidden) + 3) / 6
    torch.testing.assert_close(se(x), expected)


class _ToyNorm2d(nn.GroupNorm):
    """A norm layer only a (toy) toolkit registers: GroupNorm with one group."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__(1, num_features, eps=eps)


_TOOLKIT = Registry('model', parent=MODELS, scope='ghostnet_test_toolkit')
_TOOLKIT.register_module(name='ToyNorm2d', module=_ToyNorm2d)


@pytest.mark.parametrize('how', ['default scope', 'scope prefix'])
def test_norm_cfg_accepts_a_norm_registered_under_a_toolkit_scope(how):
    """Like mmpretrain's LN2d: registered in a toolkit's child registry, found the way
    mmcv's build_norm_layer finds it (the default scope, or an explicit prefix)."""
    if how == 'default scope':
        with DefaultScope.overwrite_default_scope('ghostnet_test_toolkit'):
            model = GhostNetV2(norm_cfg=dict(type='ToyNorm2d'), out_indices=(3, 10))
    else:
        model = GhostNetV2(norm_cfg=dict(type='ghostnet_test_toolkit.ToyNorm2d'),
                           out_indices=(3, 10))
    assert type(model.layer0.gn) is _ToyNorm2d
    expected = GhostNetV2(norm_cfg=dict(type='GN', num_groups=1), out_indices=(3, 10))
    expected.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    for a, b in zip(model(x), expected(x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_toolkit_norm_outside_its_scope_is_refused_by_name():
    with pytest.raises(KeyError, match="norm_cfg.*'ToyNorm2d' is not registered"):
        GhostNetV2(norm_cfg=dict(type='ToyNorm2d'))


def test_mmpretrain_ln2d_under_the_mmpretrain_scope():
    import mmpretrain.models  # noqa: F401  (registers LN2d)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = GhostNetV2(norm_cfg=dict(type='LN2d'), out_indices=(0,))
    conv, norm = model.layer0.conv, model.layer0.ln
    assert type(norm).__name__ == 'LayerNorm2d'
    x = torch.randn(1, 3, 16, 16)
    y = conv(x).permute(0, 2, 3, 1)  # LN over the channels of each pixel
    expected = torch.relu(nn.functional.layer_norm(y, y.shape[-1:], norm.weight, norm.bias,
                                                   norm.eps)).permute(0, 3, 1, 2)
    torch.testing.assert_close(model(x)[0], expected)


def test_pretrained_argument_becomes_a_pretrained_init_cfg():
    model = GhostNetV2(pretrained='some/file.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='some/file.pth')


def test_layers_after_the_last_output_are_neither_run_nor_trained():
    model = GhostNetV2(out_indices=(3, 5)).train()
    ran = []
    model.layer6.register_forward_hook(lambda *args: ran.append(6))
    model(torch.rand(1, 3, 32, 32))
    assert ran == []
    assert not any(p.requires_grad for i in range(6, 11)
                   for p in getattr(model, f'layer{i}').parameters())
    assert all(p.requires_grad for p in model.layer5.parameters())


def test_freezing_every_layer_leaves_nothing_trainable():
    model = GhostNetV2(frozen_stages=10).train()
    assert not any(p.requires_grad for p in model.parameters())
    assert not model(torch.rand(1, 3, 32, 32))[-1].requires_grad


def test_inference_without_autograd_equals_the_autograd_forward():
    """Without autograd the deployed blocks take their inference shortcuts (in-place
    gating, SE product and residual adds); the values must not change."""
    torch.manual_seed(0)
    model = GhostNetV2(out_indices=(3, 5, 7, 9, 10)).eval().switch_to_deploy()
    x = torch.randn(2, 3, 96, 64)
    with_grad = [out.detach() for out in model(x)]
    with torch.no_grad():
        without_grad = model(x)
    for a, b in zip(with_grad, without_grad):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('order', [('conv', 'norm', 'act'), ('norm', 'conv', 'act')])
def test_fast_conv_module_computes_what_mmcv_conv_module_computes(order):
    """The blocks' FastConvModule only shortens mmcv's forward; every order gives mmcv's
    result with the same weights (the non-plain order through mmcv's own code)."""
    from mmcv.cnn import ConvModule as MMCVConvModule

    from ghostnetv2_mm.models.conv_module import FastConvModule
    kwargs = dict(in_channels=4, out_channels=8, kernel_size=3, padding=1, order=order,
                  norm_cfg=dict(type='BN'))
    torch.manual_seed(0)
    ours, reference = FastConvModule(**kwargs).eval(), MMCVConvModule(**kwargs).eval()
    ours.bn.running_mean.uniform_(-1, 1)
    ours.bn.running_var.uniform_(0.5, 2)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 9, 7)
    for kw in (dict(), dict(norm=False), dict(activate=False)):
        torch.testing.assert_close(ours(x, **kw), reference(x, **kw), rtol=0, atol=0)


def test_make_divisible_rounds_like_the_reference():
    """Every channel count goes through this rounding. timm's make_divisible is the
    reference's _make_divisible: the nearest multiple, at least the divisor, and one
    divisor more where that would fall over 10% below the value (e.g. 5 -> 8)."""
    from timm.layers import make_divisible as reference

    from ghostnetv2_mm.models.utils import make_divisible
    values = [v / 10 for v in range(1, 3001)]  # 0.1 .. 300.0
    for divisor in (4, 8):
        assert [make_divisible(v, divisor) for v in values] == \
            [reference(v, divisor) for v in values]
    assert make_divisible(5, 4) == 8  # the 10% rule is among the values checked


def test_the_reference_fails_where_a_side_is_32_pixels_or_less_and_this_one_works():
    """What the README says about small inputs, measured on timm's ghostnetv2_100 (the
    reference's structure): its DFC branch 2x2-pools the 1-pixel stride-32 map."""
    import timm
    reference = timm.create_model('ghostnetv2_100', pretrained=False).eval()
    ours = GhostNetV2(out_indices=(10,)).eval()
    with torch.no_grad():
        for size in [(32, 32), (32, 224), (224, 32)]:
            with pytest.raises(RuntimeError, match='Output size is too small'):
                reference(torch.zeros(1, 3, *size))
            assert ours(torch.zeros(1, 3, *size))[0].shape[-2:] == \
                tuple((s + 31) // 32 for s in size)
        for size in [(33, 33), (33, 224)]:
            reference(torch.zeros(1, 3, *size))
