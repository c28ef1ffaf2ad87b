# A tiny RetinaNet with a GhostNetV2 backbone on ToyShapes 64x64, for the tool tests.
# Fast on CPU: narrow FPN/head, batch 2, IterBasedTrainLoop, checkpoint every 2 iters.
# The data root comes from --cfg-options data_root=... (also patched into the
# dataloaders and the evaluators by tests/test_tools.py).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

data_root = 'data/toy_shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle'))
img_scale = (64, 64)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True, type='GhostNetV2', arch='1.0x', out_indices=(5, 7, 9),
        init_cfg=None),
    neck=dict(in_channels=[40, 112, 160], out_channels=32, start_level=0,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32, stacked_convs=1),
    # score_thr=0: even a barely trained detector reports boxes, so the metric exists
    test_cfg=dict(nms_pre=100, score_thr=0.0, max_per_img=20))

# No random transforms: two runs with the same seed see exactly the same batches.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CocoDataset', data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_training.json',
        data_prefix=dict(img='images/training/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset', data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_validation.json',
        data_prefix=dict(img='images/validation/'),
        test_mode=True, pipeline=test_pipeline))
test_evaluator = dict(type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_validation.json',
                     metric='bbox', format_only=False)
# No validation while training (it would run after the last iteration and cost time).
val_dataloader = None
val_cfg = None
val_evaluator = None

train_cfg = dict(type='IterBasedTrainLoop', max_iters=8)
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(type='MultiStepLR', by_epoch=False, milestones=[6], gamma=0.1),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2,
                    max_keep_ckpts=-1),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork'),
               dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0, deterministic=True)
