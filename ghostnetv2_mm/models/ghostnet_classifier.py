"""``type='GhostNetClassifier'``: mmpretrain's ``ImageClassifier`` that takes the
official GhostNet files whoever loads them.

The official and timm ImageNet files keep their keys at the root (``conv_stem.weight``,
``conv_head.weight``, ...). mmpretrain's ``get_model(name, pretrained=True)``, its
inferencers and mmengine's ``load_from`` hand them to the whole classifier and load
non-strictly, which would load nothing and leave a random model. The classifier built
here carries the hook of :mod:`ghostnetv2_mm.checkpoint.whole_file`: such a file is
taken entirely (relocated under ``backbone.``, its head converted for the
``StackedLinearClsHead``) or refused with an error, and a checkpoint of which nothing
fits is refused too.

It is registered in mmengine's root MODELS as a builder function rather than as a
subclass, so that importing ghostnetv2_mm does not import mmpretrain's models (about
2.5 s): mmpretrain is imported when a classifier is built. The model is a plain
``mmpretrain.models.ImageClassifier``; the configs, arguments and checkpoints are those
of ``ImageClassifier``.
"""
from mmengine.registry import MODELS

from ..checkpoint.whole_file import register_whole_file_hook


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
    return register_whole_file_hook(model)
