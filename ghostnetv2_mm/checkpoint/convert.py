"""Map GhostNetV2 weights in the reference layout onto this project's modules.

The reference layout is that of the official ``ck_ghostnetv2_{10,13,16}.pth.tar``
files (huawei-noah/Efficient-AI-Backbones) and of timm's ``ghostnetv2_*`` models,
which use the same names::

    conv_stem, bn1                                   -> backbone.layer0.{conv,bn}
    blocks.S.I.ghost1.primary_conv.{0,1}             -> backbone.layer{S+1}.I.ghost1.primary_conv.{conv,bn}
    blocks.S.I.ghost1.cheap_operation.{0,1}          -> ....ghost1.cheap_operation.{conv,bn}
    blocks.S.I.ghost1.short_conv.{0,1|2,3|4,5}       -> ....ghost1.dfc.{reduce|horizontal|vertical}.{conv,bn}
    blocks.S.I.{conv_dw, bn_dw}                      -> ....conv_dw.{conv,bn}
    blocks.S.I.se.conv_{reduce,expand}               -> ....se.conv_{reduce,expand}.conv
    blocks.S.I.shortcut.{0,1|2,3}                    -> ....shortcut.{depthwise|pointwise}.{conv,bn}
    blocks.9.0.{conv, bn1}                           -> backbone.layer10.{conv,bn}
    conv_head                                        -> neck.conv_head
    classifier                                       -> head.fc

The official files also carry the ``total_ops``/``total_params`` counters that
thop's profiler attaches to every module; they are not weights and are dropped
(and reported as such).
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping

import torch

PROFILER_SUFFIXES = ('total_ops', 'total_params')

# (reference pattern, project replacement); applied to the whole key, first match wins.
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_RULES = [
    (rf'^conv_stem\.weight$', r'backbone.layer0.conv.weight'),
    (rf'^bn1\.{_BN}$', r'backbone.layer0.bn.\1'),
    (r'^blocks\.9\.0\.conv\.weight$', r'backbone.layer10.conv.weight'),
    (rf'^blocks\.9\.0\.bn1\.{_BN}$', r'backbone.layer10.bn.\1'),
    (r'^conv_head\.(weight|bias)$', r'neck.conv_head.\1'),
    (r'^classifier\.(weight|bias)$', r'head.fc.\1'),
]
_BLOCK = r'^blocks\.(\d+)\.(\d+)\.'
_BLOCK_RULES = [
    (r'(ghost[12])\.primary_conv\.0\.weight$', r'\1.primary_conv.conv.weight'),
    (rf'(ghost[12])\.primary_conv\.1\.{_BN}$', r'\1.primary_conv.bn.\2'),
    (r'(ghost[12])\.cheap_operation\.0\.weight$', r'\1.cheap_operation.conv.weight'),
    (rf'(ghost[12])\.cheap_operation\.1\.{_BN}$', r'\1.cheap_operation.bn.\2'),
    (r'ghost1\.short_conv\.0\.weight$', r'ghost1.dfc.reduce.conv.weight'),
    (rf'ghost1\.short_conv\.1\.{_BN}$', r'ghost1.dfc.reduce.bn.\1'),
    (r'ghost1\.short_conv\.2\.weight$', r'ghost1.dfc.horizontal.conv.weight'),
    (rf'ghost1\.short_conv\.3\.{_BN}$', r'ghost1.dfc.horizontal.bn.\1'),
    (r'ghost1\.short_conv\.4\.weight$', r'ghost1.dfc.vertical.conv.weight'),
    (rf'ghost1\.short_conv\.5\.{_BN}$', r'ghost1.dfc.vertical.bn.\1'),
    (r'conv_dw\.weight$', r'conv_dw.conv.weight'),
    (rf'bn_dw\.{_BN}$', r'conv_dw.bn.\1'),
    (r'se\.(conv_reduce|conv_expand)\.(weight|bias)$', r'se.\1.conv.\2'),
    (r'shortcut\.0\.weight$', r'shortcut.depthwise.conv.weight'),
    (rf'shortcut\.1\.{_BN}$', r'shortcut.depthwise.bn.\1'),
    (r'shortcut\.2\.weight$', r'shortcut.pointwise.conv.weight'),
    (rf'shortcut\.3\.{_BN}$', r'shortcut.pointwise.bn.\1'),
]

# Keys only the reference layout has: enough to recognise it.
_REFERENCE_MARKERS = ('conv_stem.weight', 'blocks.0.0.ghost1.primary_conv.0.weight')


@dataclass
class ConversionResult:
    """Outcome of :func:`convert_reference_state_dict`."""
    state_dict: Dict[str, torch.Tensor] = field(default_factory=dict)
    unplaced: List[str] = field(default_factory=list)
    profiler_counters: List[str] = field(default_factory=list)

    def section(self, prefix: str) -> Dict[str, torch.Tensor]:
        """The converted entries under ``prefix`` (e.g. 'backbone.'), prefix removed."""
        return {k[len(prefix):]: v for k, v in self.state_dict.items()
                if k.startswith(prefix)}


def unwrap_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """Return the state dict inside a loaded checkpoint file.

    Accepts a bare state dict or one nested under 'state_dict' or 'model' (the
    official files use either a bare dict or 'state_dict'; mmengine uses
    'state_dict'). Removes the 'module.' prefix of DataParallel checkpoints.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'checkpoint content is a {type(checkpoint).__name__}, '
                        'expected a dict of tensors (a state dict)')
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    if checkpoint and all(k.startswith('module.') for k in checkpoint):
        checkpoint = {k[len('module.'):]: v for k, v in checkpoint.items()}
    return dict(checkpoint)


def is_reference_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` uses the official/timm GhostNetV2 key names."""
    return any(marker in state_dict for marker in _REFERENCE_MARKERS)


def _map_key(key: str):
    for pattern, repl in _RULES:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    match = re.match(_BLOCK, key)
    if match:
        stage, index = int(match.group(1)), match.group(2)
        rest = key[match.end():]
        for pattern, repl in _BLOCK_RULES:
            if re.match(pattern, rest):
                return f'backbone.layer{stage + 1}.{index}.' + re.sub(pattern, repl, rest)
    return None


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor]) -> ConversionResult:
    """Rename a reference-layout GhostNetV2 state dict to this project's layout.

    The result holds ``backbone.*``, ``neck.*`` and ``head.*`` entries (an mmpretrain
    ``ImageClassifier`` with :class:`GhostNetV2`, ``GhostNetV2ClsNeck`` and
    ``GhostNetV2ClsHead``), every key it could not place, and the profiler counters
    it dropped.
    """
    result = ConversionResult()
    for key, value in state_dict.items():
        if key.rsplit('.', 1)[-1] in PROFILER_SUFFIXES:
            result.profiler_counters.append(key)
            continue
        new_key = _map_key(key)
        if new_key is None:
            result.unplaced.append(key)
        else:
            result.state_dict[new_key] = value
    return result


# Stem width -> arch name: the stem is make_divisible(16 * widen_factor, 4).
_STEM_TO_ARCH = {16: '1.0x', 20: '1.3x', 24: '1.6x'}


def infer_arch(state_dict: Mapping[str, torch.Tensor], prefix: str = 'backbone.') -> str:
    """Which published width a converted state dict belongs to."""
    key = f'{prefix}layer0.conv.weight'
    if key not in state_dict:
        raise KeyError(f'cannot infer the arch: {key!r} is not in the state dict')
    stem = int(state_dict[key].shape[0])
    if stem not in _STEM_TO_ARCH:
        raise ValueError(f'cannot infer the arch: stem width {stem} is none of the '
                         f'published ones {_STEM_TO_ARCH}')
    return _STEM_TO_ARCH[stem]
