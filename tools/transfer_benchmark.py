#!/usr/bin/env python
"""Transfer-learning benchmark: GhostNetV2 1.0x/1.3x/1.6x against mmpretrain baselines.

    python tools/transfer_benchmark.py --datasets digits \\
        --backbones ghostnetv2_1.0x mobilenet_v2 --out work_dirs/transfer

Protocol (fixed, identical for every backbone; see docs/transfer.md):

* Model: the backbone's last feature map -> global average pooling -> one linear layer
  (no dropout). ImageNet-specific neck layers (GhostNetV2's 1280-d conv head,
  MobileNetV3's 1280-d hidden FC) are not used, so every backbone gets the same head.
  Params and MACs are those of this model at the benchmark resolution (MACs: conv +
  linear multiply-accumulates, BN excluded, ``ghostnetv2_mm.utils.count_macs``).
* Input: every image is resized to ``--img-size`` squared (bilinear) and normalised with
  the ImageNet mean/std. Train-time augmentation (fine-tuning only): reflect-pad by
  img_size/8 and random-crop back, plus a horizontal flip with p=0.5 except on 'digits'.
* ``linear`` (linear probe): the backbone is frozen in eval mode; pooled features of the
  train and test splits are extracted once, standardised with the train statistics,
  and a multinomial logistic regression (scikit-learn, L-BFGS, C=1.0, max_iter=1000)
  is fitted on train and scored on test.
* ``finetune``: all weights trained for ``--epochs`` epochs, batch 64, SGD (momentum 0.9,
  Nesterov) with lr ``--lr``, weight decay 1e-4 (none on BN and biases), global
  gradient norm clipped to 1.0, linear warm-up over the first epoch then cosine decay
  to 0; BN in train mode. The accuracy is that
  of the final weights on the test split (no model selection on test).
* Seeds: ``--seed`` seeds the weight initialisation of every backbone and head, the data
  order and the augmentation; splits are the datasets' official ones ('digits': a fixed
  stratified 75/25 split, random_state=0).
* Weights: random initialisation unless ``--weights NAME=PATH`` is given; the 'init'
  column of the table says which.
* ``--device cuda`` runs extraction and fine-tuning on a GPU (default: CPU).
* CPU latency: batch 1, ``--latency-threads`` threads, median of ``--latency-runs`` timed
  forward passes after 3 warm-up passes, at ``--img-size``.

Results are appended to ``OUT/results.csv`` one row per (dataset, backbone, protocol) as
soon as each finishes; a rerun skips the rows already there (resume), and refuses to mix
rows obtained with other settings. ``OUT/results.md`` and ``OUT/accuracy_vs_macs.png``
are rewritten from the CSV after each row.
"""
import argparse
import csv
import math
import os
import os.path as osp
import platform
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name -> (backbone config for mmpretrain's registry, label used in plots)
BACKBONES: Dict[str, dict] = {
    'ghostnetv2_1.0x': dict(type='GhostNetV2', arch='1.0x', out_indices=(10,)),
    'ghostnetv2_1.3x': dict(type='GhostNetV2', arch='1.3x', out_indices=(10,)),
    'ghostnetv2_1.6x': dict(type='GhostNetV2', arch='1.6x', out_indices=(10,)),
    'mobilenet_v2': dict(type='MobileNetV2', widen_factor=1.0),
    'mobilenet_v3_large': dict(type='MobileNetV3', arch='large'),
    'resnet18': dict(type='ResNet', depth=18),
    'efficientnet_b0': dict(type='EfficientNet', arch='b0'),
}

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
PROTOCOLS = ('linear', 'finetune')
GRAD_CLIP_NORM = 1.0  # fine-tuning: global gradient norm clipped to this
CSV_FIELDS = ['dataset', 'backbone', 'protocol', 'init', 'top1', 'params', 'macs',
              'latency_ms', 'latency_threads', 'img_size', 'epochs', 'lr', 'seed',
              'n_train', 'n_test', 'num_classes', 'seconds', 'finished']
# Columns that must agree for a row to be reused by a rerun.
SETTING_FIELDS = ['init', 'img_size', 'epochs', 'lr', 'seed', 'n_train', 'n_test']


class NonFiniteError(FloatingPointError):
    """A NaN or infinity where the protocol needs finite numbers (features, loss)."""


# ------------------------------------------------------------------------------ data
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


def make_loader(source, img_size, augment, flip, batch_size, shuffle, seed, workers):
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        TensorDataset(source, img_size, augment, flip), batch_size=batch_size,
        shuffle=shuffle, generator=gen, num_workers=workers,
        persistent_workers=False)


# ----------------------------------------------------------------------------- model
class Classifier(nn.Module):
    """backbone -> global average pooling of its last output -> linear."""

    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(feat_dim, num_classes)

    def features(self, x):
        out = self.backbone(x)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        return out.mean((2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


def build_backbone(name: str) -> nn.Module:
    import ghostnetv2_mm  # noqa: F401  (registers GhostNetV2)
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    backbone = MODELS.build(dict(BACKBONES[name]))
    if hasattr(backbone, 'init_weights'):
        # the backbone's own default initialisation, as mmengine's Runner applies it;
        # mmengine logs every parameter's initialiser at INFO level: keep that quiet
        import logging
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            backbone.init_weights()
        finally:
            logger.setLevel(level)
    return backbone


def load_pretrained(backbone: nn.Module, name: str, path: str) -> str:
    """Load ImageNet weights into ``backbone``; every backbone weight must be found."""
    if not osp.isfile(path):
        raise SystemExit(f'error: --weights {name}={path}: file not found')
    if name.startswith('ghostnetv2'):
        from ghostnetv2_mm.checkpoint import load_model_weights
        load_model_weights(backbone, path)  # official, timm or mm layouts, strict
        return f'imagenet ({osp.basename(path)})'
    from ghostnetv2_mm.checkpoint import load_checkpoint_file
    state = load_checkpoint_file(path)
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')}
    missing, _ = backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing:
        raise SystemExit(f'error: --weights {name}={path}: {len(missing)} backbone weights '
                         f'missing, e.g. {missing[:3]} (expected an mmpretrain checkpoint '
                         'of this architecture)')
    return f'imagenet ({osp.basename(path)})'


def build_model(name: str, num_classes: int, img_size: int, seed: int,
                weights: Dict[str, str]) -> Tuple[Classifier, str]:
    torch.manual_seed(seed)
    backbone = build_backbone(name)
    init = 'random'
    if name in weights:
        init = load_pretrained(backbone, name, weights[name])
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, img_size, img_size))
    feat_dim = (out[-1] if isinstance(out, (tuple, list)) else out).shape[1]
    torch.manual_seed(seed + 1)
    return Classifier(backbone, feat_dim, num_classes), init


def measure_cost(model: Classifier, img_size: int, threads: int, runs: int):
    from ghostnetv2_mm.utils import count_macs, count_parameters
    params = count_parameters(model)
    x = torch.zeros(1, 3, img_size, img_size)
    macs, _ = count_macs(model, x)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.eval()
    times = []
    try:
        with torch.no_grad():
            for i in range(3 + runs):
                start = time.perf_counter()
                model(x)
                if i >= 3:
                    times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(old_threads)
    return params, macs, 1000 * float(np.median(times))


# ------------------------------------------------------------------------- protocols
def progress(iterable=None, **kwargs):
    from tqdm.auto import tqdm
    return tqdm(iterable, dynamic_ncols=True, **kwargs)


@torch.no_grad()
def extract(model: Classifier, loader, desc: str, device='cpu'):
    model.eval()
    feats, labels = [], []
    for x, y in progress(loader, desc=desc, leave=False):
        feats.append(model.features(x.to(device)).cpu())
        labels.append(y)
    feats = torch.cat(feats).numpy().astype(np.float64)
    # A NaN/inf feature means a broken backbone or weights: stop, rather than let a
    # replacement value turn it into a plausible accuracy.
    bad = np.flatnonzero(~np.isfinite(feats).all(axis=1))
    if len(bad):
        raise NonFiniteError(
            f'{desc}: {len(bad)} of {len(feats)} images give non-finite (NaN or inf) '
            f'pooled features, the first at image {int(bad[0])} of the split')
    return feats, torch.cat(labels).numpy()


def run_linear(model, train, test, args, flip) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    kw = dict(img_size=args.img_size, augment=False, flip=False, batch_size=128,
              shuffle=False, seed=args.seed, workers=args.workers)
    model.to(args.device)
    x_train, y_train = extract(model, make_loader(train, **kw), 'features (train)',
                               args.device)
    x_test, y_test = extract(model, make_loader(test, **kw), 'features (test)', args.device)
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=1.0, max_iter=1000, random_state=args.seed)
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        clf.fit(scaler.transform(x_train), y_train)
    return float((clf.predict(scaler.transform(x_test)) == y_test).mean())


def run_finetune(model, train, test, args, flip) -> float:
    torch.manual_seed(args.seed)
    model.to(args.device)
    loader = make_loader(train, args.img_size, True, flip, args.batch_size, True,
                         args.seed, args.workers)
    decay, no_decay = [], []
    for p_name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or p_name.endswith('.bias') else decay).append(p)
    optimizer = torch.optim.SGD([dict(params=decay, weight_decay=1e-4),
                                 dict(params=no_decay, weight_decay=0.0)],
                                lr=args.lr, momentum=0.9, nesterov=True)
    per_epoch = len(loader)
    total = max(1, per_epoch * args.epochs)
    warmup = min(per_epoch, total)

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    bar = progress(total=total, desc='fine-tune', leave=False)
    for epoch in range(args.epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(args.device), y.to(args.device)
            loss = F.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                raise NonFiniteError(f'fine-tune: the training loss is {loss.item()} at '
                                     f'step {bar.n + 1} (epoch {epoch + 1})')
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # From random initialisation, SGD at these learning rates blows up after
            # a few dozen steps (loss back above chance); clipping the global gradient
            # norm to 1.0 keeps it stable (digits, 5 epochs: 94.2% vs 54.0% unclipped).
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
            optimizer.step()
            scheduler.step()
            bar.set_postfix(epoch=f'{epoch + 1}/{args.epochs}', loss=f'{loss.item():.3f}')
            bar.update()
    bar.close()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in make_loader(test, args.img_size, False, False, 128, False,
                                args.seed, args.workers):
            correct += int((model(x.to(args.device)).argmax(1).cpu() == y).sum())
    return correct / len(test)


# --------------------------------------------------------------------------- results
def read_rows(path: str) -> List[dict]:
    if not osp.isfile(path):
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def append_row(path: str, row: dict) -> None:
    new = not osp.isfile(path) or os.path.getsize(path) == 0
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, '') for k in CSV_FIELDS})
        f.flush()
        os.fsync(f.fileno())


def _sort_key(row):
    return (row['dataset'], row['protocol'], float(row['macs']), row['backbone'])


def write_markdown(rows: List[dict], path: str) -> None:
    lines = [
        '# Transfer benchmark results', '',
        'Generated by `tools/transfer_benchmark.py` from `results.csv` (protocol: see '
        'the script\'s docstring and docs/transfer.md). Params and MACs are those of '
        'backbone + global pooling + linear classifier at the benchmark resolution '
        '(MACs: conv + linear only, BN excluded). `init=random` means the backbone was '
        'NOT pretrained: such rows measure training from scratch, not ImageNet transfer.',
        '',
        '| Dataset | Protocol | Backbone | Init | Top-1 (%) | Params (M) | MACs (M) '
        '| CPU latency (ms) | Img size | Epochs | Seed | Train / test |',
        '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for r in sorted(rows, key=_sort_key):
        lines.append(
            f"| {r['dataset']} | {r['protocol']} | {r['backbone']} | {r['init']} | "
            f"{100 * float(r['top1']):.2f} | {int(r['params']) / 1e6:.2f} | "
            f"{int(r['macs']) / 1e6:.1f} | {float(r['latency_ms']):.1f} "
            f"({r['latency_threads']} thr) | {r['img_size']} | {r['epochs'] or '-'} | "
            f"{r['seed']} | {r['n_train']} / {r['n_test']} |")
    lines += ['', f'Machine: {platform.processor() or platform.machine()}, '
              f'torch {torch.__version__}.', '']
    with open(path, 'w') as f:
        f.write('\n'.join(lines))


def write_plot(rows: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = sorted({(r['dataset'], r['protocol']) for r in rows})
    if not panels:
        return
    cols = min(2, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4.2 * nrows), squeeze=False)
    for ax, (dataset, protocol) in zip(axes.flat, panels):
        sel = sorted((r for r in rows if r['dataset'] == dataset
                      and r['protocol'] == protocol), key=lambda r: float(r['macs']))
        ghost = [r for r in sel if r['backbone'].startswith('ghostnetv2')]
        if ghost:
            ax.plot([int(r['macs']) / 1e6 for r in ghost],
                    [100 * float(r['top1']) for r in ghost], '-', color='tab:red',
                    alpha=0.5, zorder=1)
        for r in sel:
            is_ghost = r['backbone'].startswith('ghostnetv2')
            x, y = int(r['macs']) / 1e6, 100 * float(r['top1'])
            ax.scatter([x], [y], s=50, zorder=2, marker='*' if is_ghost else 'o',
                       color='tab:red' if is_ghost else 'tab:blue')
            ax.annotate(r['backbone'] + ('' if r['init'] == 'random' else ' (IN)'),
                        (x, y), textcoords='offset points', xytext=(4, 4), fontsize=8)
        inits = sorted({'random' if r['init'] == 'random' else 'imagenet' for r in sel})
        ax.set_xscale('log')
        from matplotlib.ticker import FormatStrFormatter
        ax.xaxis.set_major_formatter(FormatStrFormatter('%g'))
        ax.xaxis.set_minor_formatter(FormatStrFormatter('%g'))
        ax.tick_params(axis='x', which='minor', labelsize=7)
        ax.set_xlabel(f"MACs (M) at {sel[0]['img_size']}x{sel[0]['img_size']}")
        ax.set_ylabel('top-1 accuracy (%)')
        ax.set_title(f'{dataset} / {protocol} (init: {", ".join(inits)})')
        ax.grid(True, which='both', alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(csv_path: str, out: str) -> List[dict]:
    rows = read_rows(csv_path)
    write_markdown(rows, osp.join(out, 'results.md'))
    write_plot(rows, osp.join(out, 'accuracy_vs_macs.png'))
    return rows


# ------------------------------------------------------------------------------ main
def expected_settings(args, protocol, backbone, train=None, test=None) -> dict:
    finetune = protocol == 'finetune'
    settings = dict(
        init=(f'imagenet ({osp.basename(args.weights[backbone])})'
              if backbone in args.weights else 'random'),
        img_size=args.img_size, epochs=args.epochs if finetune else '',
        lr=args.lr if finetune else '', seed=args.seed)
    if train is not None:
        settings.update(n_train=len(train), n_test=len(test))
    return settings


def check_compatible(done: Dict[tuple, dict], dataset: str, backbone: str, protocol: str,
                     settings: dict, csv_path: str) -> None:
    """Exit if ``csv_path`` holds rows of this (dataset, protocol) obtained with other
    settings: a resumed table must not mix protocols."""
    for (d, b, p), row in done.items():
        if d != dataset or p != protocol:
            continue
        keys = [k for k in settings if k != 'init' or b == backbone]
        diff = [f'{k}: {row.get(k)!s} there, {settings[k]!s} now' for k in keys
                if str(row.get(k)) != str(settings[k])]
        if diff:
            raise SystemExit(f'error: {csv_path} holds {dataset}/{b}/{p} obtained with '
                             f'other settings ({"; ".join(diff)}); use another --out, or '
                             'the same settings to resume')


def _split_list(values: Sequence[str]) -> List[str]:
    return [v for item in values for v in item.split(',') if v]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Linear-probe and fine-tuning transfer benchmark of GhostNetV2 '
        'against mmpretrain baselines (protocol in the module docstring).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--datasets', nargs='+', default=['digits'],
                        help='digits, ' + ', '.join(sorted(MMPRETRAIN_DATASETS)) +
                        ', or an image folder as NAME=PATH (PATH/train/<class>/*, '
                        'PATH/test/<class>/* or PATH/val/<class>/*)')
    parser.add_argument('--data-root', default='data',
                        help='folder holding the datasets in their standard layouts')
    parser.add_argument('--backbones', nargs='+', default=list(BACKBONES),
                        help='any of ' + ', '.join(BACKBONES))
    parser.add_argument('--protocols', default='linear,finetune',
                        help='comma-separated subset of linear,finetune')
    parser.add_argument('--epochs', type=int, default=10, help='fine-tuning epochs')
    parser.add_argument('--lr', type=float, default=0.05, help='fine-tuning peak lr')
    parser.add_argument('--batch-size', type=int, default=64, help='fine-tuning batch')
    parser.add_argument('--img-size', type=int, default=32,
                        help='input resolution for every backbone (use 224 for the '
                        'natural-image datasets)')
    parser.add_argument('--weights', nargs='*', default=[], metavar='NAME=PATH',
                        help='ImageNet weights for a backbone (official GhostNetV2 '
                        '.pth.tar, timm or mmpretrain checkpoints); random init otherwise')
    parser.add_argument('--out', default='work_dirs/transfer', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-train', type=int, default=None,
                        help='use a fixed random subset of the train split (smoke tests)')
    parser.add_argument('--max-test', type=int, default=None,
                        help='use a fixed random subset of the test split (smoke tests)')
    parser.add_argument('--workers', type=int, default=0, help='data loader workers')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads for training/extraction (default: torch\'s)')
    parser.add_argument('--device', default='cpu',
                        help='where to extract features and fine-tune (e.g. cuda); '
                        'latency is always measured on the CPU')
    parser.add_argument('--latency-threads', type=int, default=1)
    parser.add_argument('--latency-runs', type=int, default=30)
    args = parser.parse_args(argv)
    args.datasets = _split_list(args.datasets)
    args.backbones = _split_list(args.backbones)
    args.protocols = _split_list([args.protocols])
    for b in args.backbones:
        if b not in BACKBONES:
            parser.error(f'unknown backbone {b!r}; choose from {", ".join(BACKBONES)}')
    for p in args.protocols:
        if p not in PROTOCOLS:
            parser.error(f'unknown protocol {p!r}; choose from {", ".join(PROTOCOLS)}')
    weights = {}
    for item in args.weights:
        name, sep, path = item.partition('=')
        if not sep or name not in BACKBONES:
            parser.error(f'--weights {item!r}: expected NAME=PATH with NAME one of '
                         f'{", ".join(BACKBONES)}')
        weights[name] = path
    args.weights = weights
    if args.img_size < 8 or args.epochs < 1:
        parser.error('--img-size must be >= 8 and --epochs >= 1')
    return args


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    csv_path = osp.join(args.out, 'results.csv')
    done = {(r['dataset'], r['backbone'], r['protocol']): r for r in read_rows(csv_path)}

    tasks = [(d, b, p) for d in args.datasets for b in args.backbones
             for p in args.protocols]
    todo = [t for t in tasks if (dataset_label(t[0]), t[1], t[2]) not in done]
    for d, b, p in tasks:  # refuse to mix results obtained with other settings
        check_compatible(done, dataset_label(d), b, p,
                         expected_settings(args, p, b), csv_path)
    print(f'{len(tasks)} (dataset, backbone, protocol) runs, {len(tasks) - len(todo)} '
          f'already in {csv_path}, {len(todo)} to do')
    overall = progress(total=len(todo), desc='benchmark')
    splits: Dict[str, Tuple[Source, Source]] = {}
    for dataset in args.datasets:
        label = dataset_label(dataset)
        for backbone in args.backbones:
            protocols = [p for p in args.protocols if (label, backbone, p) not in done]
            if not protocols:
                continue
            if dataset not in splits:
                train, test, where = load_dataset_splits(dataset, args.data_root)
                splits[dataset] = (train.subset(args.max_train, args.seed),
                                   test.subset(args.max_test, args.seed))
                overall.write(f'{label}: {len(splits[dataset][0])} train / '
                              f'{len(splits[dataset][1])} test images, '
                              f'{train.num_classes} classes ({where})')
            train, test = splits[dataset]
            flip = label != 'digits'
            for p in args.protocols:
                check_compatible(done, label, backbone, p,
                                 expected_settings(args, p, backbone, train, test),
                                 csv_path)
            for protocol in protocols:
                overall.set_description(f'{label} / {backbone} / {protocol}')
                model, init = build_model(backbone, train.num_classes, args.img_size,
                                          args.seed, args.weights)
                params, macs, latency = measure_cost(model, args.img_size,
                                                     args.latency_threads,
                                                     args.latency_runs)
                settings = expected_settings(args, protocol, backbone, train, test)
                start = time.time()
                run = run_linear if protocol == 'linear' else run_finetune
                try:
                    top1 = run(model, train, test, args, flip)
                except NonFiniteError as exc:  # nothing is written for this row
                    raise SystemExit(f'error: {label} / {backbone} / {protocol} (init '
                                     f'{init}): {exc}') from exc
                row = dict(dataset=label, backbone=backbone, protocol=protocol,
                           top1=f'{top1:.4f}', params=params, macs=macs,
                           latency_ms=f'{latency:.2f}',
                           latency_threads=args.latency_threads,
                           num_classes=train.num_classes,
                           seconds=f'{time.time() - start:.1f}',
                           finished=time.strftime('%Y-%m-%d %H:%M:%S'), **settings)
                append_row(csv_path, row)
                done[(label, backbone, protocol)] = {k: str(v) for k, v in row.items()}
                write_reports(csv_path, args.out)
                overall.write(f'{label} / {backbone} / {protocol}: top-1 '
                              f'{100 * top1:.2f}% (init {init}, {macs / 1e6:.1f} M MACs, '
                              f'{latency:.1f} ms)')
                overall.update()
    overall.close()
    rows = write_reports(csv_path, args.out)
    print(f'wrote {csv_path}, {osp.join(args.out, "results.md")} and '
          f'{osp.join(args.out, "accuracy_vs_macs.png")}')
    with open(osp.join(args.out, 'results.md')) as f:
        print(f.read())
    return rows


if __name__ == '__main__':
    main()
