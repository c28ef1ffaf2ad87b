"""ghostnetv2-mm: GhostNetV2 as an OpenMMLab 2.x backbone.

``import ghostnetv2_mm`` (or ``custom_imports=dict(imports=['ghostnetv2_mm'])`` in a
config) registers ``GhostNetV2`` (and the family's ``GhostNet`` V1 and ``GhostNetV3``)
for mmdet, mmseg and mmpretrain. A process-wide effect besides registration: the
classes of mmengine's own checkpoints are added to torch's safe-loading allow-list, so
that ``--resume`` works with ``weights_only=True`` (see
``ghostnetv2_mm.checkpoint.safe_io``). How other models load is unchanged.

With mmpretrain installed, the import also registers the GhostNet-family ImageNet
classifiers in mmpretrain's model hub, so that ``mmpretrain.get_model(name,
pretrained=True)`` and the inferencers find them by name, and has mmengine read
exactly their five official weight URLs with this project's checkpoint reader
(``ghostnetv2_mm.model_hub``). Every other model lists and loads as before.
"""
from .checkpoint import register_safe_globals
from .model_hub import register_model_hub
from .models import GhostNet, GhostNetV2, GhostNetV3, classifier_cfg
from .version import __version__

register_safe_globals()
register_model_hub()

__all__ = ['GhostNet', 'GhostNetV2', 'GhostNetV3', 'classifier_cfg', '__version__']
