# Mask R-CNN + FPN, GhostNetV2-1.3x backbone, COCO 2017, 1x. Only the width differs from
# mask-rcnn_ghostnetv2_coco.py: taps of 32 / 52 / 144 / 208 channels, weights _13.
_base_ = ['./mask-rcnn_ghostnetv2_coco.py']

model = dict(
    backbone=dict(
        arch='1.3x',
        init_cfg=dict(checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_13.pth.tar')),  # noqa: E501
    neck=dict(in_channels=[32, 52, 144, 208]))
