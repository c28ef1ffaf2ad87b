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
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

data_root = 'data/toy_shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle'),
                palette=[(220, 20, 60), (0, 130, 230), (250, 170, 30)])
num_classes = 3
image_size = (128, 128)
channels = 64  # FPN / RPN / RoI feature width (256 in the COCO config)
max_iters = 600
batch_size = 8

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='GhostNetV2',
        arch='1.0x',
        out_indices=(3, 5, 7, 9),  # strides 4 / 8 / 16 / 32
        frozen_stages=-1,  # from scratch: everything trains
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,  # from scratch: BN statistics must be learnt
        init_cfg=None),  # no ImageNet weights offline
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

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_training.json',
        data_prefix=dict(img='images/training/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_validation.json',
        data_prefix=dict(img='images/validation/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_validation.json',
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# Iteration-based schedule, evaluated once at the end.
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# From scratch, BN everywhere in the backbone: AdamW converges in far fewer iterations
# than SGD here; gradient clipping keeps the first iterations stable.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters,
         eta_min=1e-5)
]
auto_scale_lr = dict(base_batch_size=batch_size)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=25)
env_cfg = dict(mp_cfg=dict(mp_start_method='fork', opencv_num_threads=1))
randomness = dict(seed=0)  # the same demo result on every run
