# Demo: RetinaNet + FPN with a GhostNetV2-1.0x backbone on ToyShapes, trained from
# scratch on a CPU in a few minutes:
#
#   python -m ghostnetv2_mm.datasets.toy_shapes data/toy_shapes
#   python tools/train.py configs/demo/retinanet_ghostnetv2_toyshapes.py
#   python tools/test.py configs/demo/retinanet_ghostnetv2_toyshapes.py \
#       work_dirs/retinanet_ghostnetv2_toyshapes/iter_600.pth --show-dir vis
#
# ToyShapes (ghostnetv2_mm/datasets/toy_shapes.py): 128x128 COCO-format images with 1-4
# circles, squares and triangles, 20-60 px across. The model is mmdet's RetinaNet made
# small for that: GhostNetV2 from scratch (BN in training mode; no ImageNet weights
# offline), a 64-channel FPN over strides 8-64, anchors from 16 px, 2-conv heads.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

data_root = 'data/toy_shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle'),
                palette=[(220, 20, 60), (0, 130, 230), (250, 170, 30)])
image_size = (128, 128)
channels = 64  # FPN / head width (256 in the COCO config)
max_iters = 600
batch_size = 8

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='GhostNetV2',
        arch='1.0x',
        out_indices=(5, 7, 9),  # strides 8 / 16 / 32: 40 / 112 / 160 channels
        frozen_stages=-1,  # from scratch: everything trains
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,  # from scratch: BN statistics must be learnt
        init_cfg=None),  # no ImageNet weights offline
    neck=dict(in_channels=[40, 112, 160], out_channels=channels, start_level=0,
              add_extra_convs='on_input', num_outs=4),
    bbox_head=dict(
        num_classes=3,
        in_channels=channels,
        feat_channels=channels,
        stacked_convs=2,
        # base anchors of 2 x stride: 16 / 32 / 64 / 128 px (x 1, 1.26, 1.59)
        anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32, 64])),
    test_cfg=dict(nms_pre=300, max_per_img=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
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
                     metric='bbox')
test_evaluator = val_evaluator

# Iteration-based schedule, evaluated once at the end.
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
# From scratch with BN in the backbone: AdamW converges in far fewer iterations than
# SGD here; gradient clipping keeps the first iterations stable.
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
