"""A config with another backbone: what the config's backbone taps, the swapped
backbone's registry config, the necks and heads rewired to its channels (read from
the built backbone), and the other changes the benchmark makes to a config (data
root, shortened schedule, seed, init)."""
import copy
import importlib
import inspect
import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict

from ...models import FAMILY
from ...models.arch import DEFAULT_INIT_CFG
from ...errors import UserError
from ...preflight import unwrap_datasets
from .catalogue import Build, Tap, backbone_config, get_backbone, tap_of

#: Necks and heads the benchmark rewires (anything else reading the backbone is an
#: error naming its type).
NECKS = ('FPN', 'YOLOV3Neck', 'SSDNeck')
SEG_HEADS = ('ASPPHead', 'DepthwiseSeparableASPPHead', 'FCNHead')
PROBE_SIZE = 64  # side of the dummy input that reads channels and strides


class ConfigError(UserError, ValueError):
    """The config cannot be benchmarked as asked (the message says why): a user
    mistake, reported by the tools as one line."""


@dataclass(frozen=True)
class Taps:
    """What a config's backbone outputs: per output the nominal stride of the last
    block it reads (or 'final'), and the output stride (32 unless dilated)."""
    taps: Tuple[Tap, ...]
    output_stride: int

    def strides(self) -> List[int]:
        """The stride of every output at this output stride."""
        return [min(32 if t == 'final' else t, self.output_stride) for t in self.taps]


def taps_of(cfg: Config) -> Taps:
    """The taps of ``cfg``'s GhostNet-family backbone."""
    bcfg = cfg.model.backbone
    type_ = bcfg.get('type')
    if type_ not in FAMILY:
        raise ConfigError(f'model.backbone.type={type_!r}: the benchmark reads the taps to '
                          f'keep from a GhostNet-family backbone; allowed: {sorted(FAMILY)}')
    arch = bcfg.get('arch', '1.0x')
    out_indices = tuple(bcfg.get('out_indices', (3, 5, 7, 9)))
    built = FAMILY[type_](arch=arch, out_indices=out_indices, strides=bcfg.get('strides'),
                          dilations=bcfg.get('dilations'))
    taps = tuple(tap_of(type_, arch, i) for i in built.out_indices)
    deepest = 32 if taps[-1] == 'final' else taps[-1]
    actual = built.feature_info[built.out_indices[-1]]['reduction']
    return Taps(taps, actual if actual < deepest else 32)


def _registry(scope: str):
    return importlib.import_module(f'{scope}.registry').MODELS


def _norm_cfg(registry, type_: str, wanted: Optional[dict]) -> Optional[dict]:
    """The build's own default norm_cfg with the config's type and requires_grad
    (BN or SyncBN, trained or not); eps and momentum stay the backbone's own, those its
    ImageNet weights were trained with."""
    if wanted is None:
        return None
    cls = registry.get(type_)
    default = inspect.signature(cls.__init__).parameters['norm_cfg'].default
    norm = dict(default if isinstance(default, dict) else {})
    norm['type'] = wanted.get('type', norm.get('type', 'BN'))
    if 'requires_grad' in wanted:
        norm['requires_grad'] = wanted['requires_grad']
    return norm


def probe(backbone: nn.Module) -> Tuple[List[int], List[int]]:
    """(channels, strides) of every output of ``backbone`` on a dummy input."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
    backbone.train(was_training)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    return [o.shape[1] for o in outs], [PROBE_SIZE // o.shape[-1] for o in outs]


def swapped_backbone(cfg: Config, name: str, scope: str) -> Tuple[dict, Build]:
    """The registry config of backbone ``name`` with ``cfg``'s taps and output stride,
    normalisation (type, requires_grad), norm_eval and frozen stem; and its build."""
    taps = taps_of(cfg)
    entry = get_backbone(name)
    try:
        build = entry.build_for(taps.output_stride)
        bcfg = backbone_config(build, taps.taps, taps.output_stride, scope)
    except ValueError as exc:
        raise ConfigError(f'{cfg.filename}: {exc}') from None
    old = cfg.model.backbone
    frozen = old.get('frozen_stages', -1)
    if frozen not in (-1, 0):
        raise ConfigError(f'model.backbone.frozen_stages={frozen}: stages are numbered '
                          'differently in every backbone; allowed: -1 (nothing frozen) or 0 '
                          '(the stem frozen)')
    registry = _registry(scope)
    norm = _norm_cfg(registry, bcfg['type'], old.get('norm_cfg'))
    if norm is not None:
        bcfg['norm_cfg'] = norm
    bcfg.update(norm_eval=old.get('norm_eval', False), frozen_stages=frozen,
                init_cfg=copy.deepcopy(DEFAULT_INIT_CFG))
    return bcfg, build


def build_backbone(bcfg: dict, scope: str) -> nn.Module:
    return _registry(scope).build(copy.deepcopy(bcfg))


def rewire(model: ConfigDict, channels: Sequence[int]) -> None:
    """Set the ``in_channels`` of what reads the backbone in ``model`` (a model
    config, changed in place) to ``channels``, the backbone's outputs in order."""
    channels = list(channels)
    neck = model.get('neck')
    if neck is not None:
        first = neck[0] if isinstance(neck, (list, tuple)) else neck
        kind = first.get('type')
        if kind == 'FPN':
            first.in_channels = channels
        elif kind == 'YOLOV3Neck':  # lists its inputs deepest first
            first.in_channels = channels[::-1]
        elif kind == 'SSDNeck':
            # SSDNeck passes the backbone maps through and adds levels: the head reads
            # the backbone's channels first, then the extra levels'
            k = len(channels)
            first.in_channels = channels
            first.out_channels = channels + list(first.out_channels)[k:]
            head = model.get('bbox_head')
            if head is not None and 'in_channels' in head:
                head.in_channels = channels + list(head.in_channels)[k:]
        else:
            raise ConfigError(f'model.neck.type={kind!r} reads the backbone and cannot be '
                              f'rewired; supported necks: {", ".join(NECKS)}')
        return
    found = False
    for key in ('decode_head', 'auxiliary_head'):
        heads = model.get(key)
        for head in heads if isinstance(heads, (list, tuple)) else [heads]:
            if not head:
                continue
            kind = head.get('type')
            if kind not in SEG_HEADS:
                raise ConfigError(f'model.{key}.type={kind!r} reads the backbone and cannot '
                                  f'be rewired; supported heads: {", ".join(SEG_HEADS)}')
            index = head.get('in_index', -1)
            head.in_channels = ([channels[i] for i in index]
                                if isinstance(index, (list, tuple)) else channels[index])
            if kind == 'DepthwiseSeparableASPPHead':  # also reads the first output
                head.c1_in_channels = channels[0]
            found = True
    if not found:
        heads = [model[k].get('type') for k in model if k.endswith('head')
                 and isinstance(model[k], dict)]
        raise ConfigError(f'the model has no neck and no decode head: its heads {heads} read '
                          f'the backbone and cannot be rewired; supported: necks '
                          f'{", ".join(NECKS)}; heads {", ".join(SEG_HEADS)}')


def swap_backbone(cfg: Config, name: str, scope: str) -> Tuple[Config, Build, List[int]]:
    """A copy of ``cfg`` with backbone ``name`` and every reader rewired; its build
    and channels. The built backbone's strides are checked against the config's."""
    cfg = copy.deepcopy(cfg)
    bcfg, build = swapped_backbone(cfg, name, scope)
    taps = taps_of(cfg)
    channels, strides = probe(build_backbone(bcfg, scope))
    if strides != taps.strides():
        raise ConfigError(f'{name} ({build.type}) gives strides {strides}, the config '
                          f'needs {taps.strides()} (taps {list(taps.taps)})')
    rewire(cfg.model, channels)
    cfg.model.backbone = ConfigDict(bcfg)
    return cfg, build, channels


# ------------------------------------------------------------------ the other changes
def datasets_of(cfg: Config, splits=('train', 'val', 'test')) -> list:
    """The dataset configs of ``cfg``'s dataloaders (wrappers unwrapped)."""
    return [d for s in splits for d in unwrap_datasets((cfg.get(f'{s}_dataloader') or {})
                                                 .get('dataset'))]


def set_data_root(cfg: Config, root: str) -> None:
    """Point every dataset, and every evaluator file under its old root, at ``root``."""
    root = root.rstrip('/') + '/'
    old_roots = set()
    for dataset in datasets_of(cfg):
        if dataset.get('data_root'):
            old_roots.add(dataset['data_root'])
        dataset['data_root'] = root
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        for ev in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
            ann = (ev or {}).get('ann_file')
            for old in old_roots:
                if isinstance(ann, str) and ann.startswith(old):
                    ev['ann_file'] = root + ann[len(old):].lstrip('/')


def _scaled(value, unit: float, iters: int):
    return int(round(value / unit * iters))


def shorten_schedule(cfg: Config, iters: int,
                     iters_per_epoch: Callable[[], int]) -> None:
    """Replace ``cfg``'s schedule with ``iters`` iterations, every learning-rate (and
    momentum) scheduler's begin/end/milestones/T_max scaled by the same factor, so
    that warm-up keeps its proportion; no validation while training (the benchmark
    tests the final weights); a checkpoint at the end.

    Args:
        cfg (Config): changed in place.
        iters (int): the new number of iterations.
        iters_per_epoch (callable): gives the iterations of one epoch; called only for
            an epoch-based config with an iteration-based scheduler (a warm-up).
    """
    train_cfg = cfg.train_cfg
    by_epoch = train_cfg.get('type') == 'EpochBasedTrainLoop' or (
        'type' not in train_cfg and train_cfg.get('by_epoch', False))
    schedulers = cfg.get('param_scheduler') or []
    schedulers = schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]
    per_epoch = None
    for s in schedulers:
        s_by_epoch = s.get('by_epoch', True)
        if by_epoch and s_by_epoch:
            unit = train_cfg.max_epochs
        elif by_epoch:
            per_epoch = per_epoch or iters_per_epoch()
            unit = train_cfg.max_epochs * per_epoch
        elif s_by_epoch:
            raise ConfigError(f'param_scheduler {s.get("type")} is by_epoch in an '
                              'iteration-based schedule; cannot scale it')
        else:
            unit = train_cfg.max_iters
        for key in ('begin', 'T_max'):
            if key in s:
                s[key] = _scaled(s[key], unit, iters)
        if 'end' in s and s['end'] < 1e9:  # mmengine's default end is "forever"
            s['end'] = max(_scaled(s['end'], unit, iters), s.get('begin', 0) + 1)
        if 'milestones' in s:
            s['milestones'] = [_scaled(m, unit, iters) for m in s['milestones']]
        s['by_epoch'] = False
        s.pop('convert_to_iter_based', None)
    cfg.train_cfg = ConfigDict(type='IterBasedTrainLoop', max_iters=iters,
                               val_interval=iters + 1)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    hooks = cfg.get('default_hooks') or {}
    if hooks.get('checkpoint'):
        hooks['checkpoint'].update(by_epoch=False, interval=iters)
        hooks['checkpoint'].pop('save_best', None)
    if cfg.get('log_processor'):
        cfg.log_processor.by_epoch = False


def schedule_length(cfg: Config) -> str:
    """The training length of ``cfg``: 'N' iterations or 'N epochs'."""
    t = cfg.train_cfg
    if t.get('type') == 'EpochBasedTrainLoop' or ('type' not in t and t.get('by_epoch')):
        return f'{t.max_epochs} epochs'
    return str(t.max_iters)


def test_size(cfg: Config) -> Tuple[int, int]:
    """The (H, W) the test pipeline resizes to: the scale itself, or a square of its
    shorter side when the resize keeps the aspect ratio (the side an image's short
    side is resized to)."""
    pipeline = (unwrap_datasets(cfg.test_dataloader.dataset) or [{}])[0].get('pipeline') or []
    for step in pipeline:
        if step.get('type') in ('Resize', 'RandomResize') and step.get('scale'):
            scale = step['scale']
            if isinstance(scale, int):
                return scale, scale
            w, h = scale
            if step.get('keep_ratio'):
                return min(w, h), min(w, h)
            return h, w
    size = cfg.model.get('data_preprocessor', {}).get('size')
    if size:
        return tuple(size)
    raise ConfigError('the test pipeline has no Resize with a scale: cannot tell the '
                      'test size at which backbone MACs and latency are measured')


def main_metrics(cfg: Config) -> List[str]:
    """The metric names the benchmark reports for ``cfg``'s test evaluator."""
    evaluator = cfg.get('test_evaluator')
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    names = []
    for ev in evaluators:
        kind = (ev or {}).get('type')
        if kind == 'CocoMetric':
            metric = ev.get('metric', 'bbox')
            metric = [metric] if isinstance(metric, str) else list(metric)
            names += [f'coco/{m}_mAP' for m in ('bbox', 'segm') if m in metric]
        elif kind == 'IoUMetric':
            names.append('mIoU')
    if not names:
        raise ConfigError(f'test_evaluator {evaluator}: the benchmark reports CocoMetric '
                          '(bbox, segm) and IoUMetric (mIoU)')
    return names


def iters_per_epoch_of(cfg: Config, scope: str) -> int:
    """Iterations of one training epoch (the dataset built to count it)."""
    from mmengine.dist import get_world_size
    registry = importlib.import_module(f'{scope}.registry').DATASETS
    loader = cfg.train_dataloader
    n = len(registry.build(copy.deepcopy(loader.dataset)))
    batch = loader.batch_size * get_world_size()
    return max(1, n // batch if loader.get('drop_last') else math.ceil(n / batch))
