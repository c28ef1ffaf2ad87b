"""FastConvModule: mmcv's ConvModule with a direct forward for conv -> norm -> act.

mmcv's ``ConvModule.forward`` walks its ``order`` tuple and re-checks padding and
efficient-eval options on every call. A GhostNetV2-1.0x forward makes 136 such calls,
most on small maps: at 224x224 on one CPU thread that bookkeeping measured ~0.9 ms of
a ~31.7 ms forward (40 interleaved A/B rounds). This subclass keeps mmcv's
constructor, submodule names and state dict (checkpoints, ``fuse_conv_module`` and
``isinstance`` checks see an mmcv ConvModule) and only shortens ``forward`` when the
module is a plain conv -> norm -> act; anything else goes through mmcv's own forward.
"""
import torch
from mmcv.cnn import ConvModule as _MMCVConvModule


class FastConvModule(_MMCVConvModule):

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain = (tuple(self.order) == ('conv', 'norm', 'act')
                       and not self.with_explicit_padding)

    def forward(self, x: torch.Tensor, activate: bool = True,
                norm: bool = True) -> torch.Tensor:
        if not self._plain or self.efficient_conv_bn_eval_forward is not None:
            return super().forward(x, activate, norm)
        x = self.conv(x)
        if norm and self.with_norm:
            x = self.norm(x)
        if activate and self.with_activation:
            x = self.activate(x)
        return x
