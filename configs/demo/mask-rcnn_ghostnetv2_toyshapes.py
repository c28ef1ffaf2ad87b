# Demo: Mask R-CNN + FPN with a GhostNetV2-1.0x backbone on ToyShapes, trained from
# scratch on a CPU in a few minutes (`make demo`, or by hand):
#
#   python -m ghostnetv2_mm.datasets.toy_shapes data/toy_shapes
#   python tools/train.py configs/demo/mask-rcnn_ghostnetv2_toyshapes.py
#   python tools/test.py configs/demo/mask-rcnn_ghostnetv2_toyshapes.py \
#       work_dirs/mask-rcnn_ghostnetv2_toyshapes/iter_600.pth --show-dir vis
#
# ToyShapes (ghostnetv2_mm/datasets/toy_shapes.py) is a generated COCO-format dataset of
# 128x128 images with 1-4 circles, squares and triangles (20-60 px across). The model is
# mmdet's Mask R-CNN, made small enough for that: the real GhostNetV2 backbone (no
# ImageNet weights offline, so it trains from scratch, BN in training mode), a 64-channel
# FPN over strides 4-32, anchors sized for 20-60 px objects, narrow RoI heads.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', './_base_/toyshapes_detection.py']

num_classes = 3
channels = 64  # FPN / RPN / RoI feature width (256 in the COCO config)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(_base_.scratch_backbone, out_indices=(3, 5, 7, 9)),  # strides 4-32
    neck=dict(in_channels=[24, 40, 112, 160], out_channels=channels, num_outs=4),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        # anchors of 24 / 48 / 96 / 192 px: the shapes are 20-60 px across
        anchor_generator=dict(scales=[6], strides=[4, 8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=256,
                       num_classes=num_classes),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels,
                       num_classes=num_classes)),
    # at most 4 objects per image: far fewer samples and proposals than on COCO
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=100),
        rcnn=dict(max_per_img=20)))

# The shared pipelines with masks loaded, and the masks scored too.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
