"""The configs against the model-zoo configs they inherit (YOLOv3 320 / 416, SSDLite,
DeepLabV3+, and the GhostNet V1 / V3 ablations of the detection configs).

Each GhostNetV2 config inherits an mmdet/mmseg model-zoo config and changes only the
backbone and the feature widths; each ablation changes only the backbone type and its
weights; every config builds, trains two iterations on tiny ToyShapes data through
mmengine's Runner and evaluates (its test loop returns the metrics)."""
import copy
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from helpers import ROOT, once, tiny_det_config, tiny_seg_config
from ghostnetv2_mm.checkpoint import official_url
from ghostnetv2_mm.models import FAMILY
from ghostnetv2_mm.preflight import check_feature_channels
from ghostnetv2_mm.utils.toolkit import build_model_from_config, setup_toolkit

V1_URL, V2_URL, V3_URL = (official_url(t) for t in ('GhostNet', 'GhostNetV2', 'GhostNetV3'))

# GhostNetV2 config -> (the model-zoo config it inherits, the settings it changes
# besides the backbone)
MIRRORS = {
    'configs/yolov3_ghostnetv2_320_coco.py': (
        'mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py',
        {'model.neck.in_channels'}),
    'configs/yolov3_ghostnetv2_416_coco.py': (
        'mmdet::yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py',
        {'model.neck.in_channels'}),
    'configs/ssdlite_ghostnetv2_coco.py': (
        'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
        {'model.neck.in_channels', 'model.neck.out_channels', 'model.bbox_head.in_channels',
         'feature_channels',
         # SSDHead with mmdet 3.3.0's prediction bug worked around (ghostnetv2_mm.compat)
         'model.bbox_head.type',
         # a last batch of one image would stop training (BatchNorm on the SSDNeck's
         # 1x1 maps): dropped, see the config
         'train_dataloader.drop_last'}),
    'configs/deeplabv3plus_ghostnetv2_ade20k.py': (
        'mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3plus_4xb4-160k_ade20k-512x512.py',
        {'model.pretrained', 'model.decode_head.in_channels',
         'model.auxiliary_head.in_channels'}),
}
# ablation config -> (its GhostNetV2 counterpart, backbone type, official weights)
ABLATIONS = {
    'configs/retinanet_ghostnet_coco.py': ('configs/retinanet_ghostnetv2_coco.py',
                                           'GhostNet', V1_URL),
    'configs/retinanet_ghostnetv3_coco.py': ('configs/retinanet_ghostnetv2_coco.py',
                                             'GhostNetV3', V3_URL),
    'configs/yolov3_ghostnet_320_coco.py': ('configs/yolov3_ghostnetv2_320_coco.py',
                                            'GhostNet', V1_URL),
    'configs/yolov3_ghostnetv3_320_coco.py': ('configs/yolov3_ghostnetv2_320_coco.py',
                                              'GhostNetV3', V3_URL),
}
# The backbone templates of configs/_base_/ (top-level variables that the configs build
# model.backbone from): part of the backbone, not a change to the model-zoo config.
BACKBONE_TEMPLATES = {'ghostnetv2_backbone', 'ghostnetv2_d8_backbone'}
NEW_CONFIGS = sorted(MIRRORS) + sorted(ABLATIONS)
SEG_CONFIGS = {'configs/deeplabv3plus_ghostnetv2_ade20k.py'}
# every GhostNetV2 config of the project (det, seg, cls, transfer, demo; not the
# _base_/ files that they are built from)
ALL_GHOSTNETV2_CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**', '*ghostnetv2*.py'),
                                            recursive=True)
    if '_base_' not in osp.relpath(p, ROOT).split(osp.sep))


def _load(config: str) -> Config:
    if '::' in config:  # a toolkit's own config, as `_base_` names it
        scope, path = config.split('::')
        package = __import__(scope)
        config = osp.join(osp.dirname(package.__file__), '.mim', 'configs', path)
    # (no yapf pass over the merged text: it is slow and changes nothing loaded)
    return Config.fromfile(osp.join(ROOT, config), format_python_code=False)


def _settings(node):
    """A config dict without ``_scope_`` (mmengine's note of where an inherited
    "mmdet::" entry came from: bookkeeping, not a setting); tuples as lists."""
    if isinstance(node, dict):
        return {k: _settings(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [_settings(v) for v in node]
    return node


def _flatten(node, prefix=''):
    """{'a.b.c': leaf} for a config dict; lists are leaves."""
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f'{prefix}{key}.'))
        return flat
    return {prefix[:-1]: node}


def _differences(a: Config, b: Config) -> set:
    flat_a, flat_b = (_flatten(_settings(c.to_dict())) for c in (a, b))
    return {k for k in flat_a.keys() | flat_b.keys()
            if flat_a.get(k, KeyError) != flat_b.get(k, KeyError)}


# file-name stem -> the backbone type a config so named must build
NAMED_TYPES = (('ghostnetv3', 'GhostNetV3'), ('ghostnetv2', 'GhostNetV2'),
               ('ghostnet', 'GhostNet'))
TOP_CONFIGS = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*.py')))


def named_backbone(config):
    """(type, width) that the file name of ``config`` promises."""
    name = osp.basename(config)
    type_ = next(t for stem, t in NAMED_TYPES if stem in name)
    width = next((w for w in ('1.3x', '1.6x') if f'-{w}' in name), '1.0x')
    return type_, width


@pytest.mark.parametrize('config', TOP_CONFIGS)
def test_every_config_builds_the_backbone_its_name_promises_with_its_weights(config):
    """A config's name states its backbone and width; its weights are the official
    file of exactly that backbone and width (or none: trained from scratch)."""
    type_, width = named_backbone(config)
    backbone = _load(config).model.backbone
    assert (backbone.type, backbone.get('arch', '1.0x')) == (type_, width)
    init_cfg = backbone.get('init_cfg')
    if init_cfg is not None and init_cfg.get('type') == 'Pretrained':
        assert init_cfg.checkpoint == official_url(type_, width)
    else:  # trained from scratch: ImageNet itself, or the SSDLite recipe
        assert config.endswith('_in1k.py') or 'scratch' in MIRRORS.get(config, ('',))[0], \
            f'{config}: no ImageNet weights'


def test_the_name_check_catches_a_config_of_another_width(tmp_path):
    wrong = tmp_path / 'retinanet_ghostnetv2-1.3x_coco.py'
    wrong.write_text(f"_base_ = ['{osp.join(ROOT, 'configs', 'retinanet_ghostnetv2_coco.py')}']\n")
    with pytest.raises(AssertionError):
        test_every_config_builds_the_backbone_its_name_promises_with_its_weights(str(wrong))


@pytest.mark.parametrize('config', sorted(MIRRORS))
def test_config_changes_only_backbone_and_widths_of_the_model_zoo_config(config):
    base, widths = MIRRORS[config]
    cfg, base_cfg = _load(config), _load(base)
    changed = _differences(cfg, base_cfg)
    backbone = {k for k in changed if k.startswith('model.backbone.')
                or k.split('.')[0] in BACKBONE_TEMPLATES}
    assert 'model.backbone.type' in backbone
    assert changed - backbone == widths | {'custom_imports.imports',
                                           'custom_imports.allow_failed_imports'}
    assert cfg.model.backbone.type == 'GhostNetV2' and cfg.model.backbone.arch == '1.0x'


@pytest.mark.parametrize('config', sorted(ABLATIONS))
def test_ablation_changes_only_backbone_type_and_weights(config):
    v2_config, backbone_type, url = ABLATIONS[config]
    cfg, v2_cfg = _load(config), _load(v2_config)
    assert _differences(cfg, v2_cfg) == {'model.backbone.type',
                                         'model.backbone.init_cfg.checkpoint'}
    assert cfg.model.backbone.type == backbone_type
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=url)


@pytest.mark.parametrize('config', sorted(MIRRORS))
def test_pretrained_weights_are_the_official_release_or_none_like_the_baseline(config):
    cfg = _load(config)
    init_cfg = cfg.model.backbone.init_cfg
    if 'scratch' in MIRRORS[config][0]:  # the SSDLite baseline trains from scratch
        assert init_cfg.type != 'Pretrained'
        assert init_cfg == _load(MIRRORS[config][0]).model.backbone.init_cfg
    else:
        assert init_cfg == dict(type='Pretrained', checkpoint=V2_URL)


# config -> the strides of the backbone outputs the neck / heads read
TAP_STRIDES = {
    'configs/yolov3_ghostnetv2_320_coco.py': (8, 16, 32),
    'configs/yolov3_ghostnetv2_416_coco.py': (8, 16, 32),
    'configs/ssdlite_ghostnetv2_coco.py': (16, 32),
    'configs/deeplabv3plus_ghostnetv2_ade20k.py': (4, 8, 8, 8),  # output stride 8
}


@pytest.mark.parametrize('config', sorted(TAP_STRIDES))
def test_neck_and_heads_read_the_taps_they_are_built_for(config):
    cfg = _load(config)
    cfg.model.backbone.init_cfg = None
    backbone = build_model_from_config(cfg).backbone.eval()
    size = 128
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, size, size))
    assert [size // f.shape[-1] for f in feats] == list(TAP_STRIDES[config])
    channels = [f.shape[1] for f in feats]
    model = cfg.model
    neck_type = model.get('neck', {}).get('type')
    if neck_type == 'YOLOV3Neck':  # deepest first
        assert list(model.neck.in_channels) == channels[::-1] == [160, 112, 40]
    elif neck_type == 'SSDNeck':  # the last stride-16 block and the 1x1 conv
        assert list(model.neck.in_channels) == channels == [112, 960]
        assert list(model.neck.out_channels[:2]) == channels
        assert list(model.bbox_head.in_channels) == list(model.neck.out_channels)
    else:  # DeepLabV3+: ASPP on the deepest tap, the decoder on the stride-4 one
        assert model.decode_head.in_channels == channels[model.decode_head.in_index] == 160
        assert model.decode_head.c1_in_channels == channels[0] == 24
        assert (model.auxiliary_head.in_channels
                == channels[model.auxiliary_head.in_index] == 112)
    assert check_feature_channels(cfg) is None


@pytest.mark.parametrize('config,key,bad,words', [
    ('configs/yolov3_ghostnetv2_320_coco.py', 'neck.in_channels', [40, 112, 160],
     ['model.neck.in_channels=[40, 112, 160]', 'set it to [160, 112, 40]']),
    ('configs/ssdlite_ghostnetv2_coco.py', 'neck.in_channels', [96, 1280],
     ['model.neck.in_channels=[96, 1280]', 'set it to [112, 960]']),
    ('configs/deeplabv3plus_ghostnetv2_ade20k.py', 'decode_head.c1_in_channels', 40,
     ['model.decode_head.c1_in_channels=40', 'set it to 24']),
    ('configs/yolov3_ghostnetv3_320_coco.py', 'neck.in_channels', [320, 96, 32],
     ['GhostNetV3', 'set it to [160, 112, 40]']),
])
def test_preflight_catches_wrong_widths(config, key, bad, words):
    cfg = _load(config)
    assert check_feature_channels(cfg) is None
    node = cfg.model
    *parents, leaf = key.split('.')
    for name in parents:
        node = node[name]
    node[leaf] = bad
    message = check_feature_channels(cfg)
    assert message is not None
    for word in words:
        assert word in message, message


@pytest.fixture(scope='module')
def shape_groups():
    """The project's GhostNetV2 configs grouped by the backbone settings that decide
    its outputs (arch, out_indices, strides, dilations): [(backbone cfg, [configs])]."""
    groups = {}
    for config in ALL_GHOSTNETV2_CONFIGS:
        cfg = _load(config)
        backbone = cfg.model.backbone
        key = repr([backbone.get(k) for k in ('arch', 'out_indices', 'strides', 'dilations')])
        groups.setdefault(key, (cfg, []))[1].append(config)
    return list(groups.values())


@pytest.mark.parametrize('backbone_type', [t for t in FAMILY if t != 'GhostNetV2'])
def test_swapping_the_family_type_in_any_config_keeps_every_output(backbone_type,
                                                                   shape_groups):
    """Every GhostNetV2 config takes GhostNet / GhostNetV3 by its type alone: the same
    outputs (channels and sizes, at the config's strides and dilations), and the
    neck/head widths still pass the preflight check. Configs whose backbones have the
    same shape settings are run once."""
    from mmengine.registry import MODELS
    image = torch.randn(1, 3, 64, 64)

    def shapes(backbone_cfg, name):
        backbone = MODELS.build(dict(backbone_cfg, type=name, init_cfg=None)).eval()
        assert type(backbone).__name__ == name
        with torch.no_grad():
            return [tuple(f.shape) for f in backbone(image)]

    for cfg, configs in shape_groups:
        v2, other = (shapes(cfg.model.backbone, name) for name in ('GhostNetV2', backbone_type))
        assert other == v2, configs
        swapped = copy.deepcopy(cfg)
        swapped.model.backbone.type = backbone_type
        assert check_feature_channels(swapped) is None, configs


_RUNS = {}


@pytest.fixture(scope='module')
def run(toy_root, tmp_path_factory):
    """Train a config two iterations, then run its test loop; once per config."""
    def train_and_test(config):
        from mmengine.runner import Runner
        work_dir = str(tmp_path_factory.mktemp(osp.splitext(osp.basename(config))[0]))
        if config in SEG_CONFIGS:
            cfg = tiny_seg_config(config, toy_root, work_dir, size=64)
        else:
            cfg = tiny_det_config(config, toy_root, work_dir, scale=(64, 64))
        # Random weights here: the BatchNorm statistics must come from the two
        # training iterations (cumulative average), not stay at their initial
        # (0, 1), at which the untrained GhostNetV3's summed branches blow up in
        # the test loop (stride-32 features ~1e8, not one box left).
        backbone = cfg.model.backbone
        backbone.norm_eval = False
        backbone.norm_cfg = dict(backbone.get('norm_cfg', dict(type='BN')), momentum=None)
        cfg.train_cfg.val_begin = 10 ** 6  # evaluated once, by the test loop below
        setup_toolkit(cfg)
        runner = Runner.from_cfg(cfg)
        runner.train()
        losses = runner.message_hub.get_scalar('train/loss').data[0]
        metrics = runner.test()
        return dict(cfg=cfg, runner=runner, losses=list(losses), metrics=metrics)

    def _run(config):
        return once(_RUNS, config, lambda: train_and_test(config))
    return _run


@pytest.mark.parametrize('config', NEW_CONFIGS)
def test_two_training_iterations_give_finite_losses(config, run):
    result = run(config)
    assert result['runner'].iter == 2
    assert len(result['losses']) == 2
    assert all(math.isfinite(v) for v in result['losses']), result['losses']
    backbone = result['runner'].model.backbone
    assert type(backbone).__name__ == result['cfg'].model.backbone.type


@pytest.mark.parametrize('config', NEW_CONFIGS)
def test_test_loop_reports_metrics(config, run):
    metrics = run(config)['metrics']
    if config in SEG_CONFIGS:
        assert 0.0 <= metrics['mIoU'] <= 100.0 and 0.0 <= metrics['aAcc'] <= 100.0
    else:
        for key in ('mAP', 'mAP_50', 'mAP_75'):
            assert 0.0 <= metrics[f'coco/bbox_{key}'] <= 1.0
