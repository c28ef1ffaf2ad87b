"""The classification head of GhostNetV2 for mmpretrain.

This module imports mmpretrain, so it is not imported by ``import ghostnetv2_mm``
(which must load in detection-only or segmentation-only environments). Classification
configs list it in ``custom_imports``: ``imports=['ghostnetv2_mm',
'ghostnetv2_mm.models.cls_head']``.
"""
from typing import Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class GhostNetV2ClsHead(ClsHead):
    """Dropout then a linear classifier: the reference's ``classifier``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the neck output. Default: 1280.
        dropout (float): Dropout probability before the linear layer. Default: 0.2.
        **kwargs: Passed to mmpretrain's ``ClsHead`` (loss, topk, cal_acc, init_cfg).
    """

    def __init__(self, num_classes: int, in_channels: int = 1280, dropout: float = 0.2,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f'GhostNetV2ClsHead: invalid num_classes={num_classes!r}; '
                             'allowed: an int >= 1')
        if not 0 <= dropout < 1:
            raise ValueError(f'GhostNetV2ClsHead: invalid dropout={dropout!r}; '
                             'allowed: a probability in [0, 1)')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        return feats[-1]

    def forward(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self.fc(self.dropout(self.pre_logits(feats)))
