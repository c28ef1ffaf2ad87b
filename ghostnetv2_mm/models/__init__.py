# Importing registers GhostNetV2 and GhostNetV2ClsNeck in mmengine's root MODELS registry,
# from which mmdet, mmseg and mmpretrain resolve them. The mmpretrain head lives in
# cls_head.py, imported on demand (see its docstring).
from .backbone import ARCH_WIDTHS, BASE_STAGES, GhostNetV2
from .blocks import DFCAttention, GhostBottleneck, GhostModule, SqueezeExcite
from .necks import GhostNetV2ClsNeck
from .utils import make_divisible

__all__ = [
    'ARCH_WIDTHS', 'BASE_STAGES', 'GhostNetV2', 'DFCAttention', 'GhostBottleneck',
    'GhostModule', 'SqueezeExcite', 'GhostNetV2ClsNeck', 'make_divisible'
]
