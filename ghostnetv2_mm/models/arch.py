"""The GhostNet-family architecture table and the backbone's argument parser.

:data:`BASE_STAGES` is the papers' Table 1 (the same in V1, V2 and V3).
:func:`parse_backbone_args` validates every constructor argument of a GhostNet-family
backbone (each error names the argument, its value and what is allowed) and returns
one frozen :class:`BackboneSettings`; it has no other effect, so the network in
``backbone.py`` is built from a value that cannot change after the checks.
"""
import copy
import inspect
from dataclasses import dataclass
from numbers import Real
from typing import FrozenSet, Tuple

import torch.nn as nn
from mmengine.registry import MODELS

from .utils import make_divisible

# One row per bottleneck: [kernel k, hidden width t, out width c, SE ratio, stride].
# Stages 0-8 of the papers' Table 1; stage 9, the final 1x1 conv to the widest hidden
# width (960 at 1.0x), is built by the backbone from the last row.
BASE_STAGES = [
    [[3, 16, 16, 0, 1]],
    [[3, 48, 24, 0, 2]],
    [[3, 72, 24, 0, 1]],
    [[5, 72, 40, 0.25, 2]],
    [[5, 120, 40, 0.25, 1]],
    [[3, 240, 80, 0, 2]],
    [[3, 200, 80, 0, 1], [3, 184, 80, 0, 1], [3, 184, 80, 0, 1],
     [3, 480, 112, 0.25, 1], [3, 672, 112, 0.25, 1]],
    [[5, 672, 160, 0.25, 2]],
    [[5, 960, 160, 0, 1], [5, 960, 160, 0.25, 1], [5, 960, 160, 0, 1],
     [5, 960, 160, 0.25, 1]],
]

# Published widths: every channel count of BASE_STAGES (and the stem's 16 and the
# final 960) is multiplied by the factor, then rounded with make_divisible(x, 4).
ARCH_WIDTHS = {'1.0x': 1.0, '1.3x': 1.3, '1.6x': 1.6}

STEM_CHANNELS = 16


def final_channels(widen_factor: float, table=BASE_STAGES) -> int:
    """Channels of the final 1x1 conv (stage 9): the last row's hidden width of the
    stage ``table``, scaled (960 / 1248 / 1536 at 1.0x / 1.3x / 1.6x)."""
    return make_divisible(table[-1][-1][1] * widen_factor, 4)

# What ``init_weights`` does without a Pretrained init_cfg: the initialisation mmcv's
# ConvModule gives its conv and norm (Kaiming normal, fan_out, for ReLU; norms 1 / 0).
DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
         distribution='normal'),
    dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1, bias=0),
]


@dataclass(frozen=True)
class BackboneSettings:
    """The validated arguments a GhostNet-family backbone is built from.

    ``table`` holds the stages (tuples of ``(kernel, hidden, out, se_ratio, stride)``
    rows) before the width multiplier; ``strides``/``dilations`` are per stage;
    ``out_indices`` are normalised (non-negative, sorted); ``num_layers`` counts the
    stem, the stages and the final conv.
    """
    table: Tuple[Tuple[tuple, ...], ...]
    widen_factor: float
    in_channels: int
    out_indices: Tuple[int, ...]
    frozen_stages: int
    strides: Tuple[int, ...]
    dilations: Tuple[int, ...]
    dfc_blocks: FrozenSet[int]
    dfc_kernel_size: int
    norm_cfg: dict
    act_cfg: dict
    se_act_cfg: dict
    norm_eval: bool
    with_cp: bool
    deploy: bool

    @property
    def num_layers(self) -> int:
        return len(self.table) + 2


class _Parser:
    """Checks for one backbone class; ``owner`` names it in every message."""

    def __init__(self, owner: str, with_dfc: bool):
        self.owner, self.with_dfc = owner, with_dfc

    def error(self, name, value, allowed, exc=ValueError):
        return exc(f'{self.owner}: invalid {name}={value!r}; allowed: {allowed}')

    def int_at_least(self, name, value, minimum):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.error(name, value, f'an int >= {minimum}')
        return value

    def arch(self, arch, widen_factor):
        if widen_factor is not None and (not isinstance(widen_factor, Real)
                                         or isinstance(widen_factor, bool)
                                         or widen_factor <= 0):
            raise self.error('widen_factor', widen_factor, 'a positive number or None')
        if isinstance(arch, str):
            if arch not in ARCH_WIDTHS:
                raise self.error('arch', arch,
                                 f'one of {sorted(ARCH_WIDTHS)} or a custom stage table')
            implied = ARCH_WIDTHS[arch]
            if widen_factor is not None and float(widen_factor) != implied:
                raise ValueError(
                    f'{self.owner}: widen_factor={widen_factor!r} contradicts '
                    f'arch={arch!r} (which means widen_factor={implied}); allowed: omit '
                    'widen_factor, or use a custom stage table as arch')
            return BASE_STAGES, implied
        if not isinstance(arch, (list, tuple)) or len(arch) == 0:
            raise self.error('arch', arch, f'one of {sorted(ARCH_WIDTHS)} or a non-empty '
                             'list of stages', TypeError)
        for s, stage in enumerate(arch):
            if not isinstance(stage, (list, tuple)) or len(stage) == 0:
                raise self.error(f'arch[{s}]', stage, 'a non-empty list of '
                                 '[kernel, hidden, out, se_ratio, stride]')
            for b, row in enumerate(stage):
                self.table_row(f'arch[{s}][{b}]', row, first=b == 0)
        return arch, 1.0 if widen_factor is None else float(widen_factor)

    def table_row(self, where, row, first):
        if not isinstance(row, (list, tuple)) or len(row) != 5:
            raise self.error(where, row, '[kernel, hidden, out, se_ratio, stride]')
        k, t, c, se, st = row
        if not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise self.error(f'{where} kernel', k, 'a positive odd int')
        for n, v in (('hidden', t), ('out', c)):
            if not isinstance(v, Real) or v <= 0:
                raise self.error(f'{where} {n} width', v, 'a positive number')
        if not isinstance(se, Real) or not 0 <= se < 1:
            raise self.error(f'{where} se_ratio', se, 'a number in [0, 1)')
        if st not in (1, 2) or (not first and st != 1):
            raise self.error(f'{where} stride', st, '1 or 2 for the first block '
                             'of a stage, 1 for the others')

    def out_indices(self, out_indices, n):
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        allowed = f'a non-empty sequence of distinct ints in [-{n}, {n - 1}]'
        if (not isinstance(out_indices, (list, tuple)) or len(out_indices) == 0
                or not all(isinstance(i, int) and not isinstance(i, bool)
                           for i in out_indices)):
            raise self.error('out_indices', out_indices, allowed)
        if not all(-n <= i < n for i in out_indices):
            raise self.error('out_indices', out_indices, allowed)
        normalised = [i % n for i in out_indices]
        if len(set(normalised)) != len(normalised):
            raise self.error('out_indices', out_indices, allowed)
        # Outputs come in network order, so out_channels must too.
        return tuple(sorted(normalised))

    def frozen_stages(self, frozen_stages, num_layers):
        if (not isinstance(frozen_stages, int) or isinstance(frozen_stages, bool)
                or not -1 <= frozen_stages < num_layers):
            raise self.error('frozen_stages', frozen_stages,
                             f'an int in [-1, {num_layers - 1}]')
        return frozen_stages

    def per_stage(self, name, values, num_stages):
        if values is None:
            return (1,) * num_stages
        if (not isinstance(values, (list, tuple)) or len(values) != num_stages
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                           for v in values)):
            raise self.error(name, values, f'a sequence of {num_stages} ints >= 1 '
                             '(one per stage)')
        return tuple(values)

    def strides(self, strides, arch_strides):
        if strides is None:
            return tuple(arch_strides)
        strides = self.per_stage('strides', strides, len(arch_strides))
        for i, (s, a) in enumerate(zip(strides, arch_strides)):
            if s not in (1, a):
                raise self.error(f'strides[{i}]', s,
                                 f'{sorted({1, a})} (the arch stride of stage {i}, or 1)')
        return strides

    def dfc_blocks(self, dfc_blocks, num_blocks):
        sequences = (list, tuple, set, frozenset, range)
        if not self.with_dfc:
            if dfc_blocks is not None and (not isinstance(dfc_blocks, sequences)
                                           or len(dfc_blocks)):
                raise self.error('dfc_blocks', dfc_blocks,
                                 f'None or () ({self.owner} has no DFC attention; '
                                 'GhostNetV2 and GhostNetV3 have)')
            return frozenset()
        if dfc_blocks is None:  # the reference's rule: all but the first two bottlenecks
            return frozenset(range(2, num_blocks))
        allowed = f'None or a sequence of bottleneck indices in [0, {num_blocks - 1}]'
        if not isinstance(dfc_blocks, sequences):
            raise self.error('dfc_blocks', dfc_blocks, allowed, TypeError)
        for i in dfc_blocks:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < num_blocks:
                raise self.error('dfc_blocks', dfc_blocks, allowed)
        return frozenset(dfc_blocks)

    def dfc_kernel_size(self, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 \
                or value % 2 == 0:
            raise self.error('dfc_kernel_size', value, 'a positive odd int')
        return value

    def flag(self, name, value):
        if not isinstance(value, bool):
            raise self.error(name, value, 'True or False', TypeError)
        return value

    def layer_cfg(self, name, cfg):
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise self.error(name, cfg, "a dict with a 'type' key", TypeError)
        layer_type = cfg['type']
        if inspect.isclass(layer_type) and issubclass(layer_type, nn.Module):
            return copy.deepcopy(cfg)
        # The lookup mmcv's build_norm_layer / build_activation_layer make: the
        # registry of the current default scope (e.g. mmpretrain's, with its LN2d),
        # which falls back to mmengine's root MODELS.
        with MODELS.switch_scope_and_registry(None) as registry:
            found = isinstance(layer_type, str) and registry.get(layer_type) is not None
            scope = registry.scope
        if not found:
            kind = 'norm' if name == 'norm_cfg' else 'activation'
            examples = 'BN, SyncBN, GN, LN' if kind == 'norm' else 'ReLU, ReLU6, HSwish, GELU'
            raise KeyError(
                f'{self.owner}: invalid {name}={cfg!r}: type {layer_type!r} is '
                f'not registered in the MODELS registry of scope {scope!r} nor in the root '
                f'MODELS of mmengine; allowed: a registered {kind} layer such as '
                f'{examples} (a layer of a toolkit needs that default scope or the scope '
                'prefix, e.g. mmpretrain.LN2d)')
        return copy.deepcopy(cfg)


def parse_backbone_args(owner: str, with_dfc: bool, *, arch, widen_factor, in_channels,
                        out_indices, frozen_stages, strides, dilations, dfc_blocks,
                        dfc_kernel_size, norm_cfg, act_cfg, se_act_cfg, norm_eval,
                        with_cp, deploy) -> BackboneSettings:
    """Validate the arguments of a GhostNet-family backbone.

    Args:
        owner (str): The backbone class name, shown in every message.
        with_dfc (bool): Whether the family member has DFC attention (V2, V3); without
            it (V1) ``dfc_blocks`` must be None or empty.
        **kwargs: The backbone's arguments, all required (their defaults and meaning
            are those of ``BaseGhostNet``).

    Returns:
        BackboneSettings: frozen; raises ValueError / TypeError / KeyError naming the
        argument, its value and what is allowed.
    """
    check = _Parser(owner, with_dfc)
    table, widen = check.arch(arch, widen_factor)
    table = tuple(tuple(tuple(row) for row in stage) for stage in table)
    num_layers = len(table) + 2
    return BackboneSettings(
        table=table,
        widen_factor=widen,
        in_channels=check.int_at_least('in_channels', in_channels, 1),
        out_indices=check.out_indices(out_indices, num_layers),
        frozen_stages=check.frozen_stages(frozen_stages, num_layers),
        strides=check.strides(strides, [stage[0][4] for stage in table]),
        dilations=check.per_stage('dilations', dilations, len(table)),
        dfc_blocks=check.dfc_blocks(dfc_blocks, sum(len(s) for s in table)),
        dfc_kernel_size=check.dfc_kernel_size(dfc_kernel_size),
        norm_cfg=check.layer_cfg('norm_cfg', norm_cfg),
        act_cfg=check.layer_cfg('act_cfg', act_cfg),
        se_act_cfg=check.layer_cfg('se_act_cfg', se_act_cfg),
        norm_eval=check.flag('norm_eval', norm_eval),
        with_cp=check.flag('with_cp', with_cp),
        deploy=check.flag('deploy', deploy))


def pretrained_init_cfg(owner: str, pretrained, init_cfg):
    """``init_cfg`` with mmseg's ``pretrained`` shorthand turned into a Pretrained
    entry (passing both is an error)."""
    if pretrained is None:
        return init_cfg
    if not isinstance(pretrained, str):
        raise TypeError(f'{owner}: invalid pretrained={pretrained!r}; allowed: a '
                        'checkpoint path or URL (str) or None')
    if init_cfg is not None and init_cfg != DEFAULT_INIT_CFG:
        raise ValueError(f'{owner}: pass either pretrained or init_cfg, not both (got '
                         f'pretrained={pretrained!r}, init_cfg={init_cfg!r})')
    return dict(type='Pretrained', checkpoint=pretrained)
