"""The building blocks of the GhostNet family, one class per box of the papers' figures.

    GhostBottleneck
      ghost1: GhostModule (expand, ReLU) [x DFCAttention gate: V2, V3]
      conv_dw: depthwise k x k, stride 2 (down-sampling blocks only)
      se:      SqueezeExcite (some blocks)
      ghost2:  GhostModule (project, no activation)
      + shortcut (identity, or depthwise k x k + pointwise 1 x 1)

GhostNet (V1) is this without DFC attention; GhostNetV2 adds it; GhostNetV3 replaces
each conv of the ghost modules and the stride-2 depthwise conv by a
:class:`RepConvModule` (``num_branches > 0``) during training.

Every block is built in one of two layouts. The training layout (``deploy=False``)
is plain: ``ConvModule`` (conv, norm, act) units and a forward without shortcuts.
The deploy layout (``deploy=True``, or ``switch_to_deploy()`` on a trained block)
has every norm folded into its conv (:class:`~.deploy.DeployConv2d`) and takes the
inference-only fast paths: the DFC gate applied by :func:`multiply_by_gate`, and
in-place products and residual adds when autograd is off.

Module names are this project's (OpenMMLab style, ``ConvModule`` with ``conv``/``bn``);
``ghostnetv2_mm.checkpoint`` maps the reference implementations' names onto them.
"""
import math
import warnings
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule

from .conv_module import FastConvModule
from .deploy import (DeployConv2d, conv_module_to_linear, fold_parallel_branches,
                     fuse_conv_module)
from .utils import make_divisible


def _is_onnx_exporting() -> bool:
    """True under ``torch.onnx.export(dynamo=False)`` (TorchScript tracing), where the
    DFC pooling and the gate resize are written as single ONNX ops by the
    ``symbolic`` of :class:`_OnnxGatePool` and :class:`_OnnxResizeLike`, and the
    deploy-mode SE as 1x1 convs (no Flatten / Gemm; see :class:`SqueezeExcite`).
    (torch.export takes the eager ops, so that its programs equal eager bit for bit.)"""
    onnx = getattr(torch, 'onnx', None)
    return bool(onnx is not None and onnx.is_in_onnx_export())


def _is_capturing(x) -> bool:
    """True while a graph is captured from ``x``'s computation by ``torch.fx``
    (``x`` is then a ``Proxy``: its sizes, dtype and layout are unknown, and a Python
    branch on them is an error) or by ``torch.compile`` / ``torch.export`` (sizes may
    be symbolic: a branch on them adds a shape guard). The blocks then skip their eager
    fast paths (the view trick, in-place products), which only exist for speed and
    give the same values as the plain ops they replace."""
    return isinstance(x, torch.fx.Proxy) or torch.compiler.is_compiling()


# A torch.fx leaf: symbolic tracing records a call to this function instead of
# tracing into it, so a traced graph picks the kernel from the sizes it is run at
# (every size, 1 px included), as the eager network does. Under torch.export the
# sides are symbolic: ``min`` adds the guard side >= 2 (input sides >= 33).
@torch.fx.wrap
def _eager_gate_pool(x: torch.Tensor) -> torch.Tensor:
    kernel = (min(2, x.shape[-2]), min(2, x.shape[-1]))
    return F.avg_pool2d(x, kernel_size=kernel, stride=kernel)


class _OnnxGatePool(torch.autograd.Function):
    """The DFC pooling as ONE ONNX ``AveragePool`` (kernel 2, stride 2, no padding).

    ONNX sizes a pool's output as ``floor((side - 2) / 2 + 1)``: ``side // 2`` for
    sides >= 2 (the odd last row/column is left out, as PyTorch's floor mode does)
    and 1 for a 1-pixel side, whose window then averages the one pixel there is
    (``count_include_pad=0``). That is the reference pooling with a kernel of
    ``min(2, side)`` at every size, with no shape arithmetic in the graph (checked
    against onnxruntime by tests/test_onnx_export.py at every side from 1 to 9).
    """

    @staticmethod
    def forward(ctx, x):
        # Under tracing the sizes are 0-d tensors; reading them here is harmless
        # (the symbolic, not this forward, goes into the graph).
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            kernel = (min(2, int(x.shape[-2])), min(2, int(x.shape[-1])))
        return F.avg_pool2d(x, kernel_size=kernel, stride=kernel)

    @staticmethod
    def symbolic(g, x):
        return g.op('AveragePool', x, kernel_shape_i=[2, 2], strides_i=[2, 2])


class _OnnxResizeLike(torch.autograd.Function):
    """``F.interpolate(gate, size=like.shape[-2:], mode='nearest')`` as ONE ONNX
    ``Resize`` whose ``sizes`` input is ``Shape(like)``: ``like`` (the ghost output)
    has the gate's batch and channels, so its whole shape is the target size and no
    Gather / Slice / Concat of sizes is needed. Nearest, asymmetric, floor is
    PyTorch's ``'nearest'`` (source pixel ``floor(i * in / out)``)."""

    @staticmethod
    def forward(ctx, gate, like):
        return F.interpolate(gate, size=like.shape[-2:], mode='nearest')

    @staticmethod
    def symbolic(g, gate, like):
        empty = g.op('Constant', value_t=torch.tensor([], dtype=torch.float32))
        return g.op('Resize', gate, empty, empty, g.op('Shape', like),
                    mode_s='nearest', coordinate_transformation_mode_s='asymmetric',
                    nearest_mode_s='floor')


def multiply_by_gate(out: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``out * nearest_resize(gate, out.shape[-2:])`` without materialising the resize.

    The deploy-mode DFC product. When ``out`` is channels-last and exactly twice the
    gate's size in both directions, nearest resizing maps output pixel i to gate pixel
    i // 2 (PyTorch computes the source index as floor(i * 0.5), exact in binary), so
    the product is a broadcast over a (h, 2, w, 2) view: bit-identical to
    ``F.interpolate`` and no copy. Other cases (NCHW maps, odd maps, the 1-pixel case)
    use ``F.interpolate``. Without autograd the product is written into ``out`` in
    place. The gate is first rounded to ``out``'s dtype.
    """
    if _is_capturing(out):
        # Graph capture: the plain ops, no test of sizes, dtypes or layout (values
        # are those of the fast path, which is bit-identical to them).
        gate = F.interpolate(gate.to(out.dtype), size=(out.shape[-2], out.shape[-1]),
                             mode='nearest')
        return out * gate
    if gate.dtype != out.dtype:
        gate = gate.to(out.dtype)
    n, c, height, width = out.shape
    gh, gw = gate.shape[-2:]
    # (Tracing/export first: comparing symbolic sizes would add shape guards.)
    # Only for channels-last maps: there the innermost dim of the 6-D view is the
    # contiguous channel dim and the product vectorises; on an NCHW map the innermost
    # dim would be the 2-long repeat, which is slower than F.interpolate's kernel.
    if not torch.jit.is_tracing() and not _is_onnx_exporting() \
            and height == 2 * gh and width == 2 * gw and c > 1 \
            and out.is_contiguous(memory_format=torch.channels_last):
        view = out.view(n, c, gh, 2, gw, 2)
        gate = gate.view(n, c, gh, 1, gw, 1)
        if torch.is_grad_enabled():
            return (view * gate).reshape(n, c, height, width)
        view.mul_(gate)
        return out
    if _is_onnx_exporting():
        gate = _OnnxResizeLike.apply(gate, out)
    else:
        gate = F.interpolate(gate, size=(height, width), mode='nearest')
    if torch.is_grad_enabled():
        return out * gate
    return out.mul_(gate)


class RepConvModule(BaseModule):
    """GhostNetV3's training-time re-parameterisable conv: ``num_branches`` parallel
    k x k conv + norm branches, a 1 x 1 conv + norm "scale" branch and a norm-only
    "skip" branch, summed, then the activation.

    All branches are linear in the input, so after training they fold into one
    k x k conv with bias (:meth:`reparameterize`, RepVGG / MobileOne style).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the parallel convs ("same" padding).
        stride (int): Stride of every branch. Default: 1.
        dilation (int): Dilation of the k x k convs. Default: 1.
        groups (int): Groups of every conv. Default: 1.
        num_branches (int): Number of parallel k x k conv + norm branches. Default: 3.
        with_scale (bool): Add the 1 x 1 conv + norm branch. Default: True.
        with_skip (bool): Add the norm-only identity branch; needs
            ``in_channels == out_channels`` and ``stride == 1``. Default: False.
        norm_cfg (dict): Norm of every branch. Default: ``dict(type='BN')``.
        act_cfg (dict, optional): Activation after the sum; None for none.
            Default: ``dict(type='ReLU')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, dilation: int = 1, groups: int = 1,
                 num_branches: int = 3, with_scale: bool = True, with_skip: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'), init_cfg=None):
        super().__init__(init_cfg)
        if with_skip and (in_channels != out_channels or stride != 1):
            raise ValueError('RepConvModule: with_skip needs in_channels == out_channels '
                             f'and stride 1 (got {in_channels}->{out_channels}, '
                             f'stride {stride})')
        self.act_cfg = act_cfg
        conv_args = dict(stride=stride, groups=groups, bias=False, norm_cfg=norm_cfg,
                         act_cfg=None)
        self.branches = nn.ModuleList(
            FastConvModule(in_channels, out_channels, kernel_size,
                       padding=kernel_size // 2 * dilation, dilation=dilation, **conv_args)
            for _ in range(num_branches))
        self.scale = FastConvModule(in_channels, out_channels, 1, **conv_args) \
            if with_scale and kernel_size > 1 else None
        self.skip = build_norm_layer(norm_cfg, in_channels)[1] if with_skip else None
        self.activate = build_activation_layer(act_cfg) if act_cfg is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = sum(branch(x) for branch in self.branches)
        if self.scale is not None:
            out = out + self.scale(x)
        if self.skip is not None:
            out = out + self.skip(x)
        return self.activate(out) if self.activate is not None else out

    def reparameterize(self) -> FastConvModule:
        """One ``ConvModule`` (conv with bias, no norm, same activation) computing what
        this module computes in eval mode."""
        conv = self.branches[0].conv
        weight, bias = fold_parallel_branches(self.branches, self.scale, self.skip)
        folded = FastConvModule(conv.in_channels, conv.out_channels, conv.kernel_size,
                            stride=conv.stride, padding=conv.padding,
                            dilation=conv.dilation, groups=conv.groups, bias=True,
                            norm_cfg=None, act_cfg=self.act_cfg).to(weight.device,
                                                                    weight.dtype)
        if self.activate is not None:
            folded.activate = self.activate
        with torch.no_grad():
            folded.conv.weight.copy_(weight)
            folded.conv.bias.copy_(bias)
        return folded


def conv_unit(in_channels: int, out_channels: int, kernel_size, *, stride=1,
              padding=0, dilation=1, groups: int = 1, norm_cfg: dict,
              act_cfg: Optional[dict], num_branches: int = 0, with_scale: bool = False,
              with_skip: bool = False, deploy: bool = False) -> nn.Module:
    """The conv -> norm -> act unit of every block, in the requested layout.

    ``deploy``: a :class:`~.deploy.DeployConv2d` (norm folded into a biased conv);
    else ``num_branches > 0``: a :class:`RepConvModule` (GhostNetV3); else a
    ``ConvModule``.
    """
    if deploy:
        return DeployConv2d.build(in_channels, out_channels, kernel_size, stride=stride,
                                  padding=padding, dilation=dilation, groups=groups,
                                  act_cfg=act_cfg)
    if num_branches > 0:
        return RepConvModule(in_channels, out_channels, kernel_size, stride=stride,
                             dilation=dilation, groups=groups, num_branches=num_branches,
                             with_scale=with_scale, with_skip=with_skip,
                             norm_cfg=norm_cfg, act_cfg=act_cfg)
    return FastConvModule(in_channels, out_channels, kernel_size, stride=stride,
                      padding=padding, dilation=dilation, groups=groups,
                      norm_cfg=norm_cfg, act_cfg=act_cfg)


def reparameterize_unit(module: nn.Module) -> nn.Module:
    """Fold a :class:`RepConvModule` into a ``ConvModule``; other units unchanged."""
    return module.reparameterize() if isinstance(module, RepConvModule) else module


def deploy_unit(module: nn.Module) -> DeployConv2d:
    """The deploy-layout :class:`~.deploy.DeployConv2d` of any unit of
    :func:`conv_unit`."""
    return fuse_conv_module(reparameterize_unit(module))


def _linear_as_conv(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``linear`` applied to the channels of a (N, C, 1, 1) map, as a 1x1 conv."""
    weight = linear.weight.reshape(*linear.weight.shape, 1, 1)
    return F.conv2d(x, weight, linear.bias)


class SqueezeExcite(BaseModule):
    """Channel attention: global pool, bottleneck of 1x1 convs, hard-sigmoid gate.

    Args:
        channels (int): Input and output channels.
        se_ratio (float): Reduced width as a fraction of ``channels``; rounded with
            :func:`make_divisible` to a multiple of ``divisor``. Default: 0.25.
        divisor (int): Channel rounding. Default: 4.
        act_cfg (dict): Activation between the two 1x1 convs. Default:
            ``dict(type='ReLU')``, what every GhostNet reference uses.
        deploy (bool): Build the deploy layout: the 1x1 convs, which see a 1x1 map,
            as Linear layers on the pooled vector. Default: False.
    """

    def __init__(self, channels: int, se_ratio: float = 0.25, divisor: int = 4,
                 act_cfg: dict = dict(type='ReLU'), deploy: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg)
        reduced = make_divisible(channels * se_ratio, divisor)
        self.deploy = deploy
        if deploy:
            self.conv_reduce = nn.Linear(channels, reduced)
            self.act = build_activation_layer(act_cfg)
            self.conv_expand = nn.Linear(reduced, channels)
        else:
            self.conv_reduce = FastConvModule(channels, reduced, 1, bias=True,
                                          norm_cfg=None, act_cfg=act_cfg)
            self.conv_expand = FastConvModule(reduced, channels, 1, bias=True,
                                          norm_cfg=None, act_cfg=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self._forward_deploy(x)
        gate = self.conv_expand(self.conv_reduce(x.mean((2, 3), keepdim=True)))
        # The reference gate is relu6(x + 3) / 6, which is exactly torch's hardsigmoid.
        return x * F.hardsigmoid(gate)

    def _forward_deploy(self, x: torch.Tensor) -> torch.Tensor:
        if _is_onnx_exporting():
            # The ONNX form: the Linear layers as 1x1 convs on the (N, C, 1, 1) mean,
            # so the graph needs no Flatten / Gemm / Reshape (which onnxruntime runs
            # outside its blocked layout) and reads no sizes.
            pooled = x.mean((2, 3), keepdim=True)
            hidden = self.act(_linear_as_conv(pooled, self.conv_reduce))
            gate = F.hardsigmoid(_linear_as_conv(hidden, self.conv_expand))
        else:
            hidden = self.act(self.conv_reduce(x.mean((2, 3))))
            gate = F.hardsigmoid(self.conv_expand(hidden), inplace=True)[:, :, None, None]
        if torch.is_grad_enabled() or _is_capturing(x):
            return x * gate
        return x.mul_(gate)  # ``x`` is the block's own intermediate: safe without autograd

    def switch_to_deploy(self) -> None:
        """Replace the two 1x1 convs (which see a 1x1 map) by Linear layers."""
        if self.deploy:
            return
        self.act = self.conv_reduce.activate
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

    The sigmoid is computed in float32 whatever the input dtype, and the gate is
    returned in float32: under float16/bfloat16 autocast a large branch output
    still gives a gate strictly inside (0, 1) where float32 would. The ghost module
    then rounds the gate to the features' dtype for the product (once, like any op
    under autocast), so the gated features carry that dtype's rounding, no more.

    Args:
        in_channels (int): Channels of the block input.
        out_channels (int): Channels of the gated features (the gate's channels).
        kernel_size (int): Length of the decoupled horizontal/vertical kernels.
            Default: 5 (the paper's).
        dilation (int): Dilation of the decoupled convs, for dilated backbones.
            Default: 1.
        norm_cfg (dict): Normalisation after each conv. Default: ``dict(type='BN')``.
        deploy (bool): Build the deploy layout (norms folded). Default: False.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilation: int = 1, norm_cfg: dict = dict(type='BN'),
                 deploy: bool = False, init_cfg=None):
        super().__init__(init_cfg)
        pad = kernel_size // 2 * dilation
        unit = dict(norm_cfg=norm_cfg, act_cfg=None, deploy=deploy)
        self.reduce = conv_unit(in_channels, out_channels, 1, **unit)
        self.horizontal = conv_unit(
            out_channels, out_channels, (1, kernel_size), padding=(0, pad),
            dilation=(1, dilation), groups=out_channels, **unit)
        self.vertical = conv_unit(
            out_channels, out_channels, (kernel_size, 1), padding=(pad, 0),
            dilation=(dilation, 1), groups=out_channels, **unit)

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        """2x2/stride-2 average pool (floor mode); a 1-pixel side stays 1 pixel.

        Eagerly the kernel is ``min(2, side)`` per side. A traced graph would freeze
        that kernel at the traced size. The ONNX export writes one ``AveragePool``
        whose ONNX semantics are this pooling at every size (:class:`_OnnxGatePool`).
        Other tracers (``torch.jit.trace``) crop each side to its largest even
        length (at least 1) and replicate a 1-pixel side to 2 before a fixed 2x2
        pool: the same values at every size (averaging a pixel with its copy gives
        the pixel, up to float rounding).
        """
        if _is_onnx_exporting():
            return _OnnxGatePool.apply(x)
        if not torch.jit.is_tracing():
            return _eager_gate_pool(x)
        # Under other tracing a size is a 0-d tensor: the arithmetic stays in the graph.
        height = torch.clamp(x.shape[-2] - x.shape[-2] % 2, min=1)
        width = torch.clamp(x.shape[-1] - x.shape[-1] % 2, min=1)
        x = F.pad(x[..., :height, :width], [0, width % 2, 0, height % 2],
                  mode='replicate')
        return F.avg_pool2d(x, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor,
                size: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """Return the gate for features of spatial ``size``, in float32.

        With ``size=None`` the gate is returned at the pooled resolution (what
        :func:`multiply_by_gate` takes in deploy mode).
        """
        attn = self.vertical(self.horizontal(self.reduce(self.downsample(x))))
        # (no cast when already float32: a traced graph would keep a no-op Cast node;
        # under torch.fx the dtype is unknown, and the cast is a no-op at run time)
        if isinstance(attn, torch.fx.Proxy) or attn.dtype != torch.float32:
            attn = attn.float()
        gate = torch.sigmoid(attn)
        if size is None:
            return gate
        return F.interpolate(gate, size=(size[0], size[1]), mode='nearest')

    def switch_to_deploy(self) -> None:
        """Fold the norms into the three convs (see ``deploy.py`` for why the
        two decoupled depthwise convs stay separate and pooling stays first)."""
        self.reduce = deploy_unit(self.reduce)
        self.horizontal = deploy_unit(self.horizontal)
        self.vertical = deploy_unit(self.vertical)


class GhostModule(BaseModule):
    """Ghost module: a few "intrinsic" maps from a 1x1 conv, the rest from a cheap
    depthwise conv on them, optionally gated by :class:`DFCAttention`.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        ratio (int): Total maps per intrinsic map. Default: 2.
        cheap_kernel_size (int): Kernel of the cheap depthwise conv. Default: 3.
        dilation (int): Dilation of the cheap depthwise conv. Default: 1.
        act_cfg (dict, optional): Activation after both convs; None for none
            (the projecting ghost module of a bottleneck has none).
            Default: ``dict(type='ReLU')``.
        norm_cfg (dict): Normalisation after both convs. Default: ``dict(type='BN')``.
        dfc_cfg (dict, optional): Keyword arguments of :class:`DFCAttention`
            (without the channel counts); None builds the module without DFC.
            Default: None.
        num_branches (int): 0 for plain convs (V1, V2); > 0 for GhostNetV3's
            :class:`RepConvModule` with that many parallel branches. Default: 0.
        deploy (bool): Build the deploy layout. Default: False.
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: int = 2,
                 cheap_kernel_size: int = 3, dilation: int = 1,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 norm_cfg: dict = dict(type='BN'), dfc_cfg: Optional[dict] = None,
                 num_branches: int = 0, deploy: bool = False, init_cfg=None):
        super().__init__(init_cfg)
        self.out_channels = out_channels
        self.deploy = deploy
        intrinsic = math.ceil(out_channels / ratio)
        cheap = intrinsic * (ratio - 1)
        # Known when built (a traced graph cannot test the concatenated width).
        self._trim = intrinsic + cheap != out_channels
        unit = dict(norm_cfg=norm_cfg, act_cfg=act_cfg, num_branches=num_branches,
                    deploy=deploy)
        # V3: the 1x1 primary conv has no scale branch (it is 1x1 already) and no
        # skip; the cheap conv has both when it maps its channels to themselves.
        self.primary_conv = conv_unit(in_channels, intrinsic, 1, **unit)
        self.cheap_operation = conv_unit(
            intrinsic, cheap, cheap_kernel_size,
            padding=cheap_kernel_size // 2 * dilation, dilation=dilation,
            groups=intrinsic, with_scale=True, with_skip=cheap == intrinsic, **unit)
        self.dfc = DFCAttention(in_channels, out_channels, norm_cfg=norm_cfg,
                                deploy=deploy, **dfc_cfg) if dfc_cfg is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary_conv(x)
        out = torch.cat([intrinsic, self.cheap_operation(intrinsic)], dim=1)
        if self._trim:  # odd out_channels: drop the extra map
            out = out[:, :self.out_channels]
        if self.dfc is None:
            return out
        if self.deploy:
            return multiply_by_gate(out, self.dfc(x))
        # (the sizes one by one: a traced graph can index a size, not unpack it)
        return out * self.dfc(x, (out.shape[-2], out.shape[-1])).to(out.dtype)

    def reparameterize(self) -> None:
        """Fold GhostNetV3's parallel branches into single convs (nothing else)."""
        self.primary_conv = reparameterize_unit(self.primary_conv)
        self.cheap_operation = reparameterize_unit(self.cheap_operation)

    def switch_to_deploy(self) -> None:
        """Fold every norm (and any parallel branches) into the convs."""
        self.primary_conv = deploy_unit(self.primary_conv)
        self.cheap_operation = deploy_unit(self.cheap_operation)
        if self.dfc is not None:
            self.dfc.switch_to_deploy()
        self.deploy = True


class GhostBottleneck(BaseModule):
    """Ghost bottleneck of GhostNet V1/V2/V3 (DFC attention when ``dfc_cfg`` is given,
    V3's parallel branches when ``num_branches > 0``).

    Args:
        in_channels (int): Input channels.
        mid_channels (int): Hidden (expanded) channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the depthwise convs of down-sampling blocks.
            Default: 3.
        stride (int): Stride of this block, 1 or 2. A block built with
            ``downsample=True`` and ``stride=1`` keeps its depthwise layers (so
            pretrained weights still fit) but no longer reduces resolution; used
            for dilated backbones. Default: 1.
        downsample (bool, optional): Whether the block has the depthwise k x k conv
            (and a conv shortcut) of a down-sampling block. Default: None, meaning
            ``stride > 1``.
        se_ratio (float): Squeeze-excite ratio; 0 disables SE. Default: 0.
        dilation (int): Dilation of the spatial convs after the (former) stride.
            Default: 1.
        first_dilation (int, optional): Dilation of the spatial convs up to and
            including the stride (ghost1, DFC, depthwise and shortcut convs).
            Default: None, meaning ``dilation``.
        dfc_cfg (dict, optional): DFC attention of ghost1; None disables it.
            Default: None.
        norm_cfg (dict): Normalisation layers. Default: ``dict(type='BN')``.
        act_cfg (dict): Activation of ghost1. Default: ``dict(type='ReLU')``.
        se_act_cfg (dict): Hidden activation of the squeeze-excite. Default:
            ``dict(type='ReLU')`` (fixed in every GhostNet reference).
        num_branches (int): GhostNetV3's parallel branches in the ghost modules and
            the depthwise conv; 0 for none. Default: 0.
        with_cp (bool): Use gradient checkpointing (saves memory, costs time).
            Default: False.
        deploy (bool): Build the deploy layout. Default: False.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 kernel_size: int = 3, stride: int = 1,
                 downsample: Optional[bool] = None, se_ratio: float = 0.,
                 dilation: int = 1, first_dilation: Optional[int] = None,
                 dfc_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 se_act_cfg: dict = dict(type='ReLU'), num_branches: int = 0,
                 with_cp: bool = False, deploy: bool = False, init_cfg=None):
        super().__init__(init_cfg)
        downsample = stride > 1 if downsample is None else downsample
        first_dilation = dilation if first_dilation is None else first_dilation
        self.with_cp = with_cp
        self.deploy = deploy
        pad = (kernel_size - 1) // 2 * first_dilation

        if dfc_cfg is not None:
            dfc_cfg = dict(dfc_cfg, dilation=first_dilation)
        ghost = dict(norm_cfg=norm_cfg, num_branches=num_branches, deploy=deploy)
        self.ghost1 = GhostModule(in_channels, mid_channels, dilation=first_dilation,
                                  act_cfg=act_cfg, dfc_cfg=dfc_cfg, **ghost)
        # V3: no skip branch here, whatever the stride (a dilated backbone runs this
        # conv at stride 1 and must still load the stride-2 weights).
        self.conv_dw = conv_unit(
            mid_channels, mid_channels, kernel_size, stride=stride, padding=pad,
            dilation=first_dilation, groups=mid_channels, norm_cfg=norm_cfg,
            act_cfg=None, num_branches=num_branches, with_scale=True,
            deploy=deploy) if downsample else None
        self.se = SqueezeExcite(mid_channels, se_ratio, act_cfg=se_act_cfg,
                                deploy=deploy) if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid_channels, out_channels, dilation=dilation,
                                  act_cfg=None, **ghost)
        if in_channels == out_channels and not downsample:
            self.shortcut = nn.Identity()
        else:
            unit = dict(norm_cfg=norm_cfg, act_cfg=None, deploy=deploy)
            self.shortcut = nn.Sequential()
            self.shortcut.add_module('depthwise', conv_unit(
                in_channels, in_channels, kernel_size, stride=stride, padding=pad,
                dilation=first_dilation, groups=in_channels, **unit))
            self.shortcut.add_module('pointwise', conv_unit(
                in_channels, out_channels, 1, **unit))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)
        if self.conv_dw is not None:
            out = self.conv_dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.ghost2(out)
        shortcut = self.shortcut(x)
        if self.deploy and not torch.is_grad_enabled() and not _is_capturing(out) \
                and out.dtype == shortcut.dtype:
            return out.add_(shortcut)  # ``out`` is a fresh tensor: safe without autograd
        return out + shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and not isinstance(x, torch.fx.Proxy) and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def reparameterize(self) -> None:
        """Fold GhostNetV3's parallel branches into single convs (what timm's
        ``reparameterize()`` does); the norms elsewhere stay."""
        self.ghost1.reparameterize()
        if self.conv_dw is not None:
            self.conv_dw = reparameterize_unit(self.conv_dw)
        self.ghost2.reparameterize()

    def switch_to_deploy(self) -> None:
        """Fold every norm (and any parallel branches) into its conv; SE convs become
        Linear."""
        self.ghost1.switch_to_deploy()
        if self.conv_dw is not None:
            self.conv_dw = deploy_unit(self.conv_dw)
        if self.se is not None:
            self.se.switch_to_deploy()
        self.ghost2.switch_to_deploy()
        if isinstance(self.shortcut, nn.Sequential):
            for name, child in list(self.shortcut.named_children()):
                setattr(self.shortcut, name, deploy_unit(child))
        self.deploy = True
