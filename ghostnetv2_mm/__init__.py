"""ghostnetv2-mm: GhostNetV2 as an OpenMMLab 2.x backbone.

``import ghostnetv2_mm`` (or ``custom_imports=dict(imports=['ghostnetv2_mm'])`` in a
config) registers ``GhostNetV2`` (and the family's ``GhostNet`` V1 and ``GhostNetV3``)
for mmdet, mmseg and mmpretrain. Its only process-wide
effect besides registration: the classes of mmengine's own checkpoints are added to
torch's safe-loading allow-list, so that ``--resume`` works with ``weights_only=True``
(see ``ghostnetv2_mm.checkpoint.safe_io``). How other models load is unchanged.
"""
from .checkpoint import register_safe_globals
from .models import GhostNet, GhostNetV2, GhostNetV3, classifier_cfg
from .version import __version__

register_safe_globals()

__all__ = ['GhostNet', 'GhostNetV2', 'GhostNetV3', 'classifier_cfg', '__version__']
