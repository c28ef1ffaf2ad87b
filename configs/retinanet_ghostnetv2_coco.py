# RetinaNet + FPN with a GhostNetV2-1.0x backbone, COCO 2017, 1x schedule (12 epochs).
#
#   python tools/train.py configs/retinanet_ghostnetv2_coco.py
#
# Everything not set here comes from mmdet's own RetinaNet R-50 config (data pipeline,
# 1333x800 resize, head, anchors, schedule), so results compare with mmdet's baselines
# (RetinaNet R-18 1x: 31.7 box AP). ImageNet weights: the official GhostNetV2 release file,
# by URL (downloaded once into torch hub's cache); a local copy: --cfg-options
# model.backbone.init_cfg.checkpoint=PATH; from scratch: model.backbone.init_cfg=None.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNetV2',
        arch='1.0x',
        # last block of stride 8 / 16 / 32 (channels 40 / 112 / 160); RetinaNet
        # starts at P3, so the stride-4 tap is not needed.
        out_indices=(5, 7, 9),
        frozen_stages=0,  # the stem stays as pretrained (conv and BN)
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,  # 2 images per GPU are too few to re-estimate BN statistics
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_10.pth.tar')),  # noqa: E501
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
