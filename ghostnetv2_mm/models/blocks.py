"""The building blocks of GhostNetV2, one class per box of the paper's Figure 4.

    GhostBottleneck
      ghost1: GhostModule (expand, ReLU) x DFCAttention gate   <- "GhostV2 bottleneck"
      conv_dw: depthwise k x k, stride 2 (down-sampling blocks only)
      se:      SqueezeExcite (some blocks)
      ghost2:  GhostModule (project, no activation)
      + shortcut (identity, or depthwise k x k + pointwise 1 x 1)

Module names are this project's (OpenMMLab style, ``ConvModule`` with ``conv``/``bn``);
``ghostnetv2_mm.checkpoint.convert`` maps the reference implementation's names onto
them.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from .conv_module import ConvModule
from mmengine.model import BaseModule

from .deploy import conv_module_to_linear, fuse_conv_module, multiply_by_gate
from .utils import make_divisible


class SqueezeExcite(BaseModule):
    """Channel attention: global pool, bottleneck of 1x1 convs, hard-sigmoid gate.

    Args:
        channels (int): Input and output channels.
        se_ratio (float): Reduced width as a fraction of ``channels``; rounded with
            :func:`make_divisible` to a multiple of ``divisor``.
        divisor (int): Channel rounding. Default: 4.
        act_cfg (dict): Activation between the two 1x1 convs. Default: ReLU.
    """

    def __init__(self, channels: int, se_ratio: float = 0.25, divisor: int = 4,
                 act_cfg: dict = dict(type='ReLU'), init_cfg=None):
        super().__init__(init_cfg)
        reduced = make_divisible(channels * se_ratio, divisor)
        self.conv_reduce = ConvModule(channels, reduced, 1, bias=True,
                                      norm_cfg=None, act_cfg=act_cfg)
        self.conv_expand = ConvModule(reduced, channels, 1, bias=True,
                                      norm_cfg=None, act_cfg=None)

        self.deploy = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self._forward_deploy(x)
        gate = self.conv_expand(self.conv_reduce(x.mean((2, 3), keepdim=True)))
        # The reference gate is relu6(x + 3) / 6, which is exactly torch's hardsigmoid.
        return x * F.hardsigmoid(gate)

    def _forward_deploy(self, x: torch.Tensor) -> torch.Tensor:
        # conv_reduce / conv_expand are Linear layers on the pooled (N, C) vector here.
        n, c = x.shape[:2]
        gate = F.hardsigmoid(self.conv_expand(self.conv_reduce(x.mean((2, 3)))),
                             inplace=True).view(n, c, 1, 1)
        if torch.is_grad_enabled():
            return x * gate
        return x.mul_(gate)

    def switch_to_deploy(self) -> None:
        """Replace the two 1x1 convs (which see a 1x1 map) by Linear layers."""
        if self.deploy:
            return
        self.conv_reduce = conv_module_to_linear(self.conv_reduce)
        self.conv_expand = conv_module_to_linear(self.conv_expand)
        self.deploy = True


class DFCAttention(BaseModule):
    """Decoupled fully-connected attention: the long-range gate of GhostNetV2.

    On a 2x down-sampled copy of the block input: 1x1 conv + BN, a horizontal
    depthwise ``(1, k)`` conv + BN and a vertical depthwise ``(k, 1)`` conv + BN
    (no activation anywhere), then a sigmoid; the gate is resized (nearest) to the
    size of the features it multiplies.

    Maps smaller than 2 pixels along a side (e.g. the last stages of a 32x32 CIFAR
    input, which crash the reference) are pooled with a kernel of 1 along that side,
    i.e. not down-sampled there: there is nothing to average. For sizes >= 2 the
    pooling is the reference's 2x2/stride-2 average pool (floor mode), bit for bit.

    The sigmoid is computed in float32 whatever the input dtype, so that the gate
    stays finite and exact under float16/bfloat16 autocast.

    Args:
        in_channels (int): Channels of the block input.
        out_channels (int): Channels of the gated features (the gate's channels).
        kernel_size (int): Length of the decoupled horizontal/vertical kernels.
            Default: 5 (the paper's).
        dilation (int): Dilation of the decoupled convs, for dilated backbones.
        norm_cfg (dict): Normalisation after each conv.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilation: int = 1, norm_cfg: dict = dict(type='BN'),
                 init_cfg=None):
        super().__init__(init_cfg)
        pad = kernel_size // 2 * dilation
        self.reduce = ConvModule(in_channels, out_channels, 1,
                                 norm_cfg=norm_cfg, act_cfg=None)
        self.horizontal = ConvModule(
            out_channels, out_channels, (1, kernel_size), padding=(0, pad),
            dilation=(1, dilation), groups=out_channels, norm_cfg=norm_cfg,
            act_cfg=None)
        self.vertical = ConvModule(
            out_channels, out_channels, (kernel_size, 1), padding=(pad, 0),
            dilation=(dilation, 1), groups=out_channels, norm_cfg=norm_cfg,
            act_cfg=None)

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        kernel = (min(2, x.shape[-2]), min(2, x.shape[-1]))
        return F.avg_pool2d(x, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor,
                size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Return the gate for features of spatial ``size``, in float32.

        With ``size=None`` the gate is returned at the pooled resolution;
        :func:`~ghostnetv2_mm.models.deploy.multiply_by_gate` then applies it with
        the nearest resize folded into a broadcast (what :class:`GhostModule` does).
        """
        attn = self.vertical(self.horizontal(self.reduce(self.downsample(x))))
        gate = torch.sigmoid(attn.float())
        if size is None:
            return gate
        return F.interpolate(gate, size=tuple(size), mode='nearest')

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms into the three convs (see ``deploy.py`` for why the
        two decoupled depthwise convs stay separate and pooling stays first)."""
        self.reduce = fuse_conv_module(self.reduce)
        self.horizontal = fuse_conv_module(self.horizontal)
        self.vertical = fuse_conv_module(self.vertical)


class GhostModule(BaseModule):
    """Ghost module: a few "intrinsic" maps from a 1x1 conv, the rest from a cheap
    depthwise conv on them, optionally gated by :class:`DFCAttention`.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        ratio (int): Total maps per intrinsic map. Default: 2.
        cheap_kernel_size (int): Kernel of the cheap depthwise conv. Default: 3.
        dilation (int): Dilation of the cheap depthwise conv.
        act_cfg (dict, optional): Activation after both convs; None for none
            (the projecting ghost module of a bottleneck has none).
        norm_cfg (dict): Normalisation after both convs.
        dfc_cfg (dict, optional): Keyword arguments of :class:`DFCAttention`
            (without the channel counts); None builds the module without DFC.
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: int = 2,
                 cheap_kernel_size: int = 3, dilation: int = 1,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 norm_cfg: dict = dict(type='BN'),
                 dfc_cfg: Optional[dict] = None, init_cfg=None):
        super().__init__(init_cfg)
        self.out_channels = out_channels
        intrinsic = math.ceil(out_channels / ratio)
        self.primary_conv = ConvModule(in_channels, intrinsic, 1,
                                       norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.cheap_operation = ConvModule(
            intrinsic, intrinsic * (ratio - 1), cheap_kernel_size,
            padding=cheap_kernel_size // 2 * dilation, dilation=dilation,
            groups=intrinsic, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.dfc = (DFCAttention(in_channels, out_channels, norm_cfg=norm_cfg,
                                 **dfc_cfg) if dfc_cfg is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary_conv(x)
        out = torch.cat([intrinsic, self.cheap_operation(intrinsic)], dim=1)
        if out.shape[1] != self.out_channels:  # odd out_channels: drop the extra map
            out = out[:, :self.out_channels]
        if self.dfc is not None:
            # Gate at the pooled resolution; the nearest resize is a broadcast.
            out = multiply_by_gate(out, self.dfc(x))
        return out

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorms into the primary and cheap convs (and the DFC's)."""
        self.primary_conv = fuse_conv_module(self.primary_conv)
        self.cheap_operation = fuse_conv_module(self.cheap_operation)
        if self.dfc is not None:
            self.dfc.switch_to_deploy()


class GhostBottleneck(BaseModule):
    """GhostNetV2 bottleneck (with DFC attention when ``dfc_cfg`` is given).

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Hidden (expanded) channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the depthwise convs of down-sampling blocks.
        stride (int): Stride of this block, 1 or 2. A block built with
            ``downsample=True`` and ``stride=1`` keeps its depthwise layers (so
            pretrained weights still fit) but no longer reduces resolution; used
            for dilated backbones.
        downsample (bool, optional): Whether the block has the depthwise k x k conv
            (and a conv shortcut) of a down-sampling block. Defaults to
            ``stride > 1``.
        se_ratio (float): Squeeze-excite ratio; 0 disables SE.
        dilation (int): Dilation of the spatial convs after the (former) stride.
        first_dilation (int, optional): Dilation of the spatial convs up to and
            including the stride (ghost1, DFC, depthwise and shortcut convs).
            Defaults to ``dilation``.
        dfc_cfg (dict, optional): DFC attention of ghost1; None disables it.
        norm_cfg (dict): Normalisation layers.
        act_cfg (dict): Activation of ghost1 and SE.
        with_cp (bool): Use gradient checkpointing (saves memory, costs time).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 kernel_size: int = 3, stride: int = 1,
                 downsample: Optional[bool] = None, se_ratio: float = 0.,
                 dilation: int = 1, first_dilation: Optional[int] = None,
                 dfc_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'), with_cp: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        downsample = stride > 1 if downsample is None else downsample
        first_dilation = dilation if first_dilation is None else first_dilation
        self.with_cp = with_cp
        pad = (kernel_size - 1) // 2 * first_dilation

        if dfc_cfg is not None:
            dfc_cfg = dict(dfc_cfg, dilation=first_dilation)
        self.ghost1 = GhostModule(in_channels, mid_channels, dilation=first_dilation,
                                  act_cfg=act_cfg, norm_cfg=norm_cfg, dfc_cfg=dfc_cfg)
        self.conv_dw = ConvModule(
            mid_channels, mid_channels, kernel_size, stride=stride, padding=pad,
            dilation=first_dilation, groups=mid_channels, norm_cfg=norm_cfg,
            act_cfg=None) if downsample else None
        self.se = SqueezeExcite(mid_channels, se_ratio, act_cfg=act_cfg) \
            if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid_channels, out_channels, dilation=dilation,
                                  act_cfg=None, norm_cfg=norm_cfg)
        if in_channels == out_channels and not downsample:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module('depthwise', ConvModule(
                in_channels, in_channels, kernel_size, stride=stride, padding=pad,
                dilation=first_dilation, groups=in_channels, norm_cfg=norm_cfg,
                act_cfg=None))
            self.shortcut.add_module('pointwise', ConvModule(
                in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)
        if self.conv_dw is not None:
            out = self.conv_dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.ghost2(out)
        shortcut = self.shortcut(x)
        if not torch.is_grad_enabled() and out.dtype == shortcut.dtype:
            return out.add_(shortcut)  # ``out`` is a fresh tensor: safe without autograd
        return out + shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def switch_to_deploy(self) -> None:
        """Fold every BatchNorm of the block into its conv; SE convs become Linear."""
        self.ghost1.switch_to_deploy()
        if self.conv_dw is not None:
            self.conv_dw = fuse_conv_module(self.conv_dw)
        if self.se is not None:
            self.se.switch_to_deploy()
        self.ghost2.switch_to_deploy()
        if isinstance(self.shortcut, nn.Sequential):
            for name, child in list(self.shortcut.named_children()):
                setattr(self.shortcut, name, fuse_conv_module(child))

