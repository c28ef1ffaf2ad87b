# RetinaNet + FPN, GhostNetV2-1.6x backbone, COCO 2017, 1x. Only the width differs from
# retinanet_ghostnetv2_coco.py: taps of 64 / 180 / 256 channels, weights _16.
_base_ = ['./retinanet_ghostnetv2_coco.py']

model = dict(
    backbone=dict(
        arch='1.6x',
        init_cfg=dict(checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_16.pth.tar')),  # noqa: E501
    neck=dict(in_channels=[64, 180, 256]))
