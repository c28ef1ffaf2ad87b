# Demo: the DeepLabV3 + GhostNetV2-1.0x model of configs/deeplabv3_ghostnetv2_ade20k.py
# trained FROM SCRATCH on ToyShapes (generated, nothing downloaded) on a CPU, in a few
# minutes. Scaled down for 128x128 images and one CPU process: BN instead of SyncBN,
# narrower heads, ASPP rates scaled to the 16x16 feature map, AdamW, short schedule.
# Background covers ~86% of the pixels: with plain cross-entropy the model from
# scratch settles on "background everywhere" (mIoU 21.6) or on one shape class for
# every shape, so the loss weights the classes (background 0.5, circle 1, square and
# triangle 2; circles cover the most pixels of the three).
#
#   python -m ghostnetv2_mm.datasets.toy_shapes data/toy_shapes
#   python tools/train.py configs/demo/deeplabv3_ghostnetv2_toyshapes.py
#   python tools/test.py configs/demo/deeplabv3_ghostnetv2_toyshapes.py \
#       work_dirs/deeplabv3_ghostnetv2_toyshapes/iter_NNN.pth --show-dir vis
_base_ = ['../deeplabv3_ghostnetv2_ade20k.py']

norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (128, 128)
num_classes = 4  # background, circle, square, triangle

class_weight = [0.5, 1.0, 2.0, 2.0]

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg, init_cfg=None),  # from scratch
    decode_head=dict(channels=64, dilations=(1, 3, 6, 9), num_classes=num_classes,
                     norm_cfg=norm_cfg, loss_decode=dict(class_weight=class_weight)),
    auxiliary_head=dict(channels=32, num_classes=num_classes, norm_cfg=norm_cfg,
                        loss_decode=dict(class_weight=class_weight)))

# ---------------------------------------------------------------- data: ToyShapes
dataset_type = 'BaseSegDataset'
data_root = 'data/toy_shapes'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[[0, 0, 0], [220, 20, 60], [0, 160, 255], [255, 200, 0]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    # Only enlarge (ratio >= 1), so that crops are never padded: mmseg 1.2.2's
    # class-weighted cross-entropy fails on the padding label 255.
    dict(type='RandomResize', scale=crop_size, ratio_range=(1.0, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True, type=dataset_type, data_root=data_root, metainfo=metainfo,
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True, type=dataset_type, data_root=data_root, metainfo=metainfo,
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False,
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# ---------------------------------------------------------------- schedule
max_iters = 600
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    # tools/test.py --show-dir draws every validation image (50 by default)
    visualization=dict(interval=1))
randomness = dict(seed=0)
