# GhostNetV2-1.3x with its official ImageNet weights: what a 1.3x config changes in the
# backbone of its 1.0x counterpart (which reads _base_/ghostnetv2_backbone.py), e.g.
#
#   _base_ = ['./retinanet_ghostnetv2_coco.py', './_base_/ghostnetv2-1.3x.py']
#   model = dict(backbone=_base_.ghostnetv2_width, neck=dict(in_channels=[...]))
#
# Channels at this width, the last block of each resolution: 32 /4, 52 /8, 144 /16, 208 /32;
# the final 1x1 conv: 1248.
ghostnetv2_width = dict(
    arch='1.3x',
    init_cfg=dict(checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/'
                  'releases/download/GhostNetV2/ck_ghostnetv2_13.pth.tar'))
