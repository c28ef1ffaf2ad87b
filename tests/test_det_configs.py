"""Every detection config in configs/ (COCO and ToyShapes demo) loads, builds, trains two
iterations and evaluates through the real mmengine Runner, on a tiny ToyShapes set made
here (ImageNet weights off, data paths overridden, small images for speed)."""
import glob
import math
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.join(ROOT, 'tools') not in sys.path:
    sys.path.insert(0, osp.join(ROOT, 'tools'))

from ghostnetv2_mm.datasets.toy_shapes import CLASSES, make_toy_shapes  # noqa: E402

COCO_CONFIGS = sorted(
    osp.relpath(p, ROOT) for pattern in ('retinanet*.py', 'mask-rcnn*.py')
    for p in glob.glob(osp.join(ROOT, 'configs', pattern)))
DEMO_CONFIGS = sorted(
    osp.relpath(p, ROOT) for pattern in ('retinanet*.py', 'mask-rcnn*.py')
    for p in glob.glob(osp.join(ROOT, 'configs', 'demo', pattern)))
ALL_CONFIGS = COCO_CONFIGS + DEMO_CONFIGS
# taps of the default out_indices=(3, 5, 7, 9) for each width
WIDTH_CHANNELS = {'1.0x': (24, 40, 112, 160), '1.3x': (32, 52, 144, 208),
                  '1.6x': (40, 64, 180, 256)}
TEST_SCALE = (96, 96)  # the COCO configs resize to 1333x800: far too slow on a CPU


def test_all_expected_configs_exist():
    names = {osp.basename(p) for p in ALL_CONFIGS}
    expected = {f'{model}_ghostnetv2{width}_coco.py'
                for model in ('retinanet', 'mask-rcnn') for width in ('', '-1.3x', '-1.6x')}
    expected |= {'retinanet_ghostnetv2_toyshapes.py', 'mask-rcnn_ghostnetv2_toyshapes.py'}
    assert expected <= names


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy_shapes'))
    make_toy_shapes(root, num_train=4, num_val=2, size=(64, 64), max_objects=2,
                    radius=(8, 20), seed=1)
    return root


def _set_scale(pipeline, scale):
    for step in pipeline:
        if step['type'] in ('Resize', 'RandomResize'):
            step['scale'] = scale


def tiny_config(config: str, toy_root: str, work_dir: str) -> Config:
    """``config`` with ImageNet weights off, ToyShapes data, tiny loaders, 2 iterations."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    root = toy_root.rstrip('/') + '/'
    metainfo = dict(classes=CLASSES)
    for split, folder in (('train', 'training'), ('val', 'validation'),
                          ('test', 'validation')):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        dataset = loader.dataset
        dataset.update(data_root=root, metainfo=metainfo,
                       ann_file=f'annotations/instances_{folder}.json',
                       data_prefix=dict(img=f'images/{folder}/'))
        _set_scale(dataset.pipeline, TEST_SCALE)
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = root + 'annotations/instances_validation.json'
    if cfg.train_cfg.type == 'EpochBasedTrainLoop':
        cfg.train_cfg.update(max_epochs=1, val_interval=1)  # 4 images / 2 = 2 iterations
    else:
        cfg.train_cfg.update(max_iters=2, val_interval=2)
        cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    # keep every detection: after 2 iterations no score passes the usual 0.05, and
    # CocoMetric reports nothing for an empty result
    test_cfg = cfg.model.test_cfg
    # the COCO configs' heads have 80 classes; ToyShapes has 3 (CocoMetric maps labels
    # to the dataset's categories)
    heads = [cfg.model.get('bbox_head')] + [cfg.model.get('roi_head', {}).get(name)
                                            for name in ('bbox_head', 'mask_head')]
    for head in heads:
        if head:
            head.num_classes = len(CLASSES)
    (test_cfg.rcnn if 'rcnn' in test_cfg else test_cfg).score_thr = 0.0
    cfg.visualizer.name = f'visualizer_{osp.basename(config)}'  # one per runner
    cfg.work_dir = work_dir
    return cfg


class Recorder(Hook):
    """Keeps the training losses and the validation metrics of a run."""
    priority = 'LOWEST'

    def __init__(self):
        self.losses, self.metrics = [], None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append({k: float(v) for k, v in outputs.items()})

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics or {})


_RUNS = {}


@pytest.fixture(scope='module')
def run(toy_root, tmp_path_factory):
    """Train + evaluate a config once (per module), return what happened."""
    def _run(config):
        if config not in _RUNS:
            _RUNS[config] = RuntimeError(f'the run of {config} failed (see the first test '
                                         'that ran it)')
            from mmengine.runner import Runner

            from ghostnetv2_mm.utils.toolkit import setup_toolkit
            work_dir = str(tmp_path_factory.mktemp(osp.splitext(osp.basename(config))[0]))
            cfg = tiny_config(config, toy_root, work_dir)
            setup_toolkit(cfg)
            runner = Runner.from_cfg(cfg)
            recorder = Recorder()
            runner.register_hook(recorder)
            runner.train()
            _RUNS[config] = dict(cfg=cfg, runner=runner, losses=recorder.losses,
                                 metrics=recorder.metrics, work_dir=work_dir)
        if isinstance(_RUNS[config], Exception):
            raise _RUNS[config]
        return _RUNS[config]
    return _run


@pytest.mark.parametrize('config', ALL_CONFIGS)
def test_config_builds_a_ghostnetv2_detector_with_matching_fpn(config):
    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.custom_imports == dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)
    cfg.model.backbone.init_cfg = None
    model = build_model_from_config(cfg)
    assert type(model.backbone).__name__ == 'GhostNetV2'
    assert list(model.backbone.out_channels) == list(cfg.model.neck.in_channels)
    arch = cfg.model.backbone.arch
    assert set(model.backbone.out_channels) <= set(WIDTH_CHANNELS[arch])


@pytest.mark.parametrize('config', COCO_CONFIGS)
def test_coco_config_freezes_stem_and_loads_matching_official_weights(config):
    cfg = Config.fromfile(osp.join(ROOT, config))
    backbone = cfg.model.backbone
    assert backbone.frozen_stages == 0 and backbone.norm_eval is True
    assert backbone.norm_cfg.type == 'BN'
    suffix = {'1.0x': '10', '1.3x': '13', '1.6x': '16'}[backbone.arch]
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=f'checkpoints/ck_ghostnetv2_{suffix}.pth.tar')
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    assert cfg.train_cfg.max_epochs == 12


@pytest.mark.parametrize('config', ALL_CONFIGS)
def test_two_training_iterations_give_finite_losses(config, run):
    result = run(config)
    assert len(result['losses']) == 2
    for losses in result['losses']:
        assert 'loss' in losses
        assert all(math.isfinite(v) for v in losses.values()), losses
    assert result['runner'].iter == 2


@pytest.mark.parametrize('config', ALL_CONFIGS)
def test_training_writes_a_checkpoint_that_holds_the_backbone(config, run):
    result = run(config)
    checkpoints = glob.glob(osp.join(result['work_dir'], '*.pth'))
    assert len(checkpoints) == 1
    state = torch.load(checkpoints[0], map_location='cpu', weights_only=False)['state_dict']
    assert any(k.startswith('backbone.layer9.') for k in state)


@pytest.mark.parametrize('config', ALL_CONFIGS)
def test_evaluation_reports_coco_metrics(config, run):
    result = run(config)
    metrics = result['metrics']
    assert metrics is not None
    metric_types = result['cfg'].val_evaluator.metric
    metric_types = [metric_types] if isinstance(metric_types, str) else metric_types
    assert 'bbox' in metric_types
    for kind in metric_types:
        for key in ('mAP', 'mAP_50', 'mAP_75'):
            assert 0.0 <= metrics[f'coco/{kind}_{key}'] <= 1.0


def _train_main(argv):
    import train  # tools/train.py
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    return str(exc.value.code)


@pytest.mark.parametrize('config', COCO_CONFIGS[:1] + DEMO_CONFIGS[:1])
def test_missing_dataset_gives_the_preflight_message(config, tmp_path):
    message = _train_main([osp.join(ROOT, config), '--work-dir', str(tmp_path),
                           '--cfg-options',
                           f'train_dataloader.dataset.data_root={tmp_path}/nowhere/'])
    assert 'is not on disk' in message and 'nowhere' in message
    assert 'make demo' in message


def test_missing_weights_give_the_preflight_message(toy_root, tmp_path):
    config = osp.join(ROOT, 'configs', 'mask-rcnn_ghostnetv2-1.3x_coco.py')
    root = toy_root + '/'
    options = []
    for split, folder in (('train', 'training'), ('val', 'validation')):
        options += [f'{split}_dataloader.dataset.data_root={root}',
                    f'{split}_dataloader.dataset.ann_file=annotations/instances_{folder}.json',
                    f'{split}_dataloader.dataset.data_prefix.img=images/{folder}/']
    message = _train_main([config, '--work-dir', str(tmp_path), '--cfg-options'] + options)
    assert 'ck_ghostnetv2_13.pth.tar' in message and 'not on disk' in message
    assert 'model.backbone.init_cfg' in message
