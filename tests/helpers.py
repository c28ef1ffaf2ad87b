"""Plain helpers the tests import (``from helpers import ...``); fixtures live in
conftest.py. Tiny runs of the real detection / segmentation configs: the configs' own
pipelines, models and loops, with data, image sizes, class counts and loop lengths
shrunk to what a CPU test affords."""
import os

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
