"""Deploy mode: the exact re-parameterisations that turn a trained GhostNet-family
backbone into an inference-only network.

``switch_to_deploy()`` (mmpretrain's convention, as in its MobileOne and RepVGG)
rewrites a trained backbone in place into a network that computes the same function
(up to float rounding, < 1e-4) with fewer and cheaper ops; ``deploy=True`` builds
that network directly. This module holds the arithmetic; the blocks (``blocks.py``)
decide what to fold and run the deploy-mode forward.

* every conv -> BatchNorm -> activation becomes one :class:`DeployConv2d`: the
  BatchNorm is folded into the convolution's weight and bias
  (``w' = w * g / sqrt(v + eps)``, ``b' = beta + (b - m) * g / sqrt(v + eps)``)
  and a ReLU runs in place on the conv output;
* GhostNetV3's parallel branches (several k x k conv + BN, a 1 x 1 conv + BN "scale"
  branch, a BN-only identity branch) are summed into one k x k kernel and bias
  (RepVGG / MobileOne style, :func:`fold_parallel_branches`); the deployed V3 is
  then the same graph as a deployed V2;
* the squeeze-excite 1x1 convs, which act on a 1x1 map, become ``nn.Linear`` on the
  pooled vector (a GEMV instead of a convolution call); the ONNX export writes them
  back as 1x1 convs on the (N, C, 1, 1) mean (``blocks.SqueezeExcite``), which
  onnxruntime keeps in its blocked layout, where a Gemm needs Flatten / Reshape;
* the DFC attention keeps its order pool -> 1x1 conv: the 2x2 average pool and the
  1x1 conv commute exactly (both are linear and the pool's weights sum to 1), and
  pooling first is 4x cheaper. Its horizontal (1, k) and vertical (k, 1) depthwise
  convs are NOT merged into one k x k depthwise conv: with zero padding the
  horizontal conv's (folded BN) bias reaches the vertical conv's output only through
  the taps that fall inside the map, so the merged conv would need a border-dependent
  bias; the separable pair is also cheaper (2k vs k^2 MACs per pixel).

Deploy mode is for inference: the BatchNorm statistics are frozen into the weights,
so it cannot be trained further (``train()`` still works but there is no BN left to
update). Its forward takes the inference-only fast paths (see ``blocks.py``):
channels-last input (the fastest layout on CPU, see docs/benchmarks.md; pass
``channels_last=False`` to ``switch_to_deploy`` to keep the input's layout), the DFC
gate applied as a broadcast multiply, and in-place products and residual adds when
autograd is off. Outputs have the values and shapes of the training-layout network.
"""
from typing import Iterable, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer
from torch.nn.modules.batchnorm import _BatchNorm


def check_foldable(bn: nn.Module) -> None:
    """Raise NotImplementedError unless ``bn`` is a BatchNorm with running statistics."""
    if not isinstance(bn, _BatchNorm) or not bn.track_running_stats \
            or bn.running_mean is None:
        raise NotImplementedError(
            f'deploy mode folds BatchNorm with running statistics into the conv '
            f'before it; {type(bn).__name__} cannot be folded (norm_cfg must be BN or '
            'SyncBN for deploy mode)')


def _fold_float64(weight: torch.Tensor, bias: Optional[torch.Tensor],
                  bn: Optional[_BatchNorm]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``conv(weight, bias)`` followed by ``bn``, in float64."""
    weight = weight.detach().double()
    out_channels = weight.shape[0]
    bias = bias.detach().double() if bias is not None else \
        torch.zeros(out_channels, dtype=torch.float64, device=weight.device)
    if bn is None:
        return weight, bias
    check_foldable(bn)
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    return (weight * scale.reshape(-1, *([1] * (weight.dim() - 1))),
            beta + (bias - bn.running_mean.double()) * scale)


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: Optional[_BatchNorm]
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Weight and bias of ``conv`` followed by ``bn`` (in eval mode), as one conv.

    Folded in float64, then cast back: the fused weights are as close to the exact
    product as the parameter dtype allows.
    """
    if bn is None:
        return conv.weight.detach().clone(), \
            None if conv.bias is None else conv.bias.detach().clone()
    weight, bias = _fold_float64(conv.weight, conv.bias, bn)
    return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


@torch.no_grad()
def fold_parallel_branches(branches: Iterable[ConvModule], scale: Optional[ConvModule],
                           skip: Optional[_BatchNorm]) -> Tuple[torch.Tensor, torch.Tensor]:
    """One k x k kernel and bias equal to the sum of GhostNetV3's parallel branches.

    ``branches`` are k x k conv + BN modules, ``scale`` a 1 x 1 conv + BN with the same
    stride and groups (its kernel sits at the centre tap of the k x k one: with "same"
    padding both read the same input pixel), ``skip`` a BN applied to the input itself
    (an identity kernel: a 1 at the centre tap of each channel's own input). All
    branches see the same input and are summed, so their folded kernels and biases
    add. Returned in the dtype of the branch weights.
    """
    branches = list(branches)
    first = branches[0].conv.weight
    out_channels, per_group, kh, kw = first.shape
    weight = torch.zeros(out_channels, per_group, kh, kw, dtype=torch.float64,
                         device=first.device)
    bias = torch.zeros(out_channels, dtype=torch.float64, device=first.device)
    for branch in branches:
        w, b = _fold_float64(branch.conv.weight, branch.conv.bias,
                             branch.norm if branch.with_norm else None)
        weight += w
        bias += b
    if scale is not None:
        w, b = _fold_float64(scale.conv.weight, scale.conv.bias,
                             scale.norm if scale.with_norm else None)
        weight[:, :, kh // 2, kw // 2] += w[:, :, 0, 0]
        bias += b
    if skip is not None:
        check_foldable(skip)
        identity = torch.zeros_like(weight)
        channels = torch.arange(out_channels, device=first.device)
        # output channel c of group g reads input c; inside its group that is c % per_group
        identity[channels, channels % per_group, kh // 2, kw // 2] = 1.0
        w, b = _fold_float64(identity, None, skip)
        weight += w
        bias += b
    return weight.to(first.dtype), bias.to(first.dtype)


class DeployConv2d(nn.Conv2d):
    """A convolution with its BatchNorm folded in, then (optionally) an activation.

    ReLU runs in place on the conv output (a fresh tensor, so this is safe with
    autograd too); any other activation is kept as the ``act`` submodule.
    """

    def __init__(self, *args, relu: bool = False, act: Optional[nn.Module] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = relu
        self.act = act

    @classmethod
    def build(cls, in_channels: int, out_channels: int, kernel_size, stride=1,
              padding=0, dilation=1, groups: int = 1,
              act_cfg: Optional[dict] = None, **kwargs) -> 'DeployConv2d':
        """The deploy-mode counterpart of ``ConvModule(..., act_cfg=act_cfg)`` with a
        norm: a biased conv, then the activation."""
        act = build_activation_layer(act_cfg) if act_cfg is not None else None
        relu = isinstance(act, nn.ReLU)
        return cls(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, bias=True, relu=relu,
                   act=None if relu else act, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._conv_forward(x, self.weight, self.bias)
        if self.relu:
            return out.relu_()
        if self.act is not None:
            return self.act(out)
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + (', relu=True' if self.relu else '')


def fuse_conv_module(module: nn.Module) -> DeployConv2d:
    """One :class:`DeployConv2d` computing what an eval-mode ``ConvModule`` does."""
    if isinstance(module, DeployConv2d):
        return module
    if not isinstance(module, ConvModule):
        raise TypeError(f'fuse_conv_module expects an mmcv ConvModule, got {type(module)}')
    conv = module.conv
    if type(conv) is not nn.Conv2d or module.with_explicit_padding \
            or conv.padding_mode != 'zeros':
        raise NotImplementedError(f'cannot fuse {type(conv).__name__} with padding_mode='
                                  f'{conv.padding_mode!r}: only a plain zero-padded Conv2d')
    if module.order not in (('conv', 'norm', 'act'),) and module.with_norm:
        raise NotImplementedError(f'cannot fold a norm placed before the conv '
                                  f'(order={module.order})')
    weight, bias = fuse_conv_bn(conv, module.norm if module.with_norm else None)
    act = module.activate if module.with_activation else None
    relu = isinstance(act, nn.ReLU)
    fused = DeployConv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                         stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                         groups=conv.groups, bias=bias is not None, relu=relu,
                         act=None if relu else act,
                         device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight)
        if bias is not None:
            fused.bias.copy_(bias)
    return fused


def conv_module_to_linear(module: ConvModule) -> nn.Linear:
    """The conv of a 1x1 ``ConvModule`` (no norm) as a Linear on pooled (N, C) vectors.

    Used for squeeze-excite, whose convs see a 1x1 map; the caller keeps the
    module's activation.
    """
    conv = module.conv
    if conv.kernel_size != (1, 1) or conv.groups != 1 or module.with_norm:
        raise NotImplementedError('only an un-normalised, ungrouped 1x1 conv maps to Linear')
    linear = nn.Linear(conv.in_channels, conv.out_channels, bias=conv.bias is not None,
                       device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(conv.out_channels, conv.in_channels))
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    return linear
