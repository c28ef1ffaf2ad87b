"""The downstream benchmark (tools/downstream_benchmark.py): backbones swapped into
detection and segmentation configs with the config's taps and output stride, necks
and heads rewired, trained and tested through the Runner, one CSV row per run.

One benchmark run (two tiny ToyShapes configs, a GhostNet, an mmpretrain and an
mmdet/mmseg backbone, 2 iterations each) is shared by the tests that read its results.
Nothing is downloaded: ImageNet weights come from local files or a closed loopback port.
"""
import dataclasses
import math
import os
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

from ghostnetv2_mm.benchmarks import report
from ghostnetv2_mm.benchmarks.downstream import (BACKBONES, BenchmarkError, ConfigError,
                                                 dilate, rewire, run_downstream_benchmark,
                                                 shorten_schedule, swap_backbone, taps_of)
from ghostnetv2_mm.benchmarks.downstream import catalogue
from ghostnetv2_mm.benchmarks.downstream.config import build_backbone
from ghostnetv2_mm.benchmarks.downstream.run import load_imagenet, prepare_config
from ghostnetv2_mm.checkpoint import url_cache_path
from ghostnetv2_mm.utils.toolkit import build_model_from_config, setup_toolkit

from helpers import ROOT, load_tool, official_state_dict, once

DET = osp.join(ROOT, 'tests', 'configs', 'downstream_retinanet_tiny.py')
SEG = osp.join(ROOT, 'tests', 'configs', 'downstream_deeplabv3_tiny.py')
DEMO_DET = osp.join(ROOT, 'configs', 'demo', 'retinanet_ghostnetv2_toyshapes.py')
DEMO_SEG = osp.join(ROOT, 'configs', 'demo', 'deeplabv3_ghostnetv2_toyshapes.py')
# a GhostNet one, an mmpretrain one (MobileNetV3; mmseg's at output stride 8) and the
# toolkits' own ResNet (mmdet's / mmseg's)
TRAINED = ['ghostnetv2-1.0x', 'mobilenetv3-large', 'resnet18']
ITERS = 2
_CACHE = {}


def benchmark(out, toy_root, **kwargs):
    args = dict(configs=[DET, SEG], backbones=TRAINED, out=str(out), data_root=toy_root,
                iters=ITERS, init='random', seeds=[0], latency_rounds=1)
    args.update(kwargs)
    return run_downstream_benchmark(**args)


@pytest.fixture
def shared_run(toy_root, tmp_path_factory):
    """(output folder, rows) of the one training benchmark of this file."""
    def make():
        out = tmp_path_factory.mktemp('downstream')
        return str(out), benchmark(out, toy_root)
    return once(_CACHE, 'downstream run', make)


def tool(argv):
    return load_tool('downstream_benchmark').main(argv)


def config(path):
    cfg = Config.fromfile(path)
    return cfg, setup_toolkit(cfg)


# ----------------------------------------------------------------- the shared run
def test_every_run_gives_a_row_with_finite_metrics_and_costs(shared_run):
    _, rows = shared_run
    assert sorted((r['config'], r['backbone']) for r in rows) == sorted(
        (osp.splitext(osp.basename(c))[0], b) for c in (DET, SEG) for b in TRAINED)
    for r in rows:
        assert r['metric'] == ('mIoU' if 'deeplab' in r['config'] else 'coco/bbox_mAP')
        assert math.isfinite(float(r['value']))
        assert int(r['params']) > 0 and int(r['macs']) > 0
        assert float(r['latency_torch_ms']) > 0 and r['test_size'] == '64x64'
        assert r['init'] == 'random' and r['seed'] == '0'
    seg = {r['backbone']: r['implementation'] for r in rows if 'deeplab' in r['config']}
    det = {r['backbone']: r['implementation'] for r in rows if 'retina' in r['config']}
    assert det == {'ghostnetv2-1.0x': 'GhostNetV2', 'mobilenetv3-large':
                   'mmpretrain.MobileNetV3', 'resnet18': 'mmdet.ResNet'}
    assert seg == {'ghostnetv2-1.0x': 'GhostNetV2', 'mobilenetv3-large':
                   'mmseg.MobileNetV3', 'resnet18': 'mmseg.ResNet'}


def test_each_run_trains_the_iterations_asked_for_in_its_own_work_dir(shared_run):
    from ghostnetv2_mm.checkpoint import load_checkpoint_file
    out, rows = shared_run
    for r in rows:
        work_dir = osp.join(out, r['config'], r['backbone'], r['seed'])
        checkpoints = sorted(f for f in os.listdir(work_dir) if f.endswith('.pth'))
        assert checkpoints == [f'iter_{ITERS}.pth'], work_dir
        meta = load_checkpoint_file(osp.join(work_dir, checkpoints[0]))['meta']
        assert meta['iter'] == ITERS
        assert r['iterations'] == str(ITERS)


def test_the_table_and_the_plot_are_written(shared_run):
    out, rows = shared_run
    with open(osp.join(out, 'results.md')) as f:
        table = f.read()
    for r in rows:
        assert f'| {r["backbone"]} | random | 0 |' in table
    with open(osp.join(out, 'metric_vs_latency.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_a_rerun_adds_nothing_and_trains_nothing(shared_run, toy_root):
    out, rows = shared_run
    runs_before = sorted(os.walk(out))
    assert benchmark(out, toy_root) == rows
    assert sorted(os.walk(out)) == runs_before


def test_a_rerun_with_other_settings_is_refused(shared_run, toy_root):
    out, rows = shared_run
    with pytest.raises(BenchmarkError, match=r"iterations: '2' there, '3' now"):
        benchmark(out, toy_root, iters=3)
    assert report.read_rows(osp.join(out, 'results.csv')) == rows


# ------------------------------------------------------------------- clear errors
def test_an_unknown_backbone_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        tool([DET, '--backbones', 'ghostnetv2-1.0x', 'efficientnet_b9'])
    message = capsys.readouterr().err
    assert "'efficientnet_b9'" in message
    assert all(name in message for name in BACKBONES)


def test_an_unsupported_neck_is_refused_naming_its_type(toy_root, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tool([DET, '--backbones', 'resnet18', '--out', str(tmp_path), '--data-root',
              toy_root, '--init', 'random', '--cfg-options', 'model.neck.type=PAFPN'])
    message = capsys.readouterr().err
    assert "model.neck.type='PAFPN'" in message and 'FPN, YOLOV3Neck, SSDNeck' in message
    assert not osp.exists(osp.join(tmp_path, 'results.csv'))


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / 'nowhere'
    with pytest.raises(SystemExit):
        tool([DET, '--backbones', 'resnet18', '--out', str(tmp_path / 'out'),
              '--data-root', str(missing), '--init', 'random'])
    message = capsys.readouterr().err
    assert 'is not on disk' in message and str(missing) in message


def test_missing_toy_shapes_data_is_generated(tmp_path):
    root = tmp_path / 'toy_shapes'
    cfg, _ = prepare_config(DEMO_SEG, cfg_options=None, data_root=str(root), iters=4)
    assert len(os.listdir(root / 'images' / 'training')) == 200
    assert cfg.train_dataloader.dataset.data_root == str(root) + '/'


def test_imagenet_offline_names_the_file_the_cache_and_init_random(
        toy_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_torch_home'))
    url = 'http://127.0.0.1:9/weights/mobilenet_v2_imagenet.pth'  # port 9: nothing listens
    monkeypatch.setitem(BACKBONES, 'mobilenetv2',
                        dataclasses.replace(BACKBONES['mobilenetv2'], weights=url))
    with pytest.raises(SystemExit):
        tool([DET, '--backbones', 'mobilenetv2', '--out', str(tmp_path / 'out'),
              '--data-root', toy_root, '--init', 'imagenet'])
    message = capsys.readouterr().err
    assert url in message and url_cache_path(url) in message
    assert '--init random' in message
    assert not os.path.exists(tmp_path / 'out')  # nothing trained: no row, no folder


# ------------------------------------------------------------ ImageNet weights
def _source_backbones():
    """The models whose state dicts the baselines' ImageNet files hold (mmpretrain's)."""
    from mmpretrain.models import MobileNetV2, MobileNetV3, ResNet
    return {'mobilenetv2': MobileNetV2(widen_factor=1.0),
            'mobilenetv3-large': MobileNetV3(arch='large'), 'resnet18': ResNet(depth=18)}


@pytest.mark.parametrize('name', ['mobilenetv2', 'mobilenetv3-large', 'resnet18'])
def test_every_build_of_a_baseline_loads_its_imagenet_file_strictly(name, tmp_path):
    source = _source_backbones()[name]
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 8)
    path = tmp_path / 'imagenet.pth'
    torch.save({'state_dict': state}, path)
    entry = dataclasses.replace(BACKBONES[name], weights=str(path))
    for build in entry.builds:
        for scope in ('mmdet', 'mmseg'):
            bcfg = catalogue.backbone_config(build, (8, 16, 32), build.output_stride, scope)
            backbone = build_backbone(bcfg, scope)
            load_imagenet(backbone, entry, build)
            for key, value in backbone.state_dict().items():
                assert torch.equal(value, state[f'backbone.{key}']), (build.type, key)
            assert backbone.is_init
    # a file without one of the weights is refused: nothing silently left random
    del state['backbone.' + next(iter(source.state_dict()))]
    torch.save({'state_dict': state}, path)
    build = entry.builds[0]
    backbone = build_backbone(catalogue.backbone_config(build, (32,), 32, 'mmdet'), 'mmdet')
    with pytest.raises(BenchmarkError, match='missing'):
        load_imagenet(backbone, entry, build)


def test_a_ghostnet_loads_the_official_file(tmp_path):
    reference, state = official_state_dict()
    path = tmp_path / 'ck_ghostnetv2_10.pth.tar'
    torch.save({'state_dict': state}, path)
    entry = dataclasses.replace(BACKBONES['ghostnetv2-1.0x'], weights=str(path))
    build = entry.builds[0]
    backbone = build_backbone(catalogue.backbone_config(build, (4, 8, 16, 32), 8, 'mmseg'),
                              'mmseg')
    load_imagenet(backbone, entry, build)
    assert torch.equal(backbone.layer0.conv.weight, reference.conv_stem.weight)


def test_the_baseline_urls_are_those_of_the_mmpretrain_metafiles():
    import mmpretrain
    root = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs')
    listed = {}
    for folder in ('mobilenet_v2', 'mobilenet_v3', 'resnet'):
        with open(osp.join(root, folder, 'metafile.yml')) as f:
            listed.update({m['Name']: m['Weights'] for m in yaml.safe_load(f)['Models']})
    for name in ('mobilenetv2', 'mobilenetv3-large', 'resnet18'):
        entry = BACKBONES[name]
        model = entry.source.split(': ')[1]
        assert listed[model] == entry.weights, name


# --------------------------------------------------------- taps, dilation, rewiring
def test_the_dilation_rule_gives_the_toolkits_output_stride_8_settings():
    assert dilate(4, (1, 2, 2, 2), 8) == ((1, 2, 1, 1), (1, 1, 2, 4))  # mmseg ResNet -d8
    assert dilate(2, (1, 2, 2, 2, 1, 2, 1), 8) == (  # mmseg MobileNetV2 -d8
        (1, 2, 2, 1, 1, 1, 1), (1, 1, 1, 2, 2, 4, 4))
    ghost = Config.fromfile(osp.join(ROOT, 'configs', 'deeplabv3_ghostnetv2_ade20k.py'))
    stages = BACKBONES['ghostnetv2-1.0x'].builds[0].stage_strides
    assert dilate(2, stages, 8) == (tuple(ghost.model.backbone.strides),
                                    tuple(ghost.model.backbone.dilations))
    assert dilate(4, (1, 2, 2, 2), 32) == ((1, 2, 2, 2), (1, 1, 1, 1))


@pytest.mark.parametrize('path, taps, output_stride', [
    (DEMO_DET, (8, 16, 32), 32),
    (DEMO_SEG, (4, 8, 16, 32), 8),
    (osp.join(ROOT, 'configs', 'ssdlite_ghostnetv2_coco.py'), (16, 'final'), 32),
])
def test_the_taps_of_a_config(path, taps, output_stride):
    found = taps_of(Config.fromfile(path))
    assert (found.taps, found.output_stride) == (taps, output_stride)


def test_a_backbone_that_cannot_dilate_is_not_used_at_output_stride_8():
    entry = dataclasses.replace(BACKBONES['mobilenetv3-large'],
                                builds=BACKBONES['mobilenetv3-large'].builds[:1])
    with pytest.raises(ValueError, match='cannot give output stride 8'):
        entry.build_for(8)


def _forward_backward(cfg, size):
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, size, size), mode='tensor')
    flat = []
    stack = [outs]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            flat.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    sum(o.float().mean() for o in flat).backward()
    first = next(p for p in model.backbone.parameters() if p.requires_grad)
    return first.grad


@pytest.mark.parametrize('name', list(BACKBONES))
@pytest.mark.parametrize('path', [DEMO_DET, DEMO_SEG])
def test_every_backbone_swapped_into_a_config_runs_forward_and_backward(path, name):
    cfg, scope = config(path)
    swapped, build, channels = swap_backbone(cfg, name, scope)
    grad = _forward_backward(swapped, 64)
    assert grad is not None and grad.abs().sum() > 0
    if 'retinanet' in path:
        assert list(swapped.model.neck.in_channels) == channels
    else:
        assert swapped.model.decode_head.in_channels == channels[3]
        assert swapped.model.auxiliary_head.in_channels == channels[2]


@pytest.mark.parametrize('path, size', [
    (osp.join(ROOT, 'configs', 'yolov3_ghostnetv2_320_coco.py'), 64),
    (osp.join(ROOT, 'configs', 'ssdlite_ghostnetv2_coco.py'), 320),
])
def test_yolov3_and_ssd_necks_are_rewired(path, size):
    cfg, scope = config(path)
    swapped, _, channels = swap_backbone(cfg, 'mobilenetv2', scope)
    grad = _forward_backward(swapped, size)
    assert grad is not None and grad.abs().sum() > 0
    neck = swapped.model.neck
    if neck.type == 'YOLOV3Neck':
        assert list(neck.in_channels) == channels[::-1] == [320, 96, 32]
    else:
        assert channels == [96, 1280]  # last block of stride 16, the final conv
        assert list(neck.out_channels[:2]) == list(swapped.model.bbox_head.in_channels[:2])


def test_a_head_that_cannot_be_rewired_is_named():
    cfg, _ = config(DEMO_SEG)
    cfg.model.decode_head.type = 'PSPHead'
    with pytest.raises(ConfigError, match="decode_head.type='PSPHead'"):
        rewire(cfg.model, [24, 40, 112, 160])


# ----------------------------------------------------------------------- schedule
def test_iters_keep_the_warm_up_proportion_of_an_iteration_schedule():
    cfg, _ = config(DEMO_DET)  # 600 iterations, warm-up 100
    shorten_schedule(cfg, 60, iters_per_epoch=lambda: pytest.fail('not needed'))
    warmup, cosine = cfg.param_scheduler
    assert (warmup.begin, warmup.end, cosine.end) == (0, 10, 60)
    assert cfg.train_cfg.max_iters == 60 and cfg.default_hooks.checkpoint.interval == 60


def test_iters_keep_the_warm_up_proportion_of_an_epoch_schedule():
    cfg, _ = config(osp.join(ROOT, 'configs', 'retinanet_ghostnetv2_coco.py'))
    # 12 epochs of 1000 iterations: warm-up 500 iterations, steps at epochs 8 and 11
    shorten_schedule(cfg, 240, iters_per_epoch=lambda: 1000)
    warmup, steps = cfg.param_scheduler
    assert (warmup.end, steps.end, list(steps.milestones)) == (10, 240, [160, 220])
    assert not warmup.by_epoch and not steps.by_epoch
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 240


# --------------------------------------------------------------------------- CSV
def test_an_interrupted_write_leaves_the_csv_as_it_was(tmp_path, monkeypatch):
    path = str(tmp_path / 'results.csv')
    report.append_row(path, dict(a=1, b=2), ['a', 'b'])
    before = open(path).read()

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, 'replace', interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.append_row(path, dict(a=3, b=4), ['a', 'b'])
    assert open(path).read() == before
    assert os.listdir(tmp_path) == ['results.csv']  # no temporary file left


def test_backbone_parameters_count_the_layers_that_run_only():
    from ghostnetv2_mm.models import GhostNetV2
    from ghostnetv2_mm.utils import count_parameters, count_used_parameters
    model = GhostNetV2(out_indices=(5, 7, 9))  # layer 10 (the 960-channel conv) never runs
    unused = count_parameters(model.layer10)
    assert unused > 0
    assert count_used_parameters(model, torch.zeros(1, 3, 64, 64)) == (
        count_parameters(model) - unused)


def test_imagenet_weights_are_what_the_runner_trains(toy_root, tmp_path, monkeypatch):
    """The loaded weights survive the Runner's own initialisation: with lr 0, the
    trained checkpoint holds the ImageNet file's convolutions."""
    from mmpretrain.models import ResNet

    from ghostnetv2_mm.checkpoint import load_checkpoint_file
    torch.manual_seed(3)
    state = {f'backbone.{k}': v for k, v in ResNet(depth=18).state_dict().items()}
    path = tmp_path / 'resnet18_imagenet.pth'
    torch.save({'state_dict': state}, path)
    monkeypatch.setitem(BACKBONES, 'resnet18',
                        dataclasses.replace(BACKBONES['resnet18'], weights=str(path)))
    out = tmp_path / 'out'
    rows = run_downstream_benchmark(
        configs=[DET], backbones=['resnet18'], out=str(out), data_root=toy_root, iters=1,
        init='imagenet', cfg_options={'optim_wrapper.optimizer.lr': 0.0},
        latency_rounds=1)
    assert rows[0]['init'] == 'imagenet' and rows[0]['weights'] == str(path)
    trained = load_checkpoint_file(str(out / rows[0]['config'] / 'resnet18' / '0' /
                                       'iter_1.pth'))['state_dict']
    for key in ('backbone.conv1.weight', 'backbone.layer4.1.conv2.weight'):
        assert torch.equal(trained[key], state[key])
