# Ablation: yolov3_ghostnetv2_320_coco.py with GhostNet (V1, CVPR 2020) instead of
# GhostNetV2: the same network without DFC attention, same taps, same recipe.
# Only the backbone type and its ImageNet weights (the official V1 1.0x release) differ.
_base_ = ['./yolov3_ghostnetv2_320_coco.py']

model = dict(
    backbone=dict(
        type='GhostNet',
        init_cfg=dict(checkpoint='https://github.com/huawei-noah/CV-backbones/'
                      'releases/download/ghostnet_pth/ghostnet_1x.pth')))
