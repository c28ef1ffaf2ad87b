"""Data of the transfer benchmark: dataset splits as ``Source`` objects (scikit-learn's
digits, mmpretrain's datasets read from disk, image folders) and the loader that
resizes, augments and normalises them identically for every backbone."""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name -> (mmpretrain dataset class, default folder under --data-root, train split,
#          test split)
MMPRETRAIN_DATASETS = {
    'cifar10': ('CIFAR10', 'cifar10', 'train', 'test'),
    'cifar100': ('CIFAR100', 'cifar100', 'train', 'test'),
    'flowers102': ('Flowers102', 'Flowers102', 'trainval', 'test'),
    'pets': ('OxfordIIITPet', 'Oxford-IIIT_Pets', 'trainval', 'test'),
    'dtd': ('DTD', 'dtd', 'trainval', 'test'),
    'food101': ('Food101', 'food-101', 'train', 'test'),
    'cars': ('StanfordCars', 'Stanford_Cars', 'train', 'test'),
    'caltech101': ('Caltech101', 'caltech-101', 'train', 'test'),
}


class Source:
    """A split of a dataset: ``len``, ``load(i) -> PIL RGB image``, ``labels``."""

    def __init__(self, labels: Sequence[int], num_classes: int):
        self.labels = [int(x) for x in labels]
        self.num_classes = num_classes

    def __len__(self):
        return len(self.labels)

    def load(self, i: int) -> Image.Image:
        raise NotImplementedError

    def subset(self, limit: Optional[int], seed: int) -> 'Source':
        """A fixed random subset of ``limit`` items (for smoke tests)."""
        if not limit or limit >= len(self):
            return self
        order = np.random.RandomState(seed).permutation(len(self))[:limit]
        return _Subset(self, sorted(order.tolist()))


class _Subset(Source):
    def __init__(self, parent: Source, indices: List[int]):
        super().__init__([parent.labels[i] for i in indices], parent.num_classes)
        self.parent, self.indices = parent, indices

    def load(self, i):
        return self.parent.load(self.indices[i])


class ArraySource(Source):
    """Images held in memory as an (N, H, W, 3) uint8 RGB array."""

    def __init__(self, images: np.ndarray, labels, num_classes: int):
        super().__init__(labels, num_classes)
        self.images = images

    def load(self, i):
        return Image.fromarray(self.images[i])


class PathSource(Source):
    def __init__(self, paths: List[str], labels, num_classes: int):
        super().__init__(labels, num_classes)
        self.paths = paths

    def load(self, i):
        with Image.open(self.paths[i]) as img:
            return img.convert('RGB')


def load_digits_splits() -> Tuple[Source, Source]:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped with the package):
    a fixed stratified 75/25 split (random_state=0), grey levels 0-16 -> 0-255 RGB."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = np.repeat(images[..., None], 3, axis=-1)
    idx_train, idx_test = train_test_split(np.arange(len(images)), test_size=0.25,
                                           stratify=digits.target, random_state=0)
    return (ArraySource(images[idx_train], digits.target[idx_train], 10),
            ArraySource(images[idx_test], digits.target[idx_test], 10))


def _from_mmpretrain_dataset(dataset) -> Source:
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    labels = [int(info['gt_label']) for info in infos]
    classes = getattr(dataset, 'CLASSES', None) or dataset.metainfo.get('classes')
    num_classes = len(classes) if classes else max(labels) + 1
    if 'img' in infos[0]:
        return ArraySource(np.stack([info['img'] for info in infos]), labels, num_classes)
    return PathSource([info['img_path'] for info in infos], labels, num_classes)


def load_dataset_splits(name: str, data_root: str) -> Tuple[Source, Source, str]:
    """Return (train, test, where) for a dataset name, ``NAME=PATH`` or folder path."""
    if name == 'digits':
        train, test = load_digits_splits()
        return train, test, 'scikit-learn load_digits'
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    import mmpretrain.datasets as mmpds
    if name in MMPRETRAIN_DATASETS:
        cls_name, folder, train_split, test_split = MMPRETRAIN_DATASETS[name]
        root = osp.join(data_root, folder)
        if not osp.isdir(root):
            raise SystemExit(f'error: dataset {name!r} is not on disk: {root!r} does not '
                             f'exist (expected the layout mmpretrain.datasets.{cls_name} '
                             'reads; see docs/transfer.md). Nothing is downloaded.')
        cls = getattr(mmpds, cls_name)
        kwargs = dict(download=False) if cls_name.startswith('CIFAR') else {}
        try:
            train = cls(data_root=root, split=train_split, pipeline=[], **kwargs)
            test = cls(data_root=root, split=test_split, pipeline=[], **kwargs)
        except ImportError as exc:
            raise SystemExit(f'error: reading {name!r} needs a missing package ({exc}); '
                             'e.g. `pip install mat4py` for the .mat annotation files')
        return _from_mmpretrain_dataset(train), _from_mmpretrain_dataset(test), root
    # image folder: NAME=PATH, or a folder name under --data-root, or a path
    root = name.split('=', 1)[1] if '=' in name else (
        name if osp.isdir(name) else osp.join(data_root, name))
    if not osp.isdir(root):
        raise SystemExit(f'error: unknown dataset {name!r}: not one of '
                         f'{["digits"] + sorted(MMPRETRAIN_DATASETS)} and no folder '
                         f'{root!r}; an image folder needs ROOT/train/<class>/* and '
                         'ROOT/test/<class>/* (or ROOT/val/<class>/*)')
    test_dir = next((d for d in ('test', 'val') if osp.isdir(osp.join(root, d))), None)
    if not osp.isdir(osp.join(root, 'train')) or test_dir is None:
        raise SystemExit(f'error: image folder {root!r} needs train/<class>/* and '
                         'test/<class>/* (or val/<class>/*) subfolders')
    train = mmpds.CustomDataset(data_root=root, data_prefix='train', with_label=True,
                                pipeline=[])
    test = mmpds.CustomDataset(data_root=root, data_prefix=test_dir, with_label=True,
                               pipeline=[], classes=train.CLASSES)
    return _from_mmpretrain_dataset(train), _from_mmpretrain_dataset(test), root


def dataset_label(name: str) -> str:
    return name.split('=', 1)[0] if '=' in name else name


class TensorDataset(torch.utils.data.Dataset):
    """Resize to img_size^2, optional pad-and-crop / flip, ImageNet normalisation."""

    def __init__(self, source: Source, img_size: int, augment: bool, flip: bool):
        self.source, self.img_size = source, img_size
        self.augment, self.flip = augment, flip
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        img = self.source.load(i).resize((self.img_size, self.img_size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        x = x.float().div_(255)
        if self.augment:
            pad = max(1, self.img_size // 8)
            x = F.pad(x[None], (pad, pad, pad, pad), mode='reflect')[0]
            top, left = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,)))
            x = x[:, top:top + self.img_size, left:left + self.img_size]
            if self.flip and torch.rand(()) < 0.5:
                x = x.flip(2)
        return (x - self.mean) / self.std, self.source.labels[i]


def make_loader(source: Source, *, img_size: int, augment: bool = False,
                flip: bool = False, batch_size: int = 128, shuffle: bool = False,
                seed: int = 0, workers: int = 0) -> torch.utils.data.DataLoader:
    """Batches of (normalised images, labels) of ``source`` at ``img_size`` squared.

    Args:
        source (Source): the split.
        img_size (int): the side every image is resized to.
        augment (bool): reflect-pad by img_size/8 and random-crop back.
        flip (bool): with ``augment``, a horizontal flip with p=0.5.
        batch_size (int): images per batch.
        shuffle (bool): a new order every epoch, drawn from ``seed``.
        seed (int): seeds the order.
        workers (int): data loader worker processes.
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        TensorDataset(source, img_size, augment, flip), batch_size=batch_size,
        shuffle=shuffle, generator=gen, num_workers=workers,
        persistent_workers=False)
