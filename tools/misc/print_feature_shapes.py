#!/usr/bin/env python
"""Build GhostNetV2 from an mmdet-style config dict and print its multi-scale features."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import ghostnetv2_mm  # noqa: E402,F401
from mmengine.registry import MODELS  # noqa: E402

for arch in ('1.0x', '1.3x', '1.6x'):
    backbone = MODELS.build(dict(type='GhostNetV2', arch=arch)).eval()
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 800, 1216))
    shapes = ', '.join(f'{tuple(f.shape[1:])}' for f in feats)
    print(f'GhostNetV2 {arch} on 1x3x800x1216 -> {shapes}')
