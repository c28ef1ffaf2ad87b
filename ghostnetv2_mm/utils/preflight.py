"""Checks run before training/testing starts, so that a missing dataset or missing
pretrained weights give one clear message instead of a failure deep in a runner."""
import os
from typing import List, Optional

from mmengine.config import Config

from ..checkpoint.loading import OFFICIAL_WEIGHTS_HINT

DATASET_HELP = {
    'CocoDataset': (
        'COCO 2017, laid out as\n'
        '  {root}/annotations/instances_train2017.json\n'
        '  {root}/annotations/instances_val2017.json\n'
        '  {root}/train2017/*.jpg\n'
        '  {root}/val2017/*.jpg\n'
        'Get it from https://cocodataset.org/#download (2017 Train/Val images and '
        'Train/Val annotations), or link an existing copy: ln -s /path/to/coco {root}'),
    'ADE20KDataset': (
        'ADE20K (SceneParsing, ADEChallengeData2016), laid out as\n'
        '  {root}/images/training/*.jpg      {root}/annotations/training/*.png\n'
        '  {root}/images/validation/*.jpg    {root}/annotations/validation/*.png\n'
        'Get ADEChallengeData2016.zip from http://sceneparsing.csail.mit.edu and unzip '
        'it under data/ade/, or link an existing copy: ln -s /path/to/ADEChallengeData2016 {root}'),
    'ImageNet': (
        'ImageNet-1k, laid out as\n'
        '  {root}/train/<class>/*.JPEG  {root}/val/<class>/*.JPEG (or meta/{{train,val}}.txt)\n'
        'Get it from https://image-net.org (registration needed).'),
}


def _datasets(cfg_dataset) -> List[dict]:
    """Unwrap RepeatDataset/ConcatDataset/ClassBalancedDataset wrappers."""
    if cfg_dataset is None:
        return []
    if 'datasets' in cfg_dataset:
        return [d for sub in cfg_dataset['datasets'] for d in _datasets(sub)]
    if 'dataset' in cfg_dataset:
        return _datasets(cfg_dataset['dataset'])
    return [cfg_dataset]


def _missing_paths(dataset: dict) -> List[str]:
    root = dataset.get('data_root') or ''
    paths = [root] if root else []
    ann = dataset.get('ann_file')
    if ann:
        paths.append(os.path.join(root, ann))
    for value in (dataset.get('data_prefix') or {}).values():
        if isinstance(value, str) and value:
            paths.append(os.path.join(root, value))
    return [p for p in paths if not os.path.exists(p)]


def check_datasets(cfg: Config, splits=('train', 'val', 'test')) -> Optional[str]:
    """Return a message describing the first missing dataset, or None."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset in _datasets(loader.get('dataset')):
            missing = _missing_paths(dataset)
            if missing:
                kind = dataset.get('type', 'the dataset')
                kind = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
                help_text = DATASET_HELP.get(kind, 'See the config for the expected layout.')
                return (f'The {split} dataset of this config ({kind}) is not on disk: '
                        f'{missing[0]!r} does not exist.\nExpected: '
                        + help_text.format(root=dataset.get('data_root', 'data/...').rstrip('/'))
                        + '\nTo try the project without downloading anything, run `make demo`.')
    return None


def check_pretrained(cfg: Config) -> Optional[str]:
    """Return a message if the backbone's Pretrained checkpoint file is missing."""
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    init_cfg = backbone.get('init_cfg')
    checkpoint = None
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        checkpoint = init_cfg.get('checkpoint')
    elif isinstance(backbone.get('pretrained'), str):
        checkpoint = backbone['pretrained']
    if checkpoint and '://' not in checkpoint and not os.path.isfile(checkpoint):
        return (f'The backbone\'s pretrained weights {checkpoint!r} are not on disk.\n'
                + OFFICIAL_WEIGHTS_HINT + f'\nOverride the path with --cfg-options '
                f'model.backbone.init_cfg.checkpoint=PATH.')
    return None
