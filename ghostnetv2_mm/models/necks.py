"""The neck of the GhostNetV2 classifier."""
from typing import Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule
from mmengine.registry import MODELS


@MODELS.register_module()
class GhostNetV2ClsNeck(BaseModule):
    """Global average pool, then a 1x1 conv WITH bias and an activation.

    This is the part of the reference classifier between the backbone and the
    final linear layer (its ``global_pool``, ``conv_head`` and ``act2``). Its width,
    1280, is not scaled with the backbone width.

    Args:
        in_channels (int): Channels of the backbone's last output (960 for 1.0x).
        out_channels (int): Default: 1280.
        act_cfg (dict): Default: ReLU.
    """

    def __init__(self, in_channels: int = 960, out_channels: int = 1280,
                 act_cfg: dict = dict(type='ReLU'), init_cfg=None):
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'GhostNetV2ClsNeck: invalid {name}={value!r}; '
                                 'allowed: an int >= 1')
        self.in_channels = in_channels
        self.conv_head = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.act = build_activation_layer(act_cfg)

    def forward(self, inputs: Tuple[torch.Tensor, ...]) -> Tuple[torch.Tensor, ...]:
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'GhostNetV2ClsNeck: got {x.shape[1]} input channels but in_channels='
                f'{self.in_channels}; set in_channels to the backbone\'s last out_channels')
        x = self.act(self.conv_head(x.mean((2, 3), keepdim=True)))
        return (x.flatten(1),)
