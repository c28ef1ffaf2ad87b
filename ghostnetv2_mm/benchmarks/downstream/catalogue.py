"""The backbones the downstream benchmark swaps in, by name, and how each one gives
the taps a config asks for.

A config's backbone is described by its **taps** (for each output: the nominal stride
of the last block it reads, 4 / 8 / 16 / 32, or ``'final'`` for a network's final
1x1 conv) and its **output stride** (32, or 8 / 16 when the deeper stages are dilated
instead of strided, as in DeepLabV3). Every catalogue entry turns those into its own
``out_indices`` (the last block of each stride, in its own numbering) and, where it
can, into its own ``strides``/``dilations`` by one rule (:func:`dilate`). A backbone
that cannot give the output stride asked for is an error that says so; nothing changes
the stride silently.

A name may have more than one implementation (``Build``), all reading the SAME
ImageNet file: mmpretrain's MobileNetV3 cannot dilate, so configs with output stride
8 get mmseg's MobileNetV3 (the same network and key names, built with output stride
8). The first build that gives the output stride is used; the CSV names it.
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple, Union

from ghostnetv2_mm.models import BASE_STAGES, FAMILY

from ..catalogue import NETWORKS, resolve

Tap = Union[int, str]  # a nominal stride (4, 8, 16, 32) or 'final'


@dataclass(frozen=True)
class Build:
    """One implementation of a catalogue name.

    Args:
        type (str): the registry type; ``'{scope}'`` is replaced by the config's
            toolkit (mmdet / mmseg), e.g. ``'{scope}.ResNet'``.
        kwargs (dict): constructor arguments besides out_indices, strides, dilations.
        taps (dict, optional): nominal stride or 'final' -> output index. None: read
            from the GhostNet family's ``feature_info``.
        stem_stride (int): the stride before the first stage (for :func:`dilate`).
        stage_strides (tuple, optional): every stage's stride; given when the build
            takes ``strides``/``dilations`` (any output stride), else None.
        output_stride (int): the output stride of a build that cannot change it.
        drop (tuple): prefixes of checkpoint keys (after the checkpoint's prefix) that
            this build has no place for (e.g. MobileNetV2's final conv in mmseg's
            MobileNetV2, which has none); everything else must fit exactly.
    """
    type: str
    kwargs: dict = field(default_factory=dict)
    taps: Optional[Dict[Tap, int]] = None
    stem_stride: int = 2
    stage_strides: Optional[Tuple[int, ...]] = None
    output_stride: int = 32
    drop: Tuple[str, ...] = ()

    def can_give(self, output_stride: int) -> bool:
        return self.stage_strides is not None or output_stride == self.output_stride

    def describe(self) -> str:
        if self.stage_strides is not None:
            return f'{self.type} (any output stride, by dilation)'
        return f'{self.type} (output stride {self.output_stride} only)'


@dataclass(frozen=True)
class Backbone:
    """A network of the benchmarks' catalogue (:mod:`ghostnetv2_mm.benchmarks.catalogue`,
    which gives its name, weights and top-1) with the builds that tap it here.

    Args:
        name (str): the catalogue name.
        builds (tuple): implementations, in order of preference.
        weights (str): the ImageNet checkpoint URL.
        source (str): where that URL is listed (a toolkit metafile entry, or the
            official release).
        prefix (str): the checkpoint's prefix of backbone keys ('' for a bare one).
        top1 (float): the published ImageNet-1k top-1 of those weights (%).
    """
    name: str
    builds: Tuple[Build, ...]
    weights: str
    source: str
    prefix: str = ''
    top1: Optional[float] = None

    def build_for(self, output_stride: int) -> Build:
        for build in self.builds:
            if build.can_give(output_stride):
                return build
        raise ValueError(
            f'backbone {self.name!r} cannot give output stride {output_stride} (the '
            f'config dilates its deeper stages): its implementations are '
            f'{"; ".join(b.describe() for b in self.builds)}. Leave it out for this '
            'config, or use a config without dilation.')


def _entry(name: str, builds: Tuple[Build, ...], prefix: str = '') -> Backbone:
    network = NETWORKS[name]
    return Backbone(name, builds, weights=network.weights, source=network.weights_source,
                    prefix=prefix, top1=network.top1)


def _ghostnet(name: str) -> Backbone:
    network = NETWORKS[name]
    return _entry(name, (Build(network.family, dict(arch=network.width),
                               stage_strides=tuple(stage[0][4] for stage in BASE_STAGES)),))


# Index tables of the toolkits' backbones: the last block of each stride, and the
# final 1x1 conv where the network has one (checked against a forward pass when built).
_MOBILENET_V2_TAPS = {2: 0, 4: 1, 8: 2, 16: 4, 32: 6}
_MOBILENET_V3_TAPS = {2: 1, 4: 3, 8: 6, 16: 12, 32: 15, 'final': 16}
_RESNET_TAPS = {4: 0, 8: 1, 16: 2, 32: 3, 'final': 3}

BACKBONES: Dict[str, Backbone] = {b.name: b for b in (
    *(_ghostnet(name) for name, network in NETWORKS.items() if network.family),
    _entry('mobilenetv2', (
        Build('mmpretrain.MobileNetV2', dict(widen_factor=1.0),
              taps={**_MOBILENET_V2_TAPS, 'final': 7}),
        Build('mmseg.MobileNetV2', dict(widen_factor=1.0), taps=_MOBILENET_V2_TAPS,
              stage_strides=(1, 2, 2, 2, 1, 2, 1), drop=('conv2.',))), prefix='backbone.'),
    _entry('mobilenetv3-large', (
        Build('mmpretrain.MobileNetV3', dict(arch='large'), taps=_MOBILENET_V3_TAPS),
        Build('mmseg.MobileNetV3', dict(arch='large'), taps=_MOBILENET_V3_TAPS,
              output_stride=8)), prefix='backbone.'),
    _entry('resnet18', (Build('{scope}.ResNet', dict(depth=18), taps=_RESNET_TAPS,
                              stem_stride=4, stage_strides=(1, 2, 2, 2)),),
           prefix='backbone.'),
)}


def get_backbone(name: str, argument: str = '--backbones') -> Backbone:
    """The entry called ``name`` (a catalogue name; errors as
    :func:`ghostnetv2_mm.benchmarks.catalogue.resolve` raises them)."""
    return BACKBONES[resolve(name, argument=argument, allowed=tuple(BACKBONES)).name]


def dilate(stem_stride: int, stage_strides: Sequence[int],
           output_stride: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Per-stage ``(strides, dilations)`` for ``output_stride``: a stage that would
    take the network past it keeps stride 1 and multiplies the dilation by its stride
    instead (mmseg's "-d8" rule: ResNet (1, 2, 1, 1) / (1, 1, 2, 4))."""
    total, dilation, strides, dilations = stem_stride, 1, [], []
    for s in stage_strides:
        if total * s > output_stride:
            dilation *= s
            strides.append(1)
        else:
            total *= s
            strides.append(s)
        dilations.append(dilation)
    return tuple(strides), tuple(dilations)


def family_taps(type_: str, arch) -> Dict[Tap, int]:
    """Nominal stride -> last output index with it, and 'final', of a GhostNet-family
    backbone (read from its ``feature_info``, undilated)."""
    model = FAMILY[type_](arch=arch)
    taps: Dict[Tap, int] = {}
    last = len(model.feature_info) - 1
    for i, info in enumerate(model.feature_info[:last]):
        taps[info['reduction']] = i  # later indices of the same stride overwrite
    taps['final'] = last
    return taps


def tap_of(type_: str, arch, index: int) -> Tap:
    """What output ``index`` of a GhostNet-family backbone taps (see ``family_taps``)."""
    model = FAMILY[type_](arch=arch)
    if index % len(model.feature_info) == len(model.feature_info) - 1:
        return 'final'
    return model.feature_info[index]['reduction']


def backbone_config(build: Build, taps: Sequence[Tap], output_stride: int,
                    scope: str) -> dict:
    """The registry config of ``build`` giving ``taps`` at ``output_stride``."""
    table = build.taps if build.taps is not None else family_taps(
        build.type, build.kwargs.get('arch', '1.0x'))
    missing = [t for t in taps if t not in table]
    if missing:
        raise ValueError(f'{build.type} has no output for {missing} (it has '
                         f'{sorted(map(str, table))})')
    cfg = dict(type=build.type.format(scope=scope), **build.kwargs,
               out_indices=tuple(table[t] for t in taps))
    if build.stage_strides is not None and output_stride != 32:
        cfg['strides'], cfg['dilations'] = dilate(build.stem_stride, build.stage_strides,
                                                  output_stride)
    return cfg
