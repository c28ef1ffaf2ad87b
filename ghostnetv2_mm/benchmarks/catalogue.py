"""The one catalogue of networks that every benchmark tool compares (speed, ONNX
profile, transfer, downstream): one name per network, spelled the same in every
tool, with its implementation, its ImageNet weights and the source of its top-1.

A name is ``NETWORK`` for a network of one width (``mobilenetv3-large``) and
``NETWORK-WIDTH`` for the GhostNet family (``ghostnetv2-1.3x``); a bare family name
(``ghostnetv2``) means the tool's width (``--arch`` where the tool has one, else
1.0x). The top-1 is that of the weights named here (for mobilenetv3-large,
mmpretrain's weights: 74.04; timm's own weights of the same network reach 75.8, see
docs/benchmarks.md), so one network has one figure in every table.

The tools' own extra rows are not networks but ways of running one (speed's
``ghostnetv2-deploy`` / ``-onnx`` / ``timm-ghostnetv2``, see
:mod:`ghostnetv2_mm.benchmarks.speed`); the downstream benchmark adds how each
network is tapped and dilated (:mod:`.downstream.catalogue`).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ghostnetv2_mm.checkpoint.layouts import official_url

from ..errors import UserError
from .timm_reference import timm_name

_OPENMMLAB = 'https://download.openmmlab.com/mmclassification/v0/'


@dataclass(frozen=True)
class Network:
    """One catalogue entry.

    Args:
        name (str): the name every benchmark tool takes.
        implementation (dict): the registry config (mmengine's root registry, as
            mmpretrain resolves it) of this project's build of the network, without
            ``out_indices``.
        timm (str, optional): timm's model of the same network (the ONNX profile's
            peers), None where timm has none.
        weights (str, optional): the ImageNet weights (URL) the benchmarks load.
        weights_source (str): where that URL is listed.
        top1 (float, optional): ImageNet-1k top-1 (%) of those weights.
        top1_source (str): where that figure is published.
        family (str, optional): the GhostNet-family type (``'GhostNetV2'``...).
        width (str, optional): its width (``'1.0x'``...), for the family.
    """
    name: str
    implementation: dict
    timm: Optional[str]
    weights: Optional[str]
    weights_source: str
    top1: Optional[float]
    top1_source: str
    family: Optional[str] = None
    width: Optional[str] = None


# (family type, name stem, width, top-1, where the top-1 is published): the widths
# with official ImageNet weights
_GHOSTNETS = (
    ('GhostNetV2', 'ghostnetv2', '1.0x', 75.3, 'GhostNetV2 paper (NeurIPS 2022)'),
    ('GhostNetV2', 'ghostnetv2', '1.3x', 76.9, 'GhostNetV2 paper (NeurIPS 2022)'),
    ('GhostNetV2', 'ghostnetv2', '1.6x', 77.8, 'GhostNetV2 paper (NeurIPS 2022)'),
    ('GhostNet', 'ghostnet', '1.0x', 73.9, 'GhostNet paper (CVPR 2020)'),
    ('GhostNetV3', 'ghostnetv3', '1.0x', 77.1,
     'GhostNetV3 paper (EMA weights; 76.93 without EMA)'),
)


def _ghostnet(type_, stem, width, top1, top1_source) -> Network:
    return Network(f'{stem}-{width}', dict(type=type_, arch=width), timm_name(type_, width),
                   official_url(type_, width), 'official release (huawei-noah)', top1,
                   top1_source, type_, width)


NETWORKS: Dict[str, Network] = {n.name: n for n in (
    *(_ghostnet(*row) for row in _GHOSTNETS),
    Network('mobilenetv2', dict(type='MobileNetV2', widen_factor=1.0), 'mobilenetv2_100',
            _OPENMMLAB + 'mobilenet_v2/mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth',
            'mmpretrain metafile: mobilenet-v2_8xb32_in1k', 71.86,
            'mmpretrain metafile: mobilenet-v2_8xb32_in1k'),
    Network('mobilenetv3-large', dict(type='MobileNetV3', arch='large'),
            'mobilenetv3_large_100',
            _OPENMMLAB + 'mobilenet_v3/convert/mobilenet_v3_large-3ea3c186.pth',
            'mmpretrain metafile: mobilenet-v3-large_3rdparty_in1k', 74.04,
            'mmpretrain metafile: mobilenet-v3-large_3rdparty_in1k'),
    Network('resnet18', dict(type='ResNet', depth=18), 'resnet18',
            _OPENMMLAB + 'resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth',
            'mmpretrain metafile: resnet18_8xb32_in1k', 69.90,
            'mmpretrain metafile: resnet18_8xb32_in1k'),
    Network('efficientnet-b0', dict(type='EfficientNet', arch='b0'), 'efficientnet_b0',
            None, 'none listed here (timm ships its own)', 77.7, "timm's weights"),
)}

#: Spellings of earlier releases -> today's name (refused, naming the new one).
OLD_NAMES = {
    **{f'{stem}_{width}': f'{stem}-{width}' for _, stem, width, *_ in _GHOSTNETS},
    'mobilenet_v2': 'mobilenetv2', 'mobilenet_v3_large': 'mobilenetv3-large',
    'efficientnet_b0': 'efficientnet-b0', 'timm-ghostnetv2': 'ghostnetv2-1.0x',
    'timm-ghostnet': 'ghostnet-1.0x',
}
_FAMILY_STEMS = {stem for _, stem, *_ in _GHOSTNETS}


def names_help() -> str:
    """The catalogue in one line, for every benchmark tool's ``--help``."""
    return ('networks (one catalogue, the same names in every benchmark tool): '
            + ', '.join(NETWORKS))


def network_names(text: str) -> str:
    """argparse ``type``: a catalogue name (a bare family name is its 1.0x entry),
    returned as the catalogue spells it."""
    import argparse
    try:
        return resolve(text, argument='').name
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def resolve(name: str, *, width: str = '1.0x', argument: str = '',
            allowed: Tuple[str, ...] = ()) -> Network:
    """The catalogue entry called ``name``.

    Args:
        name (str): a catalogue name, or a bare GhostNet-family name (``ghostnetv2``),
            which means ``ghostnetv2-{width}``.
        width (str): the width of a bare family name.
        argument (str): the option that took ``name``, if any (for the message).
        allowed (tuple): the names this tool runs (default: all).

    Raises:
        UserError: unknown name (an old spelling names the new one), or one the tool
            does not run (exit status 2, an argument error).
    """
    allowed = allowed or tuple(NETWORKS)
    full = f'{name}-{width}' if name in _FAMILY_STEMS else name
    if full in NETWORKS and full in allowed:
        return NETWORKS[full]
    where = f'{argument}: ' if argument else ''
    if full in NETWORKS:
        raise UserError(f'{where}{name!r} is not run by this tool; allowed: '
                        f'{", ".join(allowed)}', status=2)
    if name in OLD_NAMES:
        raise UserError(f'{where}{name!r} is now called {OLD_NAMES[name]!r} (one name in '
                        'every benchmark tool)', status=2)
    raise UserError(f'{where}unknown network {name!r}; allowed: {", ".join(allowed)}',
                    status=2)
