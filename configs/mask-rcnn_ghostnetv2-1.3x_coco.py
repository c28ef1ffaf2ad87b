# Mask R-CNN + FPN, GhostNetV2-1.3x backbone, COCO 2017, 1x. Only the width differs from
# mask-rcnn_ghostnetv2_coco.py: its weights and the taps' channels.
_base_ = ['./mask-rcnn_ghostnetv2_coco.py', './_base_/ghostnetv2-1.3x.py']

model = dict(backbone=_base_.ghostnetv2_width, neck=dict(in_channels=[32, 52, 144, 208]))
