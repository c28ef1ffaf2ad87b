"""Deploy mode: exact re-parameterisation of GhostNetV2 for inference.

``GhostNetV2.switch_to_deploy()`` (mmpretrain's convention, as in its MobileOne and
RepVGG) rewrites a trained backbone in place into an inference-only network that
computes the same function (up to float rounding, < 1e-4) with fewer and cheaper ops:

* every ``ConvModule`` (conv -> BatchNorm -> activation) becomes one
  :class:`DeployConv2d`: the BatchNorm is folded into the convolution's weight and
  bias (``w' = w * g / sqrt(v + eps)``, ``b' = beta + (b - m) * g / sqrt(v + eps)``)
  and a ReLU runs in place on the conv output;
* the squeeze-excite 1x1 convs, which act on a 1x1 map, become ``nn.Linear`` on the
  pooled vector (a GEMV instead of a convolution call);
* the DFC attention keeps its order pool -> 1x1 conv: the 2x2 average pool and the
  1x1 conv commute exactly (both are linear and the pool's weights sum to 1), and
  pooling first is 4x cheaper. Its horizontal (1, k) and vertical (k, 1) depthwise
  convs are NOT merged into one k x k depthwise conv: with zero padding the
  horizontal conv's (folded BN) bias reaches the vertical conv's output only through
  the taps that fall inside the map, so the merged conv would need a border-dependent
  bias; the separable pair is also cheaper (2k vs k^2 MACs per pixel).

What the training-mode model also does (blocks.py), because it is exact: on
channels-last maps the nearest 2x up-sampling of the DFC gate is a broadcast multiply
on a (h, 2, w, 2) view instead of ``F.interpolate`` (odd sizes and NCHW maps keep
``F.interpolate``), the ghost-module slice is skipped when no channel is dropped, and
without autograd the gate product and the residual add run in place.

Deploy mode is for inference: the BatchNorm statistics are frozen into the weights,
so it cannot be trained further (``train()`` still works but there is no BN left to
update). The deploy network also converts its input to ``channels_last`` (the fastest
layout on CPU, see docs/benchmarks.md), so its outputs are channels-last tensors;
their values and shapes are those of the training-mode network. Pass
``channels_last=False`` to ``switch_to_deploy`` to keep the input's layout.

Loading fused weights: build the backbone with ``deploy=True`` (it is built directly
in the fused structure) and load a checkpoint written by
``tools/deployment/fuse_checkpoint.py``; an unfused checkpoint (training layout,
official or timm weights) given as ``init_cfg=dict(type='Pretrained', ...)`` to a
``deploy=True`` backbone is loaded into a training-layout twin and fused on the fly.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: Optional[_BatchNorm]
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Weight and bias of ``conv`` followed by ``bn`` (in eval mode), as one conv."""
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else None
    if bn is None:
        return weight.clone(), None if bias is None else bias.clone()
    if not isinstance(bn, _BatchNorm) or not bn.track_running_stats \
            or bn.running_mean is None:
        raise NotImplementedError(
            f'switch_to_deploy folds BatchNorm with running statistics into the conv '
            f'before it; {type(bn).__name__} cannot be folded (norm_cfg must be BN or '
            'SyncBN for deploy mode)')
    # Fold in float64, then cast back: the fused weights are then as close to the
    # exact product as the parameter dtype allows.
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    fused_w = weight.double() * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    conv_b = bias.double() if bias is not None else torch.zeros_like(std)
    fused_b = beta + (conv_b - bn.running_mean.double()) * scale
    return fused_w.to(weight.dtype), fused_b.to(weight.dtype)


class DeployConv2d(nn.Conv2d):
    """A convolution with its BatchNorm folded in, then (optionally) an activation.

    ReLU runs in place on the conv output; any other activation is kept as the
    ``act`` submodule.
    """

    def __init__(self, *args, relu: bool = False, act: Optional[nn.Module] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = relu
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._conv_forward(x, self.weight, self.bias)
        if self.relu:
            return out.relu_()
        if self.act is not None:
            return self.act(out)
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + (', relu=True' if self.relu else '')


def _split_activation(module: ConvModule):
    act = module.activate if module.with_activation else None
    if isinstance(act, nn.ReLU):
        return True, None
    return False, act


def fuse_conv_module(module: ConvModule) -> DeployConv2d:
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
    relu, act = _split_activation(module)
    fused = DeployConv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                         stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                         groups=conv.groups, bias=bias is not None, relu=relu, act=act,
                         device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(weight)
        if bias is not None:
            fused.bias.copy_(bias)
    return fused


def conv_module_to_linear(module: ConvModule) -> nn.Module:
    """A 1x1 ``ConvModule`` (no norm) applied to pooled (N, C) vectors, as Linear(+act).

    Used for squeeze-excite, whose convs see a 1x1 map.
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
    relu, act = _split_activation(module)
    if relu:
        return nn.Sequential(linear, nn.ReLU(inplace=True))
    if act is not None:
        return nn.Sequential(linear, act)
    return linear


def multiply_by_gate(out: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``out * nearest_resize(gate, out.shape[-2:])`` without materialising the resize.

    When ``out`` is channels-last and exactly twice the gate's size in both directions,
    nearest resizing maps output pixel i to gate pixel i // 2 (PyTorch computes the
    source index as floor(i * 0.5), exact in binary), so the product is a broadcast over
    a (h, 2, w, 2) view: bit-identical to ``F.interpolate`` and no copy. Other cases
    (NCHW maps, odd maps, the 1-pixel case) use ``F.interpolate``. Without autograd the
    product is written into ``out`` in place.
    """
    gate = gate.to(out.dtype)
    n, c, height, width = out.shape
    gh, gw = gate.shape[-2:]
    # (Tracing/export first: comparing symbolic sizes would add shape guards.)
    # Only for channels-last maps: there the innermost dim of the 6-D view is the
    # contiguous channel dim and the product vectorises; on an NCHW map the innermost
    # dim would be the 2-long repeat, which is slower than F.interpolate's kernel.
    if not torch.jit.is_tracing() and not _is_exporting() \
            and height == 2 * gh and width == 2 * gw and c > 1 \
            and out.is_contiguous(memory_format=torch.channels_last):
        view = out.view(n, c, gh, 2, gw, 2)
        gate = gate.view(n, c, gh, 1, gw, 1)
        if torch.is_grad_enabled():
            return (view * gate).reshape(n, c, height, width)
        view.mul_(gate)
        return out
    gate = F.interpolate(gate, size=(height, width), mode='nearest')
    if torch.is_grad_enabled():
        return out * gate
    return out.mul_(gate)


def _is_exporting() -> bool:
    """True under torch.onnx / torch.export tracing, where the F.interpolate form (which
    exports to a Resize node and keeps H, W dynamic) is used instead of the view trick."""
    compiler = getattr(torch, 'compiler', None)
    if compiler is not None and hasattr(compiler, 'is_exporting') and compiler.is_exporting():
        return True
    onnx = getattr(torch, 'onnx', None)
    return bool(onnx is not None and onnx.is_in_onnx_export())


def count_batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, _BatchNorm) for m in module.modules())
