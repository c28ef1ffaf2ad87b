"""GhostNetV2 backbone for OpenMMLab 2.x (mmdet, mmseg, mmpretrain)."""
import copy
from numbers import Real
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from .conv_module import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint.adapter import load_model_weights, register_reference_layout_hook
from ..checkpoint.layouts import GHOSTNETV2
from .blocks import GhostBottleneck
from .deploy import fuse_conv_module
from .utils import make_divisible

# One row per bottleneck: [kernel k, hidden width t, out width c, SE ratio, stride].
# Stages 0-8 of the paper's Table 1; stage 9 is the final 1x1 conv (see below).
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


def _arg_error(name, value, allowed, exc=ValueError):
    return exc(f'GhostNetV2: invalid {name}={value!r}; allowed: {allowed}')


@MODELS.register_module()
class GhostNetV2(BaseModule):
    """GhostNetV2 backbone ("GhostNetV2: Enhance Cheap Operation with Long-Range
    Attention", NeurIPS 2022, https://arxiv.org/abs/2211.12905).

    The network is a stem, nine stages of Ghost bottlenecks and a final 1x1 conv.
    Outputs are indexed like mmpretrain's MobileNetV3 layers:

    ====== ================== ============== =================================
    index  layer              stride (1.0x)  channels 1.0x / 1.3x / 1.6x
    ====== ================== ============== =================================
    0      stem conv          2              16 / 20 / 24
    1-2    stages 0-1         2, 4           16, 24
    3      stage 2            4              24 / 32 / 40
    4-5    stages 3-4         8              40 / 52 / 64
    6-7    stages 5-6         16             80, 112 / 144 / 180
    8-9    stages 7-8         32             160 / 208 / 256
    10     final 1x1 conv     32             960 / 1248 / 1536
    ====== ================== ============== =================================

    The default ``out_indices=(3, 5, 7, 9)`` taps the LAST block of each stride
    4/8/16/32, which is what dense prediction wants (timm's ``features_only``
    taps the first one instead).

    Args:
        arch (str | list): '1.0x', '1.3x', '1.6x', or a custom table: a list of
            stages, each a list of ``[kernel, hidden, out, se_ratio, stride]``.
        widen_factor (float, optional): Width multiplier. For a named arch it is
            implied by the name (passing a different one is an error); for a custom
            table it defaults to 1.0.
        in_channels (int): Image channels. Default: 3.
        out_indices (Sequence[int]): Layers to output (0-10, negatives count from
            the end). Default: (3, 5, 7, 9).
        frozen_stages (int): Freeze layers 0..frozen_stages (parameters and BN
            statistics); -1 freezes nothing. Default: -1.
        strides (Sequence[int], optional): Per-stage stride of stages 0-8; each is
            the arch's stride or 1. Use with ``dilations`` for output stride 16/8.
        dilations (Sequence[int], optional): Per-stage dilation of stages 0-8.
            E.g. output stride 8: ``strides=(1, 2, 1, 2, 1, 1, 1, 1, 1)``,
            ``dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4)``.
        dfc_blocks (Sequence[int], optional): Global indices (0-based, over all
            bottlenecks) of the bottlenecks whose ghost1 has DFC attention. Default:
            the reference's rule, every bottleneck but the first two.
        dfc_kernel_size (int): Length of the DFC horizontal/vertical kernels.
            Default: 5.
        norm_cfg (dict): Normalisation layers (BN, SyncBN, GN, ...).
        act_cfg (dict): Activation layers. Default: ReLU.
        norm_eval (bool): Keep BatchNorm layers in eval mode while training.
        with_cp (bool): Gradient checkpointing of each bottleneck.
        pretrained (str, optional): Checkpoint path; shorthand for
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` (mmseg's
            EncoderDecoder passes it).
        deploy (bool): Build the inference-only, re-parameterised network (every
            BatchNorm folded into its conv, see :meth:`switch_to_deploy` and
            ``ghostnetv2_mm/models/deploy.py``). Its state dict is that of a fused
            checkpoint (``tools/deployment/fuse_checkpoint.py``); an unfused
            checkpoint is refused with a message saying so. Default: False.
        init_cfg (dict | list[dict], optional): Initialisation. A ``Pretrained``
            entry (local path or URL, downloaded once into torch hub's cache) loads
            this project's checkpoints, official GhostNetV2 files
            (``ck_ghostnetv2_10.pth.tar``) and timm state dicts, strictly: every
            backbone weight must be found, or nothing is loaded and the error names
            what did not fit. ``prefix`` selects a sub-dict (e.g. ``'backbone.'``).

    Deploy mode: train (or load) the ordinary network, then call
    ``model.eval(); model.switch_to_deploy()`` AFTER the weights are loaded; it
    folds the current BatchNorm statistics into the convs, in place, and is not
    reversible. Or build with ``deploy=True`` and load fused weights.
    """

    # The official / timm key names this backbone reads (see checkpoint/layouts.py).
    reference_layout = GHOSTNETV2

    def __init__(self,
                 arch: Union[str, Sequence] = '1.0x',
                 widen_factor: Optional[float] = None,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3, 5, 7, 9),
                 frozen_stages: int = -1,
                 strides: Optional[Sequence[int]] = None,
                 dilations: Optional[Sequence[int]] = None,
                 dfc_blocks: Optional[Sequence[int]] = None,
                 dfc_kernel_size: int = 5,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 deploy: bool = False,
                 init_cfg=None):
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise _arg_error('pretrained', pretrained, 'a checkpoint path (str) or None',
                                 TypeError)
            if init_cfg is not None:
                raise ValueError('GhostNetV2: pass either pretrained or init_cfg, not both '
                                 f'(got pretrained={pretrained!r}, init_cfg={init_cfg!r})')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg)
        table, widen_factor = self._parse_arch(arch, widen_factor)
        num_stages = len(table)
        self.num_layers = num_stages + 2  # stem + stages + final conv
        self.in_channels = self._check_int('in_channels', in_channels, 1)
        self.out_indices = self._parse_out_indices(out_indices)
        if (not isinstance(frozen_stages, int) or isinstance(frozen_stages, bool)
                or not -1 <= frozen_stages < self.num_layers):
            raise _arg_error('frozen_stages', frozen_stages,
                             f'an int in [-1, {self.num_layers - 1}]')
        self.frozen_stages = frozen_stages
        arch_strides = [stage[0][4] for stage in table]
        strides = self._parse_strides(strides, arch_strides)
        dilations = self._parse_per_stage('dilations', dilations, num_stages)
        num_blocks = sum(len(stage) for stage in table)
        self.dfc_blocks = self._parse_dfc_blocks(dfc_blocks, num_blocks)
        if (not isinstance(dfc_kernel_size, int) or dfc_kernel_size < 1
                or dfc_kernel_size % 2 == 0):
            raise _arg_error('dfc_kernel_size', dfc_kernel_size, 'a positive odd int')
        self._check_layer_cfg('norm_cfg', norm_cfg)
        self._check_layer_cfg('act_cfg', act_cfg)
        for name, flag in (('norm_eval', norm_eval), ('with_cp', with_cp),
                           ('deploy', deploy)):
            if not isinstance(flag, bool):
                raise _arg_error(name, flag, 'True or False', TypeError)
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.norm_cfg = copy.deepcopy(norm_cfg)
        self.act_cfg = copy.deepcopy(act_cfg)
        self.widen_factor = widen_factor

        # layer0: stem
        channels = make_divisible(STEM_CHANNELS * widen_factor, 4)
        self.layer0 = ConvModule(self.in_channels, channels, 3, stride=2, padding=1,
                                 norm_cfg=norm_cfg, act_cfg=act_cfg)
        layer_channels = [channels]
        layer_strides = [2]
        # layers 1-9: the bottleneck stages
        block_index, total_stride, prev_dilation = 0, 2, 1
        for stage_id, stage in enumerate(table):
            blocks = []
            for i, (k, hidden, out, se_ratio, arch_stride) in enumerate(stage):
                hidden = make_divisible(hidden * widen_factor, 4)
                out = make_divisible(out * widen_factor, 4)
                first = i == 0
                blocks.append(GhostBottleneck(
                    channels, hidden, out, kernel_size=k,
                    stride=strides[stage_id] if first else arch_stride,
                    downsample=arch_stride > 1, se_ratio=se_ratio,
                    dilation=dilations[stage_id],
                    first_dilation=prev_dilation if first else dilations[stage_id],
                    dfc_cfg=dict(kernel_size=dfc_kernel_size)
                    if block_index in self.dfc_blocks else None,
                    norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp))
                channels = out
                block_index += 1
            total_stride *= strides[stage_id]
            prev_dilation = dilations[stage_id]
            self.add_module(f'layer{stage_id + 1}', nn.Sequential(*blocks))
            layer_channels.append(channels)
            layer_strides.append(total_stride)
        # layer10: final 1x1 conv to the widest hidden width (960 for 1.0x)
        final_channels = make_divisible(table[-1][-1][1] * widen_factor, 4)
        self.add_module(f'layer{self.num_layers - 1}', ConvModule(
            channels, final_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        layer_channels.append(final_channels)
        layer_strides.append(total_stride)

        self.layer_channels: List[int] = layer_channels
        self.layer_strides: List[int] = layer_strides
        self.out_channels: Tuple[int, ...] = tuple(layer_channels[i] for i in self.out_indices)
        self._freeze_stages()
        self.deploy = False
        self._deploy_channels_last = False
        if deploy:
            self.switch_to_deploy()
        # Official/timm key names are renamed when a state dict reaches this module,
        # whoever loads it (mmengine's load_from, torch, load_model_weights).
        register_reference_layout_hook(self)

    # ----------------------------------------------------------------- argument parsing
    @staticmethod
    def _check_int(name, value, minimum):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise _arg_error(name, value, f'an int >= {minimum}')
        return value

    @staticmethod
    def _parse_arch(arch, widen_factor):
        if widen_factor is not None and (not isinstance(widen_factor, Real)
                                         or isinstance(widen_factor, bool)
                                         or widen_factor <= 0):
            raise _arg_error('widen_factor', widen_factor, 'a positive number or None')
        if isinstance(arch, str):
            if arch not in ARCH_WIDTHS:
                raise _arg_error('arch', arch,
                                 f'one of {sorted(ARCH_WIDTHS)} or a custom stage table')
            implied = ARCH_WIDTHS[arch]
            if widen_factor is not None and float(widen_factor) != implied:
                raise ValueError(
                    f'GhostNetV2: widen_factor={widen_factor!r} contradicts arch={arch!r} '
                    f'(which means widen_factor={implied}); allowed: omit widen_factor, '
                    f'or use a custom stage table as arch')
            return BASE_STAGES, implied
        if not isinstance(arch, (list, tuple)) or len(arch) == 0:
            raise _arg_error('arch', arch, f'one of {sorted(ARCH_WIDTHS)} or a non-empty '
                             'list of stages', TypeError)
        for s, stage in enumerate(arch):
            if not isinstance(stage, (list, tuple)) or len(stage) == 0:
                raise _arg_error(f'arch[{s}]', stage,
                                 'a non-empty list of [kernel, hidden, out, se_ratio, stride]')
            for b, row in enumerate(stage):
                where = f'arch[{s}][{b}]'
                if not isinstance(row, (list, tuple)) or len(row) != 5:
                    raise _arg_error(where, row, '[kernel, hidden, out, se_ratio, stride]')
                k, t, c, se, st = row
                if not isinstance(k, int) or k < 1 or k % 2 == 0:
                    raise _arg_error(f'{where} kernel', k, 'a positive odd int')
                for n, v in (('hidden', t), ('out', c)):
                    if not isinstance(v, Real) or v <= 0:
                        raise _arg_error(f'{where} {n} width', v, 'a positive number')
                if not isinstance(se, Real) or not 0 <= se < 1:
                    raise _arg_error(f'{where} se_ratio', se, 'a number in [0, 1)')
                if st not in (1, 2) or (b > 0 and st != 1):
                    raise _arg_error(f'{where} stride', st,
                                     '1 or 2 for the first block of a stage, 1 for the others')
        return [list(map(list, stage)) for stage in arch], \
            1.0 if widen_factor is None else float(widen_factor)

    def _parse_out_indices(self, out_indices):
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        allowed = f'a non-empty sequence of distinct ints in [-{self.num_layers}, {self.num_layers - 1}]'
        if (not isinstance(out_indices, (list, tuple)) or len(out_indices) == 0
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices)):
            raise _arg_error('out_indices', out_indices, allowed)
        normalised = []
        for i in out_indices:
            if not -self.num_layers <= i < self.num_layers:
                raise _arg_error('out_indices', out_indices, allowed)
            normalised.append(i % self.num_layers)
        if len(set(normalised)) != len(normalised):
            raise _arg_error('out_indices', out_indices, allowed)
        # Outputs come in network order, so out_channels must too.
        return tuple(sorted(normalised))

    @staticmethod
    def _parse_per_stage(name, values, num_stages):
        if values is None:
            return [1] * num_stages
        if (not isinstance(values, (list, tuple)) or len(values) != num_stages
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                           for v in values)):
            raise _arg_error(name, values, f'a sequence of {num_stages} ints >= 1 '
                             '(one per stage)')
        return list(values)

    def _parse_strides(self, strides, arch_strides):
        if strides is None:
            return list(arch_strides)
        strides = self._parse_per_stage('strides', strides, len(arch_strides))
        for i, (s, a) in enumerate(zip(strides, arch_strides)):
            if s not in (1, a):
                raise _arg_error(f'strides[{i}]', s,
                                 f'{sorted({1, a})} (the arch stride of stage {i}, or 1)')
        return strides

    @staticmethod
    def _parse_dfc_blocks(dfc_blocks, num_blocks):
        if dfc_blocks is None:
            return frozenset(range(2, num_blocks))
        allowed = f'None or a sequence of bottleneck indices in [0, {num_blocks - 1}]'
        if not isinstance(dfc_blocks, (list, tuple, set, frozenset, range)):
            raise _arg_error('dfc_blocks', dfc_blocks, allowed, TypeError)
        for i in dfc_blocks:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < num_blocks:
                raise _arg_error('dfc_blocks', dfc_blocks, allowed)
        return frozenset(dfc_blocks)

    @staticmethod
    def _check_layer_cfg(name, cfg):
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise _arg_error(name, cfg, "a dict with a 'type' key", TypeError)
        layer_type = cfg['type']
        if isinstance(layer_type, str) and MODELS.get(layer_type) is None:
            raise KeyError(f'GhostNetV2: invalid {name}={cfg!r}: type {layer_type!r} is '
                           'not registered in mmengine MODELS; allowed: a registered '
                           f'{"norm" if name == "norm_cfg" else "activation"} layer '
                           f'such as {"BN, SyncBN, GN, LN" if name == "norm_cfg" else "ReLU, ReLU6, HSwish, GELU"}')

    # -------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'GhostNetV2: input of shape {tuple(x.shape)} does not match '
                f'in_channels={self.in_channels}; allowed: (N, {self.in_channels}, H, W)')
        if self._deploy_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        # Layers after the last requested output never run (and are frozen: see
        # _freeze_stages), in training as at inference.
        for i in range(self.out_indices[-1] + 1):
            x = getattr(self, f'layer{i}')(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    # ---------------------------------------------------------------------- deploy mode
    def switch_to_deploy(self, channels_last: bool = True) -> 'GhostNetV2':
        """Re-parameterise for inference, in place (see ``models/deploy.py``).

        Folds every BatchNorm into the conv before it (using the CURRENT running
        statistics: call it after the weights are loaded), turns the SE convs
        into Linear layers, and (``channels_last=True``, the default and the
        fastest layout on CPU) stores the weights channels-last and converts the
        input to channels-last in ``forward``. The outputs equal those of the
        eval-mode network within float rounding. Not reversible; idempotent.
        """
        if not self.deploy:
            if any(isinstance(m, _BatchNorm) and not m.track_running_stats
                   for m in self.modules()):
                raise NotImplementedError('switch_to_deploy needs BatchNorm running stats')
            self.layer0 = fuse_conv_module(self.layer0)
            last = f'layer{self.num_layers - 1}'
            setattr(self, last, fuse_conv_module(getattr(self, last)))
            for module in self.modules():
                if isinstance(module, GhostBottleneck):
                    module.switch_to_deploy()
            self.deploy = True
        self._deploy_channels_last = bool(channels_last)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.eval()
        return self

    # ---------------------------------------------------------------- training helpers
    def _freeze_stages(self):
        # Layers after the last output are kept (so full checkpoints load strictly)
        # but never run: they must not look trainable, or DDP waits for their grads.
        for i in range(self.out_indices[-1] + 1, self.num_layers):
            for param in getattr(self, f'layer{i}').parameters():
                param.requires_grad = False
        for i in range(self.frozen_stages + 1):
            layer = getattr(self, f'layer{i}')
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self):
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            # Strict, all-or-nothing loading instead of mmengine's PretrainedInit, which
            # skips missing keys silently. Reads paths, URLs (cached) and official files.
            load_model_weights(self, init_cfg['checkpoint'], prefix=init_cfg.get('prefix'),
                               map_location=init_cfg.get('map_location', 'cpu'))
            self._is_init = True
            return
        super().init_weights()
