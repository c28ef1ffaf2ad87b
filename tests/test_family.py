"""GhostNet (V1) and GhostNetV3 next to GhostNetV2: parity with timm (the oracle, a
required test dependency), GhostNetV3's deploy folding, the official / timm key layouts,
and that swapping ``type=`` changes nothing but the network."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from timm.utils.model import reparameterize_model

from ghostnetv2_mm import models
from ghostnetv2_mm.benchmarks.timm_reference import create_timm_model, timm_layers
from ghostnetv2_mm.checkpoint import LAYOUTS, CheckpointError, find_layout, load_model_weights
from ghostnetv2_mm.models import GhostNet, GhostNetV2, GhostNetV3, build_classifier
from ghostnetv2_mm.models.deploy import DeployConv2d
from ghostnetv2_mm.utils import count_macs, count_parameters

from helpers import ROOT, randomise_bn

FAMILY = models.FAMILY
ALL_LAYERS = tuple(range(11))
# timm's stem, then its stages blocks.0 - blocks.9: our layers 0-10. The last block
# of each stride is layer 3 (/4), 5 (/8), 7 (/16), 9 (/32).
LAST_OF_EACH_STRIDE = (0, 3, 5, 7, 9, 10)


def timm_model(type_name: str) -> torch.nn.Module:
    """timm's 1.0x model of ``type_name`` with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    return randomise_bn(create_timm_model(type_name)).eval()


def ours_from(reference, cls, **kwargs):
    model = cls(out_indices=ALL_LAYERS, **kwargs)
    # torch's own loader: the backbone's pre-hook renames timm's keys and drops its
    # classifier head; strict, so every weight must find its place.
    model.load_state_dict(reference.state_dict(), strict=True)
    return model.eval()


def max_diffs(got, expected, layers=LAST_OF_EACH_STRIDE):
    assert [g.shape for g in got] == [e.shape for e in expected]
    return {i: (got[i] - expected[i]).abs().max().item() for i in layers}


@pytest.mark.numerics
@pytest.mark.parametrize('type_name', ['GhostNet', 'GhostNetV3'])
@pytest.mark.parametrize('size', [(64, 96), (65, 77)])
def test_training_layout_matches_timm(type_name, size):
    cls = FAMILY[type_name]
    reference = timm_model(type_name)
    ours = ours_from(reference, cls)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        diffs = max_diffs(ours(x), timm_layers(reference, x))
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.numerics
def test_deployed_v3_matches_timm_reparameterized():
    reference = timm_model('GhostNetV3')
    ours = ours_from(reference, GhostNetV3).switch_to_deploy()
    folded = reparameterize_model(reference)  # timm's reparameterize(), on a copy
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        diffs = max_diffs(ours(x), timm_layers(folded, x))
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.numerics
def test_v3_reparameterize_folds_only_the_branches_and_keeps_the_outputs():
    model = ours_from(timm_model('GhostNetV3'), GhostNetV3)
    folded = copy.deepcopy(model).reparameterize()
    names = [n for n, _ in folded.named_modules()]
    assert not any(n.endswith(('.branches', '.scale', '.skip')) for n in names)
    assert 'layer3.0.ghost1.dfc.reduce.bn' in names  # other norms stay
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        diffs = max_diffs(folded(x), model(x), ALL_LAYERS)
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.parametrize('type_name,expected', [('GhostNet', 5_182_508),
                                                ('GhostNetV2', 6_156_908),
                                                ('GhostNetV3', 8_129_028)])
def test_classifier_has_timms_parameter_count(type_name, expected):
    model = build_classifier('1.0x', backbone_type=type_name)
    assert count_parameters(model) == expected
    assert count_parameters(create_timm_model(type_name)) == expected


def test_v3_classifier_with_folded_branches_has_timms_deployed_parameter_count():
    model = build_classifier('1.0x', backbone_type='GhostNetV3')
    model.backbone.reparameterize()
    assert count_parameters(model) == 6_147_588
    reference = reparameterize_model(create_timm_model('GhostNetV3'))
    assert count_parameters(reference) == 6_147_588


@pytest.mark.numerics
def test_deployed_v3_is_the_deployed_v2_graph():
    x = torch.randn(1, 3, 64, 64)
    v2 = GhostNetV2(out_indices=ALL_LAYERS, deploy=True)
    v3_direct = GhostNetV3(out_indices=ALL_LAYERS, deploy=True)
    v3_switched = GhostNetV3(out_indices=ALL_LAYERS).switch_to_deploy()
    shapes = {k: v.shape for k, v in v2.state_dict().items()}
    for v3 in (v3_direct, v3_switched):
        assert {k: v.shape for k, v in v3.state_dict().items()} == shapes
        assert count_macs(v3, x) == count_macs(v2, x)
    # the deployed V2 is a real re-parameterisation: no norm, every conv fused
    assert sum(isinstance(m, DeployConv2d) for m in v2.modules()) > 100
    # and a deployed V3 is built directly, not by folding a training network
    v3_direct.load_state_dict(v3_switched.state_dict(), strict=True)


@pytest.mark.parametrize('kwargs', [
    {},
    dict(out_indices=(0, 2, 4, 6, 8, 10)),
    dict(strides=(1, 2, 1, 2, 1, 1, 1, 1, 1), dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4)),
    dict(arch='1.3x', frozen_stages=2, norm_eval=True),
], ids=['default', 'every-other', 'os8', '1.3x-frozen'])
def test_swapping_type_changes_nothing_else(kwargs):
    built = {name: MODELS.build(dict(type=name, **kwargs)).eval() for name in FAMILY}
    x = torch.randn(1, 3, 64, 64)
    described, shapes = set(), set()
    for name, model in built.items():
        assert type(model).__name__ == name
        described.add((model.out_indices, model.out_channels,
                       tuple((f['num_chs'], f['reduction'], f['module'], f['blocks'])
                             for f in model.feature_info)))
        with torch.no_grad():
            shapes.add(tuple(o.shape for o in model(x)))
    assert len(described) == 1 and len(shapes) == 1


@pytest.mark.parametrize('config', ['configs/retinanet_ghostnetv2_coco.py',
                                    'configs/deeplabv3_ghostnetv2_ade20k.py'])
def test_swapping_type_in_a_config_keeps_what_the_neck_reads(config):
    backbone_cfg = Config.fromfile(f'{ROOT}/{config}').model.backbone.to_dict()
    outs = {}
    for name in FAMILY:
        cfg = dict(backbone_cfg, type=name)
        cfg.pop('init_cfg', None)  # no download: only the structure matters here
        cfg.pop('pretrained', None)
        model = MODELS.build(cfg)
        strides = tuple(f['reduction'] for f in model.feature_info)
        outs[name] = (model.out_indices, model.out_channels, strides)
    assert len(set(outs.values())) == 1, outs


def test_v1_has_no_dfc_and_refuses_dfc_blocks():
    model = GhostNet()
    assert model.dfc_blocks == frozenset()
    assert not any('dfc' in name for name, _ in model.named_modules())
    with pytest.raises(ValueError, match=r"GhostNet: invalid dfc_blocks=\(2, 3\).*no DFC"):
        GhostNet(dfc_blocks=(2, 3))


# --------------------------------------------------------------------------- layouts
def official_v3_state_dict(reference) -> dict:
    """timm's V3 state dict as the official ghostnetv3-1.0.pth.tar names it: a branch's
    norm is ``bn`` (timm: ``bn1``), under 'state_dict', with thop's counters."""
    state = {}
    for key, value in reference.state_dict().items():
        if ('.ghost' in key or '.dw_rpr_' in key) and '.bn1.' in key:
            key = key.replace('.bn1.', '.bn.')
        state[key] = value
    state['blocks.0.0.ghost1.total_ops'] = torch.zeros(1, dtype=torch.float64)
    return {'state_dict': state}


@pytest.mark.parametrize('type_name', ['GhostNet', 'GhostNetV3'])
def test_timm_state_dict_loads_through_load_model_weights(type_name, tmp_path):
    cls = FAMILY[type_name]
    reference = timm_model(type_name)
    path = tmp_path / 'timm.pth'
    torch.save(reference.state_dict(), path)
    model = cls(out_indices=ALL_LAYERS)
    load_model_weights(model, str(path))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max(max_diffs(model.eval()(x), timm_layers(reference, x)).values()) < 1e-4


def test_official_v3_layout_loads():
    reference = timm_model('GhostNetV3')
    model = GhostNetV3(out_indices=ALL_LAYERS)
    load_model_weights(model, official_v3_state_dict(reference))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max(max_diffs(model.eval()(x), timm_layers(reference, x)).values()) < 1e-4


@pytest.mark.parametrize('file_type,model_type', [
    ('GhostNet', 'GhostNetV2'), ('GhostNetV2', 'GhostNet'),
    ('GhostNetV3', 'GhostNetV2'), ('GhostNetV2', 'GhostNetV3'),
    ('GhostNet', 'GhostNetV3'), ('GhostNetV3', 'GhostNet')])
def test_another_familys_file_is_refused_naming_what_did_not_fit(file_type, model_type):
    state = create_timm_model(file_type).state_dict()
    model = FAMILY[model_type]()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(CheckpointError) as info:
        load_model_weights(model, state)
    message = str(info.value)
    assert model_type in message and 'nothing was loaded' in message
    assert 'missing' in message and 'unexpected' in message
    assert f'use type={file_type!r}' in message  # it names the file's own family
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_each_family_member_reads_the_one_layout_that_names_it():
    """The checkpoint layer names backbone types as data (it imports no model): that
    data and the family list must describe the same three classes."""
    family = models.FAMILY
    assert {name: cls.reference_layout.backbone_type for name, cls in family.items()} == \
        {name: name for name in family}
    assert sorted(layout.backbone_type for layout in LAYOUTS) == sorted(family)


@pytest.mark.parametrize('type_name', ['GhostNet', 'GhostNetV2', 'GhostNetV3'])
def test_find_layout_recognises_each_familys_timm_state_dict(type_name):
    keys = create_timm_model(type_name).state_dict().keys()
    assert find_layout(keys).backbone_type == type_name
    assert find_layout(GhostNetV2().state_dict().keys()) is None  # our own layout
