"""The GhostNet family as OpenMMLab 2.x backbones (mmdet, mmseg, mmpretrain):
``GhostNet`` (V1), ``GhostNetV2`` and ``GhostNetV3``.

The three share the stage table, the blocks (``blocks.py``), the arguments, the
output indices and the taps, so swapping ``type=`` in a config is the whole
ablation. They differ only in two class attributes: whether bottlenecks have DFC
attention (V2, V3) and whether convs have GhostNetV3's re-parameterised branches.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint.adapter import load_model_weights, register_checkpoint_hook
from ..checkpoint.layouts import GHOSTNET, GHOSTNETV2, GHOSTNETV3
from .arch import (DEFAULT_INIT_CFG, STEM_CHANNELS, BackboneSettings, final_channels,
                   parse_backbone_args, pretrained_init_cfg)
from .blocks import GhostBottleneck, conv_unit, deploy_unit
from .deploy import check_foldable
from .utils import make_divisible


# A torch.fx leaf: a symbolically traced graph keeps this call (and so the error
# below) instead of failing on the Python test of a traced tensor's shape. Under
# torch.export / torch.compile the rank and the channel count are static: no guard.
@torch.fx.wrap
def check_input(x: torch.Tensor, in_channels: int, owner: str) -> torch.Tensor:
    """Return ``x`` if it is an (N, ``in_channels``, H, W) batch; raise ValueError
    naming the shape and what is allowed otherwise."""
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f'{owner}: input of shape {tuple(x.shape)} does not match '
            f'in_channels={in_channels}; allowed: (N, {in_channels}, H, W)')
    return x


class BaseGhostNet(BaseModule):
    """The GhostNet-family backbone; use :class:`GhostNet`, :class:`GhostNetV2` or
    :class:`GhostNetV3`.

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

    ``feature_info`` describes every index (channels, stride, module, bottlenecks);
    ``out_channels`` the selected outputs. The default ``out_indices=(3, 5, 7, 9)``
    taps the LAST block of each stride 4/8/16/32, which is what dense prediction
    wants (timm's ``features_only`` taps the first one instead).

    Args:
        arch (str | list): '1.0x', '1.3x', '1.6x', or a custom table: a list of
            stages, each a list of ``[kernel, hidden, out, se_ratio, stride]``.
            Default: '1.0x'.
        widen_factor (float, optional): Width multiplier. For a named arch it is
            implied by the name (passing a different one is an error); for a custom
            table None means 1.0. Default: None.
        in_channels (int): Image channels. Default: 3.
        out_indices (Sequence[int]): Layers to output (0-10, negatives count from
            the end). Default: (3, 5, 7, 9).
        frozen_stages (int): Freeze layers 0..frozen_stages (parameters and BN
            statistics); -1 freezes nothing. Default: -1.
        strides (Sequence[int], optional): Per-stage stride of stages 0-8; each is
            the arch's stride or 1. Use with ``dilations`` for output stride 16/8.
            Default: None (the arch's strides).
        dilations (Sequence[int], optional): Per-stage dilation of stages 0-8.
            E.g. output stride 8: ``strides=(1, 2, 1, 2, 1, 1, 1, 1, 1)``,
            ``dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4)``. Default: None (all 1).
        dfc_blocks (Sequence[int], optional): Global indices (0-based, over all
            bottlenecks) of the bottlenecks whose ghost1 has DFC attention. Default:
            None, the reference's rule: every bottleneck but the first two (V2, V3);
            none (GhostNet V1, which accepts only None or an empty sequence).
        dfc_kernel_size (int): Length of the DFC horizontal/vertical kernels.
            Default: 5.
        norm_cfg (dict): Normalisation layers (BN, SyncBN, GN, or a norm layer
            registered by a toolkit, e.g. mmpretrain's LN2d under its scope).
            Default: ``dict(type='BN')``.
        act_cfg (dict): Activation of the stem, the expanding ghost modules and the
            final conv. Default: ``dict(type='ReLU')``.
        se_act_cfg (dict): Hidden activation of the squeeze-excite modules.
            Default: ``dict(type='ReLU')``, fixed in every GhostNet reference.
        norm_eval (bool): Keep BatchNorm layers in eval mode while training.
            Default: False.
        with_cp (bool): Gradient checkpointing of each bottleneck. Default: False.
        pretrained (str, optional): Checkpoint path or URL; shorthand for
            ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` (mmseg's
            EncoderDecoder passes it). Default: None.
        deploy (bool): Build the inference-only network directly: every norm folded
            into its conv, GhostNetV3's branches summed, inference fast paths on
            (see :meth:`switch_to_deploy` and ``models/deploy.py``). Its state dict
            is that of a fused checkpoint (``tools/deployment/fuse_checkpoint.py``);
            an unfused checkpoint is refused with a message saying so. Default: False.
        init_cfg (dict | list[dict], optional): Initialisation. Default:
            :data:`DEFAULT_INIT_CFG` (Kaiming normal fan_out convs, norms 1 / 0).
            A ``Pretrained`` entry (local path or URL, downloaded once into torch
            hub's cache) loads this project's checkpoints and the official / timm
            files of the same family, strictly: every backbone weight must be
            found, or nothing is loaded and the error names what did not fit.
            ``prefix`` selects a sub-dict (e.g. ``'backbone.'``).

    Deploy mode: train (or load) the ordinary network, then call
    ``model.switch_to_deploy()`` AFTER the weights are loaded; it folds the current
    BatchNorm statistics into the convs, in place, and is not reversible. Or build
    with ``deploy=True`` and load fused weights.
    """

    # Set by each family member.
    reference_layout = None  # official / timm key names (checkpoint/layouts.py)
    with_dfc = True           # whether the default has DFC attention
    num_branches = 0          # GhostNetV3's parallel branches per re-parameterised conv

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
                 se_act_cfg: dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 deploy: bool = False,
                 init_cfg: Union[dict, List[dict], None] = copy.deepcopy(DEFAULT_INIT_CFG)):
        owner = type(self).__name__
        super().__init__(pretrained_init_cfg(owner, pretrained, init_cfg))
        settings = parse_backbone_args(
            owner, self.with_dfc, arch=arch, widen_factor=widen_factor,
            in_channels=in_channels, out_indices=out_indices, frozen_stages=frozen_stages,
            strides=strides, dilations=dilations, dfc_blocks=dfc_blocks,
            dfc_kernel_size=dfc_kernel_size, norm_cfg=norm_cfg, act_cfg=act_cfg,
            se_act_cfg=se_act_cfg, norm_eval=norm_eval, with_cp=with_cp, deploy=deploy)
        #: The validated arguments (``models/arch.py``); the plain ones are also kept
        #: as attributes, as mmpretrain's backbones keep theirs.
        self.settings = settings
        self.num_layers = settings.num_layers
        self.in_channels = settings.in_channels
        self.out_indices = settings.out_indices
        self.frozen_stages = settings.frozen_stages
        self.widen_factor = settings.widen_factor
        self.dfc_blocks = settings.dfc_blocks
        self.dfc_kernel_size = settings.dfc_kernel_size
        self.norm_cfg, self.act_cfg = settings.norm_cfg, settings.act_cfg
        self.se_act_cfg = settings.se_act_cfg
        self.norm_eval, self.with_cp = settings.norm_eval, settings.with_cp
        self._build(settings)
        self._freeze_stages()
        if deploy:  # already folded: this only sets the layout (channels-last) and eval
            self.switch_to_deploy()
        # Official/timm key names are renamed when a state dict reaches this module,
        # whoever loads it (mmengine's load_from, torch, load_model_weights).
        register_checkpoint_hook(self)

    # ------------------------------------------------------------------------ building
    def _build(self, settings: BackboneSettings) -> None:
        """Build layers 0-10 and describe them in ``feature_info``."""
        w, deploy = settings.widen_factor, settings.deploy
        unit = dict(norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, deploy=deploy)
        channels = make_divisible(STEM_CHANNELS * w, 4)
        self.layer0 = conv_unit(self.in_channels, channels, 3, stride=2, padding=1, **unit)
        info = [dict(num_chs=channels, reduction=2, module='layer0', blocks=())]
        block_index, total_stride, prev_dilation = 0, 2, 1
        for stage_id, stage in enumerate(settings.table):
            blocks, first_block = [], block_index
            dilation = settings.dilations[stage_id]
            for i, (k, hidden, out, se_ratio, arch_stride) in enumerate(stage):
                out = make_divisible(out * w, 4)
                blocks.append(GhostBottleneck(
                    channels, make_divisible(hidden * w, 4), out, kernel_size=k,
                    stride=settings.strides[stage_id] if i == 0 else arch_stride,
                    downsample=arch_stride > 1, se_ratio=se_ratio, dilation=dilation,
                    first_dilation=prev_dilation if i == 0 else dilation,
                    dfc_cfg=dict(kernel_size=self.dfc_kernel_size)
                    if block_index in settings.dfc_blocks else None,
                    norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                    se_act_cfg=self.se_act_cfg, num_branches=self.num_branches,
                    with_cp=self.with_cp, deploy=deploy))
                channels = out
                block_index += 1
            total_stride *= settings.strides[stage_id]
            prev_dilation = dilation
            name = f'layer{stage_id + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            info.append(dict(num_chs=channels, reduction=total_stride, module=name,
                             blocks=tuple(range(first_block, block_index))))
        # the final 1x1 conv, to the widest hidden width (960 for 1.0x)
        final = final_channels(w, settings.table)
        name = f'layer{self.num_layers - 1}'
        self.add_module(name, conv_unit(channels, final, 1, **unit))
        info.append(dict(num_chs=final, reduction=total_stride, module=name,
                         blocks=()))

        #: One entry per output index (like timm's ``feature_info``): ``num_chs``,
        #: ``reduction`` (stride), ``module`` (layer name), ``blocks`` (global
        #: indices of its bottlenecks).
        self.feature_info: Tuple[Dict, ...] = tuple(info)
        self.out_channels: Tuple[int, ...] = tuple(info[i]['num_chs'] for i in self.out_indices)
        self.deploy = deploy
        self._deploy_channels_last = False

    def bottlenecks(self):
        """(global index, output index, position in the layer, block) of every
        bottleneck, in network order."""
        for layer, info in enumerate(self.feature_info):
            for position, index in enumerate(info['blocks']):
                yield index, layer, position, getattr(self, info['module'])[position]

    # -------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = check_input(x, self.in_channels, type(self).__name__)
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
    def reparameterize(self) -> 'BaseGhostNet':
        """Fold GhostNetV3's parallel branches into single convs, in place, and
        nothing else (what timm's ``reparameterize()`` does; the other BatchNorms stay,
        so the network can still be fine-tuned). No-op for V1 and V2."""
        for _, _, _, block in self.bottlenecks():
            block.reparameterize()
        return self

    def switch_to_deploy(self, channels_last: bool = True) -> 'BaseGhostNet':
        """Re-parameterise for inference, in place (see ``models/deploy.py``).

        Folds every BatchNorm into the conv before it (using the CURRENT running
        statistics: call it after the weights are loaded), sums GhostNetV3's
        branches, turns the SE convs into Linear layers, switches the blocks to
        their inference fast paths and (``channels_last=True``, the default and the
        fastest layout on CPU) stores the weights channels-last and converts the
        input to channels-last in ``forward``. The outputs equal those of the
        eval-mode network within float rounding. Not reversible; idempotent.
        """
        if not self.deploy:
            # Check every norm first, so that a failure leaves the network untouched.
            for module in self.modules():
                if isinstance(module, (_BatchNorm, nn.GroupNorm, nn.LayerNorm,
                                       nn.modules.instancenorm._InstanceNorm)):
                    check_foldable(module)
            self.layer0 = deploy_unit(self.layer0)
            last = f'layer{self.num_layers - 1}'
            setattr(self, last, deploy_unit(getattr(self, last)))
            for _, _, _, block in self.bottlenecks():
                block.switch_to_deploy()
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


@MODELS.register_module()
class GhostNet(BaseGhostNet):
    """GhostNet (V1) backbone ("GhostNet: More Features from Cheap Operations",
    CVPR 2020, https://arxiv.org/abs/1911.11907): the GhostNetV2 network without DFC
    attention (73.9% ImageNet top-1 at 1.0x).

    Same arguments, output indices and taps as :class:`GhostNetV2` (see
    :class:`BaseGhostNet`); ``dfc_blocks`` must be None or empty. Reads the official
    ``ghostnet_1x.pth`` and timm's ``ghostnet_*`` state dicts.
    """
    reference_layout = GHOSTNET
    with_dfc = False


@MODELS.register_module()
class GhostNetV2(BaseGhostNet):
    """GhostNetV2 backbone ("GhostNetV2: Enhance Cheap Operation with Long-Range
    Attention", NeurIPS 2022, https://arxiv.org/abs/2211.12905).

    Ghost bottlenecks whose expanding ghost module is gated by DFC attention
    (every bottleneck but the first two). Arguments, output indices and taps: see
    :class:`BaseGhostNet`. Reads the official ``ck_ghostnetv2_{10,13,16}.pth.tar``
    and timm's ``ghostnetv2_*`` state dicts.
    """
    reference_layout = GHOSTNETV2


@MODELS.register_module()
class GhostNetV3(BaseGhostNet):
    """GhostNetV3 backbone ("GhostNetV3: Exploring the Training Strategies for Compact
    Models", https://arxiv.org/abs/2404.11202; 77.1% ImageNet top-1 at 1.0x).

    GhostNetV2's network (with its DFC attention) whose ghost-module convs and
    stride-2 depthwise convs are trained as :class:`~.blocks.RepConvModule`: three
    parallel conv + BN branches, a 1x1 conv + BN scale branch and, where the conv
    maps channels to themselves, an identity BN. :meth:`switch_to_deploy` sums them;
    the deployed GhostNetV3 is the same graph as a deployed GhostNetV2 (same MACs,
    same export). Arguments, output indices and taps: see :class:`BaseGhostNet`.
    Reads the official ``ghostnetv3-1.0.pth.tar`` (1.0x is the only released
    width) and timm's ``ghostnetv3_*`` training-layout state dicts.
    """
    reference_layout = GHOSTNETV3
    num_branches = 3


#: The GhostNet family, by type name: the one list every tool, check and test uses.
#: The three share arguments, output indices and taps (swapping ``type=`` is the
#: whole ablation); each reads its official/timm layout (``reference_layout``).
FAMILY = {cls.__name__: cls for cls in (GhostNet, GhostNetV2, GhostNetV3)}
