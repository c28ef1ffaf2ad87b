"""Numerics of the GhostNetV2 backbone over many input sizes, widths, output strides
and taps, and under bfloat16 autocast (issue 6 §4).

Stride arithmetic (what the shape properties check)
---------------------------------------------------
Every layer that reduces resolution is a k x k conv (k = 3 or 5) with stride 2,
padding p = d * (k - 1) / 2 and dilation d (the stem: k = 3, d = 1; a bottleneck:
its depthwise conv and its shortcut's depthwise conv, both alike). Its output size is

    floor((n + 2p - d(k - 1) - 1) / 2) + 1 = floor((n - 1) / 2) + 1 = (n + 1) // 2,

i.e. ceil(n / 2), whatever k and d. Every other layer keeps the size (stride 1 with
"same" padding; the DFC gate is pooled, then resized back to the size it gates).
So the output of layer i has size f^s(n), with f(n) = (n + 1) // 2 applied once per
stride-2 layer up to i: s = 1 (stem) + the number of stride-2 stages among the
stages 0..i-1. For a 1-pixel side, f(1) = 1: the size never drops below 1.
"""
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ghostnetv2_mm.models import GhostNetV2
from ghostnetv2_mm.models.blocks import DFCAttention

ARCHS = ('1.0x', '1.3x', '1.6x')
NUM_LAYERS = 11
# output stride -> per-stage (strides, dilations) of stages 0-8 (None: the arch's)
OUTPUT_STRIDES = {
    32: dict(strides=None, dilations=None),
    16: dict(strides=(1, 2, 1, 2, 1, 2, 1, 1, 1), dilations=(1, 1, 1, 1, 1, 1, 1, 2, 2)),
    8: dict(strides=(1, 2, 1, 2, 1, 1, 1, 1, 1), dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4)),
}
ARCH_STAGE_STRIDES = (1, 2, 1, 2, 1, 2, 1, 2, 1)

# No shrinking: a failure is reported as found, instead of minutes of re-running
# full-size forwards to minimise it.
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
sizes = st.integers(min_value=1, max_value=300)


def halve(n: int) -> int:
    """Output size of a stride-2 k x k conv with padding d(k-1)/2: ceil(n / 2)."""
    return (n + 1) // 2


def expected_size(n: int, layer: int, output_stride: int) -> int:
    """Size of layer ``layer``'s output for an input side of ``n`` pixels."""
    stage_strides = OUTPUT_STRIDES[output_stride]['strides'] or ARCH_STAGE_STRIDES
    halvings = 1 + sum(1 for s in stage_strides[:layer] if s == 2)  # stem + stages
    for _ in range(halvings):
        n = halve(n)
    return n


def test_the_model_has_the_documented_output_strides_and_the_formula_sizes():
    """The model's own output description and its outputs follow the formula above;
    1.0x models of every output stride, on a few sizes including the 1-pixel cases."""
    for output_stride in OUTPUT_STRIDES:
        model = backbone('1.0x', output_stride)
        assert model.feature_info[-1]['reduction'] == output_stride
        for n in (1, 2, 31, 32, 33, 63, 224):
            with torch.no_grad():
                outs = model(torch.randn(1, 3, n, n))
            assert [o.shape[-1] for o in outs] == \
                [expected_size(n, layer, output_stride) for layer in range(NUM_LAYERS)], n
            if n == 224:
                assert [224 // o.shape[-1] for o in outs] == [f['reduction'] for f in model.feature_info]


_MODELS = {}


def backbone(arch: str, output_stride: int) -> GhostNetV2:
    """All 11 layers tapped, eval mode; built once per (arch, output stride)."""
    key = (arch, output_stride)
    if key not in _MODELS:
        torch.manual_seed(0)
        _MODELS[key] = GhostNetV2(arch=arch, out_indices=tuple(range(NUM_LAYERS)),
                                  **OUTPUT_STRIDES[output_stride]).eval()
    return _MODELS[key]


@SETTINGS
@given(arch=st.sampled_from(ARCHS), output_stride=st.sampled_from(sorted(OUTPUT_STRIDES)),
       height=sizes, width=sizes)
def test_every_layer_follows_the_stride_arithmetic_and_stays_finite(
        arch, output_stride, height, width):
    model = backbone(arch, output_stride)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, height, width))
    assert len(outs) == NUM_LAYERS
    for layer, out in enumerate(outs):
        assert out.shape == (1, model.feature_info[layer]['num_chs'],
                             expected_size(height, layer, output_stride),
                             expected_size(width, layer, output_stride)), \
            f'layer {layer} at input {height}x{width}, OS{output_stride}'
        assert torch.isfinite(out).all(), f'layer {layer} not finite at {height}x{width}'


@settings(SETTINGS, max_examples=12)
@given(out_indices=st.lists(st.integers(min_value=-NUM_LAYERS, max_value=NUM_LAYERS - 1),
                            min_size=1, max_size=5,
                            unique_by=lambda i: i % NUM_LAYERS),
       output_stride=st.sampled_from(sorted(OUTPUT_STRIDES)),
       height=st.integers(1, 128), width=st.integers(1, 128))
def test_out_indices_select_exactly_those_layers_in_their_order(
        out_indices, output_stride, height, width):
    full = backbone('1.0x', output_stride)
    torch.manual_seed(0)
    model = GhostNetV2(arch='1.0x', out_indices=tuple(out_indices),
                       **OUTPUT_STRIDES[output_stride]).eval()
    model.load_state_dict(full.state_dict())
    x = torch.randn(1, 3, height, width)
    with torch.no_grad():
        outs, all_outs = model(x), full(x)
    # out_indices are returned in layer order (like mmpretrain's MobileNetV3)
    layers = sorted(i % NUM_LAYERS for i in out_indices)
    assert len(outs) == len(layers)
    # out_channels describes the outputs as returned (what necks are built from)
    assert model.out_channels == tuple(o.shape[1] for o in outs)
    assert model.out_channels == tuple(full.feature_info[i]['num_chs'] for i in layers)
    for out, layer in zip(outs, layers):
        assert out.shape[-2:] == (expected_size(height, layer, output_stride),
                                  expected_size(width, layer, output_stride))
        torch.testing.assert_close(out, all_outs[layer], rtol=0, atol=0)


# ------------------------------------------------------------------------- autocast
def _dfc_probes(model):
    """Record the dtypes of every DFC branch's last conv and of its gate."""
    seen = {'conv': set(), 'gate': set(), 'gate_range': []}

    def on_conv(_module, _inputs, output):
        seen['conv'].add(output.dtype)

    def on_gate(_module, _inputs, output):
        seen['gate'].add(output.dtype)
        seen['gate_range'].append((output.min().item(), output.max().item()))

    handles = []
    for module in model.modules():
        if isinstance(module, DFCAttention):
            handles.append(module.vertical.register_forward_hook(on_conv))
            handles.append(module.register_forward_hook(on_gate))
    return seen, handles


@pytest.mark.numerics
@pytest.mark.parametrize('arch', ARCHS)
def test_bfloat16_autocast_forward_and_backward_stay_finite(arch):
    torch.manual_seed(0)
    model = GhostNetV2(arch=arch, out_indices=(3, 5, 7, 9, 10)).train()
    x = torch.randn(2, 3, 96, 80)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
        loss = sum(o.float().pow(2).mean() for o in outs)
    assert all(o.dtype == torch.bfloat16 for o in outs)  # autocast really ran
    assert all(torch.isfinite(o.float()).all() for o in outs)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_dfc_gate_is_computed_in_float32_under_autocast():
    torch.manual_seed(0)
    model = GhostNetV2(arch='1.0x').eval()
    seen, handles = _dfc_probes(model)
    try:
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
            model(torch.randn(1, 3, 64, 96))
    finally:
        for handle in handles:
            handle.remove()
    assert len(seen['gate_range']) == 14  # every bottleneck but the first two
    assert seen['conv'] == {torch.bfloat16}  # the DFC convs run in bfloat16 ...
    assert seen['gate'] == {torch.float32}   # ... the sigmoid gate in float32
    assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in seen['gate_range'])


@pytest.mark.numerics
def test_dfc_gate_under_autocast_equals_float32_sigmoid_of_the_branch():
    torch.manual_seed(0)
    dfc = DFCAttention(16, 24).eval()
    x = torch.randn(2, 16, 9, 14)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        attn = dfc.vertical(dfc.horizontal(dfc.reduce(dfc.downsample(x))))
        gate = dfc(x, (9, 14))
    assert attn.dtype == torch.bfloat16 and gate.dtype == torch.float32
    reference = torch.nn.functional.interpolate(torch.sigmoid(attn.float()), size=(9, 14),
                                                mode='nearest')
    torch.testing.assert_close(gate, reference, rtol=0, atol=0)


@pytest.mark.numerics
def test_dfc_product_under_autocast_rounds_the_float32_gate_once():
    """What the DFCAttention docstring states: the gate is float32; the gated features
    are the bfloat16 features times the gate rounded to bfloat16, nothing else."""
    from ghostnetv2_mm.models.blocks import GhostModule
    torch.manual_seed(0)
    ghost = GhostModule(16, 24, dfc_cfg=dict()).eval()
    x = torch.randn(2, 16, 9, 14)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = ghost(x)
        intrinsic = ghost.primary_conv(x)
        features = torch.cat([intrinsic, ghost.cheap_operation(intrinsic)], dim=1)
        gate = ghost.dfc(x, (9, 14))
    assert features.dtype == out.dtype == torch.bfloat16 and gate.dtype == torch.float32
    torch.testing.assert_close(out, features * gate.to(torch.bfloat16), rtol=0, atol=0)
    # the float32 product differs from it by bfloat16 rounding only (8 bits: 2^-8)
    exact = features.float() * gate
    assert ((out.float() - exact).abs() <= exact.abs() * 2 ** -7 + 1e-30).all()
