"""The segmentation configs: each one loads, builds, trains through mmengine's real
Runner on a tiny generated ToyShapes set and evaluates, scoring clearly better on the
training images than before training; the ADE20K backbone really runs at output
stride 8, and the tools' preflight messages and --show-dir work for them."""
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook

from ghostnetv2_mm.checkpoint import official_url
from ghostnetv2_mm.datasets.toy_shapes import make_toy_shapes
from ghostnetv2_mm.utils.toolkit import build_model_from_config, setup_toolkit
from helpers import replace_syncbn as _replace_syncbn
from helpers import tiny_seg_config as _tiny_run_cfg

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ADE_CONFIGS = {
    '1.0x': 'configs/deeplabv3_ghostnetv2_ade20k.py',
    '1.3x': 'configs/deeplabv3_ghostnetv2-1.3x_ade20k.py',
    '1.6x': 'configs/deeplabv3_ghostnetv2-1.6x_ade20k.py',
}
DEMO_CONFIG = 'configs/demo/deeplabv3_ghostnetv2_toyshapes.py'
ALL_CONFIGS = list(ADE_CONFIGS.values()) + [DEMO_CONFIG]
WEIGHTS = {'1.0x': 'ck_ghostnetv2_10.pth.tar', '1.3x': 'ck_ghostnetv2_13.pth.tar',
           '1.6x': 'ck_ghostnetv2_16.pth.tar'}
SIZE = 64


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('toy_shapes'))
    make_toy_shapes(root, num_train=4, num_val=2, size=(SIZE, SIZE), max_objects=3,
                    radius=(8, 18), seed=1)
    return root


def _load(path: str) -> Config:
    return Config.fromfile(osp.join(ROOT, path))


LEARN_ITERS = 6  # iterations of the learning check (constant lr, 4 images, batch 2)
LEARN_MARGIN = 10  # mIoU points the trained model must gain over the untrained one


class EvaluateBeforeTraining(Hook):
    """Evaluates the initialised, not yet trained model: the baseline."""
    priority = 'LOWEST'

    def __init__(self):
        self.metrics = None

    def before_train(self, runner):
        self.metrics = dict(runner.val_loop.run())


@pytest.mark.parametrize('path', ALL_CONFIGS)
def test_config_trains_and_learns_the_training_images(path, toy_root, tmp_path):
    """Trained against untrained on the same data: the config's model, loss and
    optimizer, at a constant lr, fitted for 6 iterations on the 4 training images and
    evaluated on them. Measured (seed 0): mIoU 0.00 -> 15.26 for the ADE20K 1.0x
    config after 5 iterations, 1.62 -> 22.53 for the demo config after 10."""
    from mmengine.runner import Runner
    cfg = _tiny_run_cfg(path, toy_root, str(tmp_path / 'work'))
    assert cfg.custom_imports == dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_prefix = dict(
            img_path='images/training', seg_map_path='annotations/training')
    cfg.train_cfg.update(max_iters=LEARN_ITERS, val_interval=LEARN_ITERS)
    cfg.default_hooks.checkpoint.update(interval=LEARN_ITERS)
    cfg.param_scheduler = []  # the configs warm up from ~0 over far more iterations
    cfg.randomness = dict(seed=0)
    setup_toolkit(cfg)
    runner = Runner.from_cfg(cfg)
    untrained = EvaluateBeforeTraining()
    runner.register_hook(untrained)
    runner.train()

    hub = runner.message_hub
    losses = hub.get_scalar('train/loss').data[0]
    assert len(losses) == LEARN_ITERS
    assert all(math.isfinite(v) for v in losses), losses
    for key in ('train/decode.loss_ce', 'train/aux.loss_ce'):
        assert math.isfinite(hub.get_scalar(key).current())
    before, after = untrained.metrics['mIoU'], hub.get_scalar('val/mIoU').current()
    assert after >= before + LEARN_MARGIN, f'mIoU {before} untrained, {after} trained'
    assert osp.isfile(osp.join(cfg.work_dir, f'iter_{LEARN_ITERS}.pth'))


@pytest.mark.parametrize('arch', sorted(ADE_CONFIGS))
def test_ade20k_backbone_is_output_stride_8(arch):
    cfg = _load(ADE_CONFIGS[arch])
    model = cfg.model
    assert model.pretrained is None
    assert model.backbone.type == 'GhostNetV2' and model.backbone.arch == arch
    assert model.backbone.norm_cfg.type == 'SyncBN'
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=official_url('GhostNetV2', arch))
    assert model.decode_head.type == 'ASPPHead' and model.auxiliary_head.type == 'FCNHead'
    assert model.decode_head.num_classes == model.auxiliary_head.num_classes == 150
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    assert cfg.crop_size == (512, 512)

    _replace_syncbn(cfg._cfg_dict)
    cfg.model.backbone.init_cfg = None
    seg = build_model_from_config(cfg).eval()
    h, w = 96, 128  # non-square on purpose
    with torch.no_grad():
        feats = seg.backbone(torch.randn(1, 3, h, w))
    assert [tuple(f.shape[2:]) for f in feats] == [(h // 4, w // 4)] + [(h // 8, w // 8)] * 3
    channels = [f.shape[1] for f in feats]
    assert channels == list(seg.backbone.out_channels)
    # the heads read the taps they are configured for, with matching widths
    for head in (model.decode_head, model.auxiliary_head):
        assert channels[head.in_index] == head.in_channels
        assert feats[head.in_index].shape[2:] == (h // 8, w // 8)
    assert model.decode_head.in_index == len(feats) - 1  # last, deepest features
    assert model.auxiliary_head.in_index < model.decode_head.in_index
    with torch.no_grad():
        logits = seg.decode_head(feats)
    assert logits.shape == (1, 150, h // 8, w // 8)


@pytest.mark.parametrize('arch', sorted(ADE_CONFIGS))
def test_train_preflight_messages(arch, toy_root, tmp_path, monkeypatch, capsys):
    import tools.train as train_tool
    monkeypatch.chdir(tmp_path)  # no data/ and no checkpoints/ here
    config = osp.join(ROOT, ADE_CONFIGS[arch])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train_tool.main([config])
    message = capsys.readouterr().err
    assert 'ADE20K' in message and 'ADEChallengeData2016' in message

    roots = [f'{split}_dataloader.dataset.data_root={toy_root}'
             for split in ('train', 'val', 'test')]
    # A local copy of the weights that is not there (the configs' URL is not tried:
    # nothing is downloaded in the tests).
    missing = f'{tmp_path}/{WEIGHTS[arch]}'
    with pytest.raises(SystemExit):
        train_tool.main([config, '--cfg-options', *roots,
                         f'model.backbone.init_cfg.checkpoint={missing}'])
    message = capsys.readouterr().err
    assert missing in message and 'not on disk' in message
    assert 'init_cfg=None' in message


def test_demo_config_settings():
    cfg = _load(DEMO_CONFIG)
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert 'SyncBN' not in cfg.pretty_text
    assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 4
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.data_root == 'data/toy_shapes'
        assert dataset.reduce_zero_label is False
        assert dataset.metainfo.classes == ('background', 'circle', 'square', 'triangle')
        loads = [s for s in dataset.pipeline if s['type'] == 'LoadAnnotations']
        assert loads and all(s['reduce_zero_label'] is False for s in loads)
    # the demo is the ADE20K model (same backbone layout and heads), scaled down
    ade = _load(ADE_CONFIGS['1.0x'])
    for key in ('arch', 'strides', 'dilations', 'out_indices'):
        assert cfg.model.backbone[key] == ade.model.backbone[key]
    assert cfg.model.decode_head.type == ade.model.decode_head.type


def test_demo_test_tool_show_dir(toy_root, tmp_path):
    """tools/test.py on the demo config evaluates a checkpoint and, with --show-dir,
    saves the validation pictures with predictions drawn."""
    from mmengine.runner import Runner
    cfg = _tiny_run_cfg(DEMO_CONFIG, toy_root, str(tmp_path / 'train'))
    setup_toolkit(cfg)
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(cfg.work_dir, 'iter_2.pth')
    show_dir = str(tmp_path / 'vis')
    options = [f'test_dataloader.dataset.data_root={toy_root}',
               'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']
    # a fresh process, as on the command line (mmengine's visualizer is a per-process
    # singleton: in this process it would still be the training runner's)
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'test.py'), osp.join(ROOT, DEMO_CONFIG),
         ckpt, '--work-dir', str(tmp_path / 'test'), '--show-dir', show_dir,
         '--cfg-options', *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'mIoU=' in proc.stdout
    pictures = [f for _, _, files in os.walk(show_dir) for f in files if f.endswith('.png')]
    assert len(pictures) == 2, pictures  # one per validation image
