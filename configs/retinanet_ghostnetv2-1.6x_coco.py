# RetinaNet + FPN, GhostNetV2-1.6x backbone, COCO 2017, 1x. Only the width differs from
# retinanet_ghostnetv2_coco.py: its weights and the taps' channels.
_base_ = ['./retinanet_ghostnetv2_coco.py', './_base_/ghostnetv2-1.6x.py']

model = dict(backbone=_base_.ghostnetv2_width, neck=dict(in_channels=[64, 180, 256]))
