# Importing registers GhostNetV2 in mmengine's root MODELS registry, from which mmdet,
# mmseg and mmpretrain resolve it. The classifier uses mmpretrain's stock parts
# (classifier.py), so nothing here imports a toolkit.
from .backbone import ARCH_WIDTHS, BASE_STAGES, GhostNetV2
from .blocks import DFCAttention, GhostBottleneck, GhostModule, SqueezeExcite
from .classifier import build_classifier, classifier_cfg
from .utils import make_divisible

__all__ = [
    'ARCH_WIDTHS', 'BASE_STAGES', 'GhostNetV2', 'DFCAttention', 'GhostBottleneck',
    'GhostModule', 'SqueezeExcite', 'build_classifier', 'classifier_cfg', 'make_divisible'
]
