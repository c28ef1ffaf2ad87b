# Importing registers GhostNet (V1), GhostNetV2 and GhostNetV3 in mmengine's root MODELS
# registry, from which mmdet, mmseg and mmpretrain resolve them. The classifier uses
# mmpretrain's stock parts (classifier.py), so nothing here imports a toolkit.
from .arch import ARCH_WIDTHS, BASE_STAGES, BackboneSettings, parse_backbone_args
from .backbone import FAMILY, BaseGhostNet, GhostNet, GhostNetV2, GhostNetV3
from .blocks import (DFCAttention, GhostBottleneck, GhostModule, RepConvModule,
                     SqueezeExcite)
from .classifier import build_classifier, build_ghostnet_classifier, classifier_cfg
from .conversion import ConversionReport, convert_checkpoint_file
from .fusing import fuse_state_dict
from .utils import make_divisible

__all__ = [
    'ARCH_WIDTHS', 'BASE_STAGES', 'BackboneSettings', 'parse_backbone_args', 'FAMILY',
    'BaseGhostNet', 'GhostNet', 'GhostNetV2', 'GhostNetV3', 'DFCAttention',
    'GhostBottleneck', 'GhostModule', 'RepConvModule', 'SqueezeExcite',
    'build_classifier', 'build_ghostnet_classifier', 'classifier_cfg', 'ConversionReport',
    'convert_checkpoint_file', 'fuse_state_dict', 'make_divisible'
]
