# Mask R-CNN + FPN with a GhostNetV2-1.0x backbone, COCO 2017, 1x schedule (12 epochs).
#
#   python tools/train.py configs/mask-rcnn_ghostnetv2_coco.py
#
# Everything not set here comes from mmdet's own Mask R-CNN R-50 config (data pipeline,
# 1333x800 resize, RPN/RoI heads, schedule), so results compare with mmdet's baselines
# (Mask R-CNN R-50 1x: 38.2 box / 34.7 mask AP). The backbone and its ImageNet weights
# (the official release file, by URL) come from _base_/ghostnetv2_backbone.py.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/ghostnetv2_backbone.py']

# The FPN starts at stride 4 (RetinaNet's at 8): the last block of stride 4 / 8 / 16 / 32,
# 24 / 40 / 112 / 160 channels. Fine-tuned as in the RetinaNet config: stem frozen, BN
# statistics kept (2 images per GPU are too few to re-estimate them).
model = dict(
    backbone=dict(_base_.ghostnetv2_backbone, out_indices=(3, 5, 7, 9), frozen_stages=0,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True),
    neck=dict(in_channels=[24, 40, 112, 160]))

# Optimizer. Same SGD schedule as mmdet's R-50 Mask R-CNN (lr 0.02 for 16 images per
# iteration), with two changes for a light, depthwise-heavy backbone:
# * no weight decay on depthwise convolutions and normalisation layers: GhostNetV2's
#   cheap operations and DFC attention are depthwise kernels of 9-25 weights per channel,
#   which weight decay shrinks far more than it regularises (MobileNet-style recipes
#   exempt them for the same reason);
# * gradient clipping: the FPN, RPN and RoI heads (~40M parameters) dwarf the
#   ~2.5M-parameter backbone, and their randomly initialised gradients in the first
#   iterations would otherwise wreck the pretrained features.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(norm_decay_mult=0., dwconv_decay_mult=0.,
                       bypass_duplicate=True),
    clip_grad=dict(max_norm=35, norm_type=2))
