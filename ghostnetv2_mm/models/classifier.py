"""The GhostNet-family ImageNet classifier, from mmpretrain's stock parts.

The reference head is: global average pool, 1x1 conv to 1280 channels WITH bias (not
width-scaled), ReLU, flatten, dropout 0.2, linear. A 1x1 conv on a pooled 1x1 map is a
linear layer, so mmpretrain's ``GlobalAveragePooling`` + ``StackedLinearClsHead(
mid_channels=[1280], dropout_rate=0.2, act_cfg=ReLU)`` (fc -> ReLU -> dropout -> fc)
computes the same function with the same parameters (6,156,908 for GhostNetV2-1.0x).
Official and timm checkpoints load into it directly (``conv_head`` -> ``head.layers.0.fc``,
``classifier`` -> ``head.layers.1.fc``; see ``ghostnetv2_mm.checkpoint.layouts``).

``type='GhostNetClassifier'`` (:func:`build_ghostnet_classifier`) is mmpretrain's
``ImageClassifier`` that takes the official files whoever loads them. The official and
timm ImageNet files keep their keys at the root (``conv_stem.weight``, ...).
mmpretrain's ``get_model(name, pretrained=True)``, its inferencers and mmengine's
``load_from`` hand them to the whole classifier and load non-strictly, which would load
nothing and leave a random model; this classifier carries the hook of
:func:`ghostnetv2_mm.checkpoint.register_checkpoint_hook` with ``strict=True``: such a
file is taken entirely or refused.
It is registered in mmengine's root MODELS as a builder function rather than as a
subclass, so that importing ghostnetv2_mm does not import mmpretrain's models (about
2.5 s); the model is a plain ``mmpretrain.models.ImageClassifier``.
"""
from mmengine.registry import MODELS

from ..checkpoint.adapter import register_checkpoint_hook
from .arch import ARCH_WIDTHS, final_channels

HEAD_CHANNELS = 1280  # the reference head's 1x1 conv (not width-scaled)


def classifier_cfg(arch: str = '1.0x', num_classes: int = 1000,
                   backbone_type: str = 'GhostNetV2', dropout_rate: float = 0.2,
                   **backbone_kwargs) -> dict:
    """The model config of an mmpretrain ``ImageClassifier`` on a GhostNet backbone.

    Args:
        arch (str): '1.0x', '1.3x' or '1.6x'. Default: '1.0x'.
        num_classes (int): Classes of the final linear layer. Default: 1000.
        backbone_type (str): 'GhostNetV2', or another GhostNet-family backbone with the
            same arguments. Default: 'GhostNetV2'.
        dropout_rate (float): Dropout before the final linear layer. Default: 0.2.
        **backbone_kwargs: Further backbone arguments (e.g. ``init_cfg``).
    """
    if arch not in ARCH_WIDTHS:
        raise ValueError(f'classifier_cfg: invalid arch={arch!r}; allowed: '
                         f'{sorted(ARCH_WIDTHS)}')
    in_channels = final_channels(ARCH_WIDTHS[arch])
    return dict(
        type='GhostNetClassifier',
        backbone=dict(type=backbone_type, arch=arch, out_indices=(10,), **backbone_kwargs),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='StackedLinearClsHead', num_classes=num_classes,
                  in_channels=in_channels, mid_channels=[HEAD_CHANNELS],
                  dropout_rate=dropout_rate, act_cfg=dict(type='ReLU'),
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


def build_classifier(arch: str = '1.0x', num_classes: int = 1000,
                     backbone_type: str = 'GhostNetV2', **kwargs):
    """Build the :func:`classifier_cfg` model with mmpretrain (which must be installed)."""
    cfg = classifier_cfg(arch, num_classes, backbone_type, **kwargs)
    cfg.pop('type')
    return build_ghostnet_classifier(**cfg)


@MODELS.register_module(name='GhostNetClassifier')
def build_ghostnet_classifier(**kwargs):
    """Build mmpretrain's ``ImageClassifier(**kwargs)`` (backbone, neck, head, ...) with
    the whole-file hook (see the module docstring). Needs mmpretrain."""
    try:
        import mmpretrain.models  # noqa: F401  (registers ImageClassifier and its parts)
    except ImportError as exc:
        raise ImportError('type=GhostNetClassifier builds an mmpretrain ImageClassifier; '
                          f'mmpretrain is not installed ({exc}): pip install '
                          "'ghostnetv2-mm[cls]'") from exc
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MMPRETRAIN_MODELS.build(dict(type='ImageClassifier', **kwargs))
    return register_checkpoint_hook(model, strict=True)
