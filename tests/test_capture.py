"""Graph capture of the GhostNet family: torch.fx, torchvision's feature extraction and
torch.export (dynamic batch, H and W), in training and deploy form; captured graphs
equal the eager network at odd and non-square sizes (docs/capture.md)."""
import functools

import pytest
import torch
from torch.fx import symbolic_trace

from ghostnetv2_mm.models import FAMILY
from ghostnetv2_mm.models.capture import (EXPORT_MIN_SIDE, PLAIN_EXPORT_MIN_SIDE,
                                          export_backbone)

# Every test compares a captured graph's floats with the eager network's
pytestmark = pytest.mark.numerics

FORMS = ['train', 'deploy']
CASES = [(family, form) for family in FAMILY for form in FORMS]
IDS = [f'{family}-{form}' for family, form in CASES]
# torch.export traces every op with symbolic sizes (seconds per bottleneck): its
# family x form matrix runs on one bottleneck per stage, with the strides, kernels,
# SE and DFC rule of the real table (DFC from the third block on, the last one at
# stride 32, so its gate is 1 px for inputs under 64 px).
COMPACT = [[[3, 16, 16, 0, 1]], [[3, 48, 24, 0, 2]], [[5, 72, 40, 0.25, 2]],
           [[3, 240, 80, 0, 2]], [[5, 672, 160, 0.25, 2]], [[5, 960, 160, 0.25, 1]]]


def build(family, form, channels_last=True, **kwargs):
    torch.manual_seed(0)
    model = FAMILY[family](**kwargs)
    # BN statistics of a batch (as training leaves them): folding them is not an
    # identity, and the features keep a unit scale, where atol 1e-5 means float32
    # rounding (with the initial statistics V3's summed branches reach |x| ~ 80)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative: the statistics of this one batch
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 64, 64))
    model.eval()
    if form == 'deploy':
        model.switch_to_deploy(channels_last=channels_last)
    return model


def assert_equal_outputs(captured, model, sizes, atol=1e-5):
    gen = torch.Generator().manual_seed(1)
    for size in sizes:
        x = torch.randn(*size, generator=gen)
        with torch.no_grad():
            expected = model(x)
            got = captured(x.clone())
        got = tuple(got.values()) if isinstance(got, dict) else tuple(got)
        assert len(got) == len(expected), size
        for a, b in zip(got, expected):
            assert a.shape == b.shape, size
            torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=f'{size}')


@pytest.mark.parametrize('family, form', CASES, ids=IDS)
def test_fx_graph_equals_eager_at_odd_sizes(family, form):
    model = build(family, form)
    graph = symbolic_trace(model)
    assert_equal_outputs(graph, model, [(1, 3, 33, 47), (2, 3, 65, 97)])


@pytest.mark.parametrize('form', FORMS)
def test_fx_graph_equals_eager_down_to_one_pixel(form):
    # the DFC pooling kernel min(2, side) is picked when the graph runs, not when traced
    model = build('GhostNetV2', form)
    graph = symbolic_trace(model)
    assert_equal_outputs(graph, model, [(1, 3, 1, 1), (1, 3, 5, 32), (1, 3, 17, 2)])


@pytest.mark.parametrize('arch', ['1.3x', '1.6x'])
def test_fx_traces_every_arch(arch):
    model = build('GhostNetV3', 'train', arch=arch)
    assert_equal_outputs(symbolic_trace(model), model, [(1, 3, 33, 47)])


def test_fx_graph_keeps_the_input_check():
    graph = symbolic_trace(build('GhostNetV2', 'train'))
    with pytest.raises(ValueError, match=r'GhostNetV2: input of shape \(1, 4, 32, 32\) '
                                         r'does not match in_channels=3'):
        graph(torch.randn(1, 4, 32, 32))


@pytest.mark.parametrize('family, form', CASES, ids=IDS)
def test_feature_extractor_taps_the_layers_by_name(family, form):
    from torchvision.models.feature_extraction import create_feature_extractor
    model = build(family, form)
    names = {model.feature_info[i]['module']: f'c{k + 2}'
             for k, i in enumerate(model.out_indices)}
    assert list(names) == ['layer3', 'layer5', 'layer7', 'layer9']
    extractor = create_feature_extractor(model, names)
    assert_equal_outputs(extractor, model, [(1, 3, 33, 47), (2, 3, 65, 97)])


@functools.lru_cache(maxsize=None)
def exported(family, form):
    """The compact backbone and its program over sides 33..1024 (exported once)."""
    model = build(family, form, channels_last=False, arch=COMPACT, out_indices=(2, 3, 4, 6))
    return model, export_backbone(model)


@pytest.mark.parametrize('family, form', CASES, ids=IDS)
def test_export_equals_eager_over_dynamic_batch_and_sides(family, form):
    model, program = exported(family, form)
    # 33x47: the last DFC gate is 1 px; batch 1 and 3 with one program
    assert_equal_outputs(program.module(), model, [(1, 3, 33, 47), (3, 3, 65, 97)])


def test_export_of_the_channels_last_deploy_form_at_1x():
    # The failing case: the default (channels-last) deploy form, 1.0x, plain
    # torch.export from 97 px up.
    model = build('GhostNetV2', 'deploy')
    program = export_backbone(model, min_side=PLAIN_EXPORT_MIN_SIDE, max_side=512)
    assert_equal_outputs(program.module(), model, [(1, 3, 97, 131), (2, 3, 161, 99)])


def test_exported_program_refuses_smaller_sides_in_one_line():
    program = exported('GhostNet', 'train')[1].module()
    with pytest.raises(Exception) as error:
        program(torch.randn(1, 3, EXPORT_MIN_SIDE - 1, 40))
    assert 'Guard failed' in str(error.value) and '\n' not in str(error.value).strip()


@pytest.mark.parametrize('kwargs, words', [
    (dict(min_side=32), ['min_side=32', f'>= {EXPORT_MIN_SIDE}']),
    (dict(min_side=64, max_side=48), ['max_side=48', '>= min_side (64)']),
], ids=['below-33', 'max-below-min'])
def test_export_backbone_names_a_range_it_cannot_cover(kwargs, words):
    with pytest.raises(ValueError) as error:
        export_backbone(build('GhostNetV2', 'train'), **kwargs)
    assert all(word in str(error.value) for word in words)
    assert '\n' not in str(error.value)


def test_export_backbone_asks_for_nchw_deploy_form_below_97():
    model = build('GhostNetV2', 'deploy')  # channels-last
    with pytest.raises(ValueError, match=r'channels_last=False'):
        export_backbone(model, min_side=EXPORT_MIN_SIDE)
