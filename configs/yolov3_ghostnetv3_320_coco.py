# Ablation: yolov3_ghostnetv2_320_coco.py with GhostNetV3 (arXiv 2404.11202) instead of
# GhostNetV2: re-parameterisable branches in training, the same graph as V2 once
# deployed, same taps, same recipe. Only the backbone type and its ImageNet weights
# (the official V3 release; 1.0x is the only released width) differ.
_base_ = ['./yolov3_ghostnetv2_320_coco.py']

model = dict(
    backbone=dict(
        type='GhostNetV3',
        init_cfg=dict(checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/'
                      'releases/download/GhostNetV3/ghostnetv3-1.0.pth.tar')))
