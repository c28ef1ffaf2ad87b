"""Plain helpers the tests import (``from helpers import ...``); fixtures live in
conftest.py. Tiny runs of the real detection / segmentation configs: the configs' own
pipelines, models and loops, with data, image sizes, class counts and loop lengths
shrunk to what a CPU test affords."""
import importlib.util
import os
import subprocess

from ghostnetv2_mm.utils.random_bn import randomise_bn  # noqa: F401  (for the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def once(cache: dict, key, make):
    """``make()`` the first time ``key`` is asked for, then the same result from
    ``cache``; a failed first call fails every later one too (with a pointer to it)."""
    if key not in cache:
        cache[key] = RuntimeError(f'{key} failed (see the first test that asked for it)')
        cache[key] = make()
    if isinstance(cache[key], Exception):
        raise cache[key]
    return cache[key]


def _set_det_scale(pipeline, scale):
    for step in pipeline:
        if step['type'] == 'Resize':
            step['scale'] = scale
        elif step['type'] == 'RandomResize':
            # a list of scales is sampled between its extremes (two are needed); a
            # single scale comes with the config's ratio_range
            step['scale'] = [scale, scale] if isinstance(step['scale'], list) else scale


def tiny_det_config(config: str, toy_root: str, work_dir: str, scale=(96, 96)):
    """mmdet ``config`` with ImageNet weights off, ToyShapes data at ``scale`` (the COCO
    configs' 1333x800 is far too slow on a CPU), batches of 2, one epoch of 2
    iterations (or 2 iterations), every detection kept."""
    from mmengine.config import Config

    from ghostnetv2_mm.datasets.toy_shapes import CLASSES
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    root = toy_root.rstrip('/') + '/'
    for split, folder in (('train', 'training'), ('val', 'validation'),
                          ('test', 'validation')):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        while loader.dataset.type == 'RepeatDataset':  # YOLOv3/SSD repeat COCO 5-10x
            loader.dataset = loader.dataset.dataset
        dataset = loader.dataset
        dataset.update(data_root=root, metainfo=dict(classes=CLASSES),
                       ann_file=f'annotations/instances_{folder}.json',
                       data_prefix=dict(img=f'images/{folder}/'))
        _set_det_scale(dataset.pipeline, scale)
    for split in ('val', 'test'):
        cfg[f'{split}_evaluator'].ann_file = root + 'annotations/instances_validation.json'
    if cfg.train_cfg.type == 'EpochBasedTrainLoop':
        cfg.train_cfg.update(max_epochs=1, val_interval=1)  # 4 images / 2 = 2 iterations
    else:
        cfg.train_cfg.update(max_iters=2, val_interval=2)
        cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    # the COCO configs' heads have 80 classes; ToyShapes has 3 (CocoMetric maps labels
    # to the dataset's categories)
    heads = [cfg.model.get('bbox_head')] + [cfg.model.get('roi_head', {}).get(name)
                                            for name in ('bbox_head', 'mask_head')]
    for head in heads:
        if head:
            head.num_classes = len(CLASSES)
    # keep every detection: after 2 iterations no score passes the usual thresholds,
    # and CocoMetric reports nothing for an empty result
    test_cfg = cfg.model.test_cfg
    (test_cfg.rcnn if 'rcnn' in test_cfg else test_cfg).score_thr = 0.0
    if 'conf_thr' in test_cfg:  # YOLOv3 also drops boxes by objectness
        test_cfg.conf_thr = 0.0
    cfg.visualizer.name = f'visualizer_{os.path.basename(config)}'  # one per runner
    cfg.work_dir = work_dir
    return cfg


def replace_syncbn(node):
    """SyncBN -> BN everywhere (one process, no process group)."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            replace_syncbn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            replace_syncbn(value)


def _set_seg_size(pipeline, size):
    for step in pipeline:
        if step['type'] in ('RandomResize', 'Resize') and 'scale' in step:
            step['scale'] = (size * 4, size) if step.get('keep_ratio') else (size, size)
        if step['type'] == 'RandomCrop':
            step['crop_size'] = (size, size)


def tiny_seg_config(config: str, data_root: str, work_dir: str, size: int = 64):
    """mmseg ``config`` with ImageNet weights off, BN for SyncBN, ToyShapes data with
    its scales shrunk to ``size``, 2 iterations, validated at the end."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(ROOT, config))
    replace_syncbn(cfg._cfg_dict)
    cfg.model.backbone.init_cfg = None  # no ImageNet weights
    cfg.model.data_preprocessor.size = (size, size)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2 if split == 'train' else 1, num_workers=0,
                      persistent_workers=False)
        loader.dataset.data_root = data_root
        _set_seg_size(loader.dataset.pipeline, size)
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=1)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.env_cfg.cudnn_benchmark = False
    return cfg


# ------------------------------------------------- shared by several test modules
RUN_TIMEOUT = 300


def run(cmd, env=None, timeout=RUN_TIMEOUT):
    """``cmd`` in the repository root (no LOCAL_RANK inherited); ``.output`` holds
    stdout and stderr."""
    env = dict(os.environ, **(env or {}))
    env.pop('LOCAL_RANK', None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    proc.output = proc.stdout + proc.stderr
    return proc


def load_tool(name):
    """tools/<name>.py as a module: its main(argv) is the command line's entry."""
    spec = importlib.util.spec_from_file_location(
        f'_ghostnetv2_tool_{name}', os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_state_dict(name='ghostnetv2_100'):
    """A timm model and its state dict in the layout of the official files, with the
    thop counters (total_ops / total_params) they carry on every module."""
    import timm
    import torch
    model = randomise_bn(timm.create_model(name, pretrained=False)).eval()
    state = dict(model.state_dict())
    for module_name, _ in model.named_modules():
        prefix = f'{module_name}.' if module_name else ''
        state[f'{prefix}total_ops'] = torch.zeros(1, dtype=torch.float64)
        state[f'{prefix}total_params'] = torch.zeros(1, dtype=torch.float64)
    return model, state


IMAGENET_CONFIGS = {
    '1.0x': ('configs/ghostnetv2-1.0x_8xb128_in1k.py', 6_156_908),
    '1.3x': ('configs/ghostnetv2-1.3x_8xb128_in1k.py', 8_960_404),
    '1.6x': ('configs/ghostnetv2-1.6x_8xb128_in1k.py', 12_392_698),
}


def load_config(path):
    """A config of this repository (path relative to its root), read by mmengine."""
    from mmengine.config import Config
    return Config.fromfile(os.path.join(ROOT, path))


def make_image_folder(root, splits=('train', 'val'), classes=('cat', 'dog'), per_class=1,
                      size=32):
    """A tiny image folder, ``root/<split>/<class>/<i>.png``, each class its colour."""
    import numpy as np
    from PIL import Image
    osp = os.path
    rng = np.random.RandomState(0)
    for split in splits:
        for c, name in enumerate(classes):
            os.makedirs(osp.join(root, split, name), exist_ok=True)
            for i in range(per_class):
                img = rng.randint(0, 256, (size, size, 3), dtype=np.uint8)
                img[..., c % 3] = 255  # a class-dependent colour
                Image.fromarray(img).save(osp.join(root, split, name, f'{i}.png'))
    return root


def tiny_runner_config(cfg, data_root, work_dir, num_classes=2):
    """One training iteration (2 images, batch 2) and an evaluation on 2 images."""
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.batch_size = 2
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset = dict(
            type='CustomDataset', data_root=data_root,
            data_prefix='train' if split == 'train' else 'val', with_label=True,
            pipeline=loader.dataset.pipeline)
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1,))
    cfg.model.head.num_classes = num_classes
    cfg.model.head.topk = (1,)
    if 'data_preprocessor' in cfg.model:
        cfg.model.data_preprocessor.num_classes = num_classes
    if 'data_preprocessor' in cfg:
        cfg.data_preprocessor.num_classes = num_classes
    cfg.model.backbone.init_cfg = None  # no ImageNet weights in the test
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    return cfg


RETINANET = os.path.join(ROOT, 'configs', 'retinanet_ghostnetv2_coco.py')
DEEPLABV3 = os.path.join(ROOT, 'configs', 'deeplabv3_ghostnetv2_ade20k.py')


# Small heads, nothing downloaded; the networks and the test-time settings (nms_pre,
# score_thr, NMS IoU, max_per_img) stay the configs' own.
RETINANET_OPTIONS = {'model.backbone.init_cfg': None, 'model.neck.out_channels': 32,
                     'model.bbox_head.in_channels': 32, 'model.bbox_head.feat_channels': 32,
                     'model.bbox_head.stacked_convs': 1, 'model.bbox_head.num_classes': 3}


DEEPLABV3_OPTIONS = {'model.backbone.init_cfg': None, 'model.decode_head.channels': 32,
                     'model.decode_head.num_classes': 5,
                     'model.auxiliary_head.num_classes': 5}


def random_checkpoint(config, options, path, sharpen=None):
    """A checkpoint of the config's model with random weights and BN statistics;
    ``sharpen(model)`` may redraw some weights first."""
    import torch
    from mmengine.config import Config

    from ghostnetv2_mm.checkpoint import save_checkpoint_file

    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = randomise_bn(build_model_from_config(cfg))
    if sharpen:
        sharpen(model)
    save_checkpoint_file({'state_dict': model.state_dict()}, str(path))
    return str(path)


class Lookup:
    """Pickles as ``getattr(obj, name)``; callable, so that it may stand where the
    pickle calls a function (its result is called when the file is loaded)."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)

    def __call__(self, *args):  # pragma: no cover - never called while pickling
        raise AssertionError


class Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):  # pragma: no cover
        raise AssertionError


def eval_payload(marker):
    """HistoryBuffer.mean.__globals__.get('__builtins__') -> .get('eval') -> eval(code):
    starts with a lookup mmengine checkpoints really make."""
    from mmengine.logging.history_buffer import HistoryBuffer
    globals_ = Lookup(Lookup(HistoryBuffer, 'mean'), '__globals__')
    builtins = Call(Lookup(globals_, 'get'), '__builtins__')
    evaluate = Call(Lookup(builtins, 'get'), 'eval')
    return Call(evaluate, f'open({str(marker)!r}, "w").write("ran")')
