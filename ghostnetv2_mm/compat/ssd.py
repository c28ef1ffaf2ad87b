"""SSD / SSDLite evaluation on mmdet 3.3.0.

mmdet 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which
``SSDHead`` never creates (it computes its classification loss inline), so every SSD
model fails at its first validation or test image with "'SSDHead' object has no
attribute 'loss_cls'" (open-mmlab/mmdetection issues 11063, 11305, 11780; the fix,
pull request 11524, is not released). ``SSDHeadCompat`` is ``SSDHead`` with that
attribute present; nothing else differs (same arguments, weights and outputs).
"""
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS


@MODELS.register_module()
class SSDHeadCompat(SSDHead):
    """``SSDHead`` that predicts on mmdet 3.3.0 (see the module docstring)."""

    # No loss module: the prediction code only asks it for custom class channels.
    loss_cls = None
