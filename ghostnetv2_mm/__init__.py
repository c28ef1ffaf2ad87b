"""ghostnetv2-mm: GhostNetV2 as an OpenMMLab 2.x backbone.

``import ghostnetv2_mm`` (or ``custom_imports=dict(imports=['ghostnetv2_mm'])`` in a
config) registers ``GhostNetV2`` for mmdet, mmseg and mmpretrain, and makes mmengine
load checkpoints as data only (see ``ghostnetv2_mm.checkpoint.safe_io``).
"""
from .checkpoint import install_mmengine_hooks
from .models import GhostNetV2, GhostNetV2ClsNeck
from .version import __version__

install_mmengine_hooks()

__all__ = ['GhostNetV2', 'GhostNetV2ClsNeck', '__version__']
