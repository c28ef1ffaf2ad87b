# GhostNetV2 1.0x on ImageNet-1k: the reference training recipe, in mmpretrain.
#   train: 450 epochs, RMSProp (TF-style eps 1e-3), lr 0.064 at batch 1024 (8 x 128),
#          x0.973 every 2.4 epochs, 3 warm-up epochs, weight decay 1e-5, EMA 0.9999,
#          RandAugment m9-mstd0.5, random erasing 0.2, dropout 0.2, label smoothing 0.1
#   test:  224x224 centre crop of the image resized (bicubic) to 256 on its short side
#          (crop 0.875), which is how the published 75.3 top-1 was measured.
# Reproduce the published accuracy with the official weights:
#   python tools/test.py configs/ghostnetv2-1.0x_8xb128_in1k.py ck_ghostnetv2_10.pth.tar
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs128_mbv3.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['ghostnetv2_mm', 'ghostnetv2_mm.models.cls_head'], allow_failed_imports=False)

arch = '1.0x'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='GhostNetV2', arch=arch, out_indices=(10,)),
    neck=dict(type='GhostNetV2ClsNeck', in_channels=960, out_channels=1280),
    head=dict(
        type='GhostNetV2ClsHead',
        num_classes=1000,
        in_channels=1280,
        dropout=0.2,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))

bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.2, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# torch's RMSprop adds eps outside the square root, TF (and timm's rmsproptf) inside:
# eps = sqrt(1e-3) ~ 0.0316 makes them match when the running average is small.
optim_wrapper = dict(
    optimizer=dict(type='RMSprop', lr=0.064, alpha=0.9, momentum=0.9, eps=0.0316,
                   weight_decay=1e-5))
# Step decay every 2.4 epochs cannot be expressed in whole epochs: count iterations
# (1,281,167 training images / 1024 per step = 1251 iterations per epoch).
iters_per_epoch = 1251
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 0.064, by_epoch=False, begin=0,
         end=3 * iters_per_epoch),
    dict(type='StepLR', by_epoch=False, step_size=int(2.4 * iters_per_epoch), gamma=0.973,
         begin=3 * iters_per_epoch),
]
train_cfg = dict(by_epoch=True, max_epochs=450, val_interval=5)
val_cfg = dict()
test_cfg = dict()
custom_hooks = [dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL')]
auto_scale_lr = dict(base_batch_size=1024)
