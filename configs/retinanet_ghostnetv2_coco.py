# RetinaNet + FPN with a GhostNetV2-1.0x backbone, COCO 2017, 1x schedule (12 epochs).
#
#   python tools/train.py configs/retinanet_ghostnetv2_coco.py
#
# Everything not set here comes from mmdet's own RetinaNet R-50 config (data pipeline,
# 1333x800 resize, head, anchors, schedule), so results compare with mmdet's baselines
# (RetinaNet R-18 1x: 31.7 box AP). The backbone, its taps at strides 8 / 16 / 32 and its
# ImageNet weights (the official release file, by URL) come from
# _base_/ghostnetv2_backbone.py.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', './_base_/ghostnetv2_backbone.py']

model = dict(
    backbone=dict(
        _base_.ghostnetv2_backbone,
        frozen_stages=0,  # the stem stays as pretrained (conv and BN)
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True),  # 2 images per GPU are too few to re-estimate BN statistics
    neck=dict(
        in_channels=[40, 112, 160],
        start_level=0,
        # P6 from the stride-32 backbone output (160 channels), P7 from P6
        add_extra_convs='on_input',
        num_outs=5))

# Optimizer. Same SGD schedule as mmdet's R-50 RetinaNet (lr 0.01 for 16 images per
# iteration), with two changes for a light, depthwise-heavy backbone:
# * no weight decay on depthwise convolutions and normalisation layers: GhostNetV2's
#   cheap operations and DFC attention are depthwise kernels of 9-25 weights per channel,
#   which weight decay shrinks far more than it regularises (MobileNet-style recipes
#   exempt them for the same reason);
# * gradient clipping: the FPN and head are 256 channels wide, much heavier than the
#   ~2.5M-parameter backbone, and their randomly initialised gradients in the first
#   iterations would otherwise wreck the pretrained features.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(norm_decay_mult=0., dwconv_decay_mult=0.,
                       bypass_duplicate=True),
    clip_grad=dict(max_norm=35, norm_type=2))
