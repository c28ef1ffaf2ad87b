# Importing registers GhostNet (V1), GhostNetV2 and GhostNetV3 in mmengine's root MODELS
# registry, from which mmdet, mmseg and mmpretrain resolve them. The classifier uses
# mmpretrain's stock parts (classifier.py), so nothing here imports a toolkit.
from .backbone import (ARCH_WIDTHS, BASE_STAGES, BaseGhostNet, GhostNet, GhostNetV2,
                       GhostNetV3)
from .blocks import (DFCAttention, GhostBottleneck, GhostModule, RepConvModule,
                     SqueezeExcite)
from .classifier import build_classifier, classifier_cfg
# type='GhostNetClassifier': ImageClassifier + official files (imports mmpretrain lazily)
from .ghostnet_classifier import build_ghostnet_classifier
from .utils import make_divisible

__all__ = [
    'ARCH_WIDTHS', 'BASE_STAGES', 'BaseGhostNet', 'GhostNet', 'GhostNetV2', 'GhostNetV3',
    'DFCAttention', 'GhostBottleneck', 'GhostModule', 'RepConvModule', 'SqueezeExcite',
    'build_classifier', 'build_ghostnet_classifier', 'classifier_cfg',
    'make_divisible'
]
