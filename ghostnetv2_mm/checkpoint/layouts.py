"""The official / timm checkpoint layouts of the GhostNet family, and how they map onto
this project's module names.

The official GhostNetV2 files (``ck_ghostnetv2_{10,13,16}.pth.tar``, GitHub release
"GhostNetV2" of huawei-noah/Efficient-AI-Backbones) and timm's ``ghostnetv2_*`` models
share one set of key names (the "reference layout")::

    conv_stem, bn1                                   -> layer0.{conv,bn}
    blocks.S.I.ghost1.primary_conv.{0,1}             -> layer{S+1}.I.ghost1.primary_conv.{conv,bn}
    blocks.S.I.ghost1.cheap_operation.{0,1}          -> ....ghost1.cheap_operation.{conv,bn}
    blocks.S.I.ghost1.short_conv.{0,1|2,3|4,5}       -> ....ghost1.dfc.{reduce|horizontal|vertical}.{conv,bn}
    blocks.S.I.{conv_dw, bn_dw}                      -> ....conv_dw.{conv,bn}
    blocks.S.I.se.conv_{reduce,expand}               -> ....se.conv_{reduce,expand}.conv
    blocks.S.I.shortcut.{0,1|2,3}                    -> ....shortcut.{depthwise|pointwise}.{conv,bn}
    blocks.9.0.{conv, bn1}                           -> layer10.{conv,bn}
    conv_head, classifier                            -> (the classifier head, see below)

A :class:`ReferenceLayout` recognises such a state dict by its structure (several keys
that only that family has, and none that another family adds), renames backbone keys,
and converts the classifier head for mmpretrain's stock ``StackedLinearClsHead``
(``conv_head``, a 1x1 conv on the pooled map, is the linear layer ``head.layers.0.fc``;
``classifier`` is ``head.layers.1.fc``). The official files also carry the
``total_ops``/``total_params`` counters that thop's profiler attaches to every module;
they are not weights and are dropped.

Backbones declare the layout they read as the class attribute ``reference_layout``; their
load_state_dict pre-hook (:func:`ghostnetv2_mm.checkpoint.adapter.register_checkpoint_hook`)
applies it to the keys under the backbone's own prefix, so nothing outside the
backbone's state dict is touched. ``OFFICIAL_WEIGHTS`` names the official files' URLs,
the one place in Python that does.
"""
import re
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch

PROFILER_SUFFIXES = ('total_ops', 'total_params')

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_BLOCK = re.compile(r'^blocks\.(\d+)\.(\d+)\.(.*)$')


def is_profiler_counter(key: str) -> bool:
    """Whether ``key`` is one of thop's ``total_ops``/``total_params`` counters."""
    return key.rsplit('.', 1)[-1] in PROFILER_SUFFIXES


@dataclass(frozen=True)
class ReferenceLayout:
    """How one family's official/timm key names map onto this project's.

    Args:
        name: Shown in messages, e.g. 'GhostNetV2 (official / timm ghostnetv2_*)'.
        backbone_type: The registered backbone type that reads this layout (data, so
            that the checkpoint layer can name it without importing the models).
        signature: Regular expressions; EACH must match at least one key for a state
            dict to be in this layout.
        excluded: Regular expressions that NO key may match (what another family of
            the same naming scheme adds, e.g. GhostNetV3's re-parameterised branches).
        stem_rules: (pattern, replacement) pairs for keys outside ``blocks.S.I.``.
        block_rules: (pattern, replacement) pairs for the part of a bottleneck key after
            ``blocks.S.I.``; the result is prefixed with ``layer{S+1}.I.``.
        final_stage: The reference's stage index of the final 1x1 conv (``blocks.9``),
            which this project calls ``layer{final_stage + 1}``.
    """
    name: str
    backbone_type: str
    signature: Tuple[str, ...]
    excluded: Tuple[str, ...]
    stem_rules: Tuple[Tuple[str, str], ...]
    block_rules: Tuple[Tuple[str, str], ...]
    final_stage: int = 9

    def matches(self, keys: Iterable[str]) -> bool:
        """Whether a state dict with these keys is in this layout."""
        keys = list(keys)
        found = all(any(re.search(p, k) for k in keys) for p in self.signature)
        return found and not any(re.search(p, k) for p in self.excluded for k in keys)

    def rename(self, key: str) -> Optional[str]:
        """This project's backbone key for a reference backbone key, or None."""
        for pattern, repl in self.stem_rules:
            if re.fullmatch(pattern, key):
                return re.sub(pattern, repl, key)
        match = _BLOCK.match(key)
        if match is None:
            return None
        stage, index, rest = int(match.group(1)), match.group(2), match.group(3)
        if stage == self.final_stage:
            return None
        for pattern, repl in self.block_rules:
            if re.fullmatch(pattern, rest):
                return f'layer{stage + 1}.{index}.' + re.sub(pattern, repl, rest)
        return None

    @staticmethod
    def is_head_key(key: str) -> bool:
        """Whether ``key`` belongs to the reference classifier head (not the backbone)."""
        return re.fullmatch(r'(conv_head|classifier)\.(weight|bias)', key) is not None

    @staticmethod
    def head_to_stacked_linear(state_dict: Dict[str, torch.Tensor],
                               head_prefix: str = 'head.') -> Dict[str, torch.Tensor]:
        """The reference head as mmpretrain ``StackedLinearClsHead(mid_channels=[1280])``
        weights: ``conv_head`` (1x1 conv on the pooled map) -> ``layers.0.fc``,
        ``classifier`` -> ``layers.1.fc``."""
        out = {}
        for key, value in state_dict.items():
            if not ReferenceLayout.is_head_key(key):
                continue
            module, param = key.split('.')
            index = 0 if module == 'conv_head' else 1
            if param == 'weight' and value.dim() == 4:
                value = value.flatten(1)
            out[f'{head_prefix}layers.{index}.fc.{param}'] = value
        return out


def _conv_bn(conv: str, bn: str, ours: str) -> Tuple[Tuple[str, str], ...]:
    r"""The two rules of a reference conv and the BatchNorm after it, which this
    project keeps as one ``ConvModule``: ``conv``.weight -> ``ours``.conv.weight and
    ``bn``.{weight, bias, running stats} -> ``ours``.bn.{same}.

    ``conv`` and ``bn`` are patterns (their groups may be used in ``ours``, e.g.
    ``\1``); the BatchNorm's parameter name is the group after ``bn``'s own."""
    param = re.compile(bn).groups + 1
    return ((rf'{conv}\.weight', f'{ours}.conv.weight'),
            (rf'{bn}\.{_BN}', rf'{ours}.bn.\{param}'))


def _final_conv_rules(final_layer: int) -> Tuple[Tuple[str, str], ...]:
    return _conv_bn(r'blocks\.9\.0\.conv', r'blocks\.9\.0\.bn1', f'layer{final_layer}')


# Names that GhostNet V1, V2 and V3 share (the V2 ghost module without its DFC branch).
COMMON_STEM_RULES = _conv_bn('conv_stem', 'bn1', 'layer0') + _final_conv_rules(10)
COMMON_BLOCK_RULES = (
    _conv_bn(r'(ghost[12])\.primary_conv\.0', r'(ghost[12])\.primary_conv\.1',
             r'\1.primary_conv')
    + _conv_bn(r'(ghost[12])\.cheap_operation\.0', r'(ghost[12])\.cheap_operation\.1',
               r'\1.cheap_operation')
    + _conv_bn('conv_dw', 'bn_dw', 'conv_dw')
    + ((r'se\.(conv_reduce|conv_expand)\.(weight|bias)', r'se.\1.conv.\2'),)
    + _conv_bn(r'shortcut\.0', r'shortcut\.1', 'shortcut.depthwise')
    + _conv_bn(r'shortcut\.2', r'shortcut\.3', 'shortcut.pointwise'))
# The DFC branch: short_conv.{0,1} reduce, {2,3} horizontal (1x5), {4,5} vertical (5x1).
DFC_BLOCK_RULES = tuple(
    rule for i, part in enumerate(('reduce', 'horizontal', 'vertical'))
    for rule in _conv_bn(rf'ghost1\.short_conv\.{2 * i}', rf'ghost1\.short_conv\.{2 * i + 1}',
                         f'ghost1.dfc.{part}'))
# Keys every GhostNet-family reference state dict has.
COMMON_SIGNATURE = (
    r'^conv_stem\.weight$',
    r'^bn1\.running_var$',
    r'^blocks\.0\.0\.ghost1\.primary_conv\.0\.weight$',
    r'^blocks\.0\.0\.ghost2\.cheap_operation\.0\.weight$',
    r'^blocks\.9\.0\.conv\.weight$',
)

GHOSTNETV2 = ReferenceLayout(
    name='GhostNetV2 (official ck_ghostnetv2_*.pth.tar / timm ghostnetv2_*)',
    backbone_type='GhostNetV2',
    # The DFC branch (short_conv) is what V2 adds to GhostNet V1.
    signature=COMMON_SIGNATURE + (r'^blocks\.\d+\.\d+\.ghost1\.short_conv\.4\.weight$',),
    # GhostNetV3's re-parameterised branches.
    excluded=(r'_rpr_', r'\.(primary|cheap)_(rpr|conv)_(skip|scale)'),
    stem_rules=COMMON_STEM_RULES,
    block_rules=COMMON_BLOCK_RULES + DFC_BLOCK_RULES,
)


# GhostNet V1: the official ghostnet_1x.pth (huawei-noah/CV-backbones) and timm's
# ghostnet_* share the V2 names without the DFC branch.
GHOSTNET = ReferenceLayout(
    name='GhostNet V1 (official ghostnet_1x.pth / timm ghostnet_*)',
    backbone_type='GhostNet',
    signature=COMMON_SIGNATURE,
    # V2's DFC branch and V3's re-parameterised branches.
    excluded=(r'\.short_conv\.', r'_rpr_'),
    stem_rules=COMMON_STEM_RULES,
    block_rules=COMMON_BLOCK_RULES,
)

# GhostNetV3 in its training layout: every ghost-module conv and stride-2 depthwise
# conv is a set of parallel branches. timm's ghostnetv3_* names a branch's norm
# ``bn1``, the official ghostnetv3-1.0.pth.tar ``bn``; both are read.
#     ghost{1,2}.primary_rpr_conv.N.{conv,bn|bn1}  -> ghost{1,2}.primary_conv.branches.N.{conv,bn}
#     ghost{1,2}.cheap_rpr_conv.N.{conv,bn|bn1}    -> ghost{1,2}.cheap_operation.branches.N.{conv,bn}
#     ghost{1,2}.cheap_rpr_scale.{conv,bn|bn1}     -> ghost{1,2}.cheap_operation.scale.{conv,bn}
#     ghost{1,2}.cheap_rpr_skip                    -> ghost{1,2}.cheap_operation.skip
#     dw_rpr_conv.N.{conv,bn|bn1}                  -> conv_dw.branches.N.{conv,bn}
#     dw_rpr_scale.{conv,bn|bn1}                   -> conv_dw.scale.{conv,bn}
_REP_UNITS = (('primary_rpr_conv', 'primary_conv'), ('cheap_rpr_conv', 'cheap_operation'))
REP_BLOCK_RULES = tuple(
    rule for ref, ours in _REP_UNITS
    for rule in _conv_bn(rf'(ghost[12])\.{ref}\.(\d+)\.conv',
                         rf'(ghost[12])\.{ref}\.(\d+)\.bn1?', rf'\1.{ours}.branches.\2')) + (
    _conv_bn(r'(ghost[12])\.cheap_rpr_scale\.conv', r'(ghost[12])\.cheap_rpr_scale\.bn1?',
             r'\1.cheap_operation.scale')
    + ((rf'(ghost[12])\.cheap_rpr_skip\.{_BN}', r'\1.cheap_operation.skip.\2'),)
    + _conv_bn(r'dw_rpr_conv\.(\d+)\.conv', r'dw_rpr_conv\.(\d+)\.bn1?', r'conv_dw.branches.\1')
    + _conv_bn(r'dw_rpr_scale\.conv', r'dw_rpr_scale\.bn1?', 'conv_dw.scale'))
GHOSTNETV3 = ReferenceLayout(
    name='GhostNetV3 (official ghostnetv3-1.0.pth.tar / timm ghostnetv3_*, training layout)',
    backbone_type='GhostNetV3',
    signature=(
        r'^conv_stem\.weight$',
        r'^bn1\.running_var$',
        r'^blocks\.9\.0\.conv\.weight$',
        r'^blocks\.0\.0\.ghost1\.primary_rpr_conv\.\d+\.conv\.weight$',
        r'^blocks\.0\.0\.ghost2\.cheap_rpr_scale\.conv\.weight$',
        r'^blocks\.\d+\.\d+\.dw_rpr_conv\.\d+\.conv\.weight$',
        r'^blocks\.\d+\.\d+\.ghost1\.short_conv\.4\.weight$',
    ),
    # The re-parameterised (folded) layout of timm's reparameterize(): single convs.
    excluded=(r'\.primary_conv\.0\.', r'\.cheap_operation\.0\.', r'\.conv_dw\.weight$'),
    stem_rules=COMMON_STEM_RULES,
    block_rules=REP_BLOCK_RULES + DFC_BLOCK_RULES + COMMON_BLOCK_RULES,
)

# Every layout this project reads. The signatures exclude each other, so a state dict
# is in at most one of them.
LAYOUTS = (GHOSTNET, GHOSTNETV2, GHOSTNETV3)


def find_layout(keys: Iterable[str],
                layouts: Sequence[ReferenceLayout] = LAYOUTS) -> Optional[ReferenceLayout]:
    """The layout (of ``layouts``, default all) that a state dict with these keys is
    in, or None: the one place where a file's family is recognised."""
    keys = list(keys)
    for layout in layouts:
        if layout.matches(keys):
            return layout
    return None


# The official ImageNet files of each (backbone type, width): the one place in Python
# that names them (configs and metafiles state them again, as data).
_HUAWEI = 'https://github.com/huawei-noah/'
_V2 = _HUAWEI + 'Efficient-AI-Backbones/releases/download/GhostNetV2/'
OFFICIAL_WEIGHTS: Dict[Tuple[str, str], str] = {
    ('GhostNet', '1.0x'): _HUAWEI + 'CV-backbones/releases/download/ghostnet_pth/ghostnet_1x.pth',
    ('GhostNetV2', '1.0x'): _V2 + 'ck_ghostnetv2_10.pth.tar',
    ('GhostNetV2', '1.3x'): _V2 + 'ck_ghostnetv2_13.pth.tar',
    ('GhostNetV2', '1.6x'): _V2 + 'ck_ghostnetv2_16.pth.tar',
    ('GhostNetV3', '1.0x'): (_HUAWEI + 'Efficient-AI-Backbones/releases/download/GhostNetV3/'
                             'ghostnetv3-1.0.pth.tar'),
}


def official_url(backbone_type: str, width: str = '1.0x') -> str:
    """The URL of the official ImageNet weights of ``backbone_type`` at ``width``."""
    try:
        return OFFICIAL_WEIGHTS[(backbone_type, width)]
    except KeyError:
        raise KeyError(f'no official weights for {backbone_type} {width}; released: '
                       f'{sorted(OFFICIAL_WEIGHTS)}') from None
