# Fine-tune ImageNet-pretrained GhostNetV2 1.0x on your own images, one folder per class
# (mmpretrain CustomDataset):
#   data/my_dataset/train/<class name>/*.jpg
#   data/my_dataset/val/<class name>/*.jpg      (same class folders)
#   python tools/train.py configs/transfer/ghostnetv2-1.0x_imagefolder.py \
#       --cfg-options num_classes=5 model.head.num_classes=5 \
#       model.data_preprocessor.num_classes=5
# Set num_classes below (or override as shown) to the number of class folders.
_base_ = ['./_base_/finetune_schedule.py', '../_base_/imagenet_224_pipelines.py']
custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

num_classes = 5
data_root = 'data/my_dataset'

model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(num_classes=num_classes, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True),
    backbone=dict(
        type='GhostNetV2', arch='1.0x', out_indices=(10,),
        init_cfg=dict(type='Pretrained', checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_10.pth.tar')),  # noqa: E501
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='StackedLinearClsHead', num_classes=num_classes, in_channels=960,
              mid_channels=[1280], dropout_rate=0.2, act_cfg=dict(type='ReLU'),
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
              topk=(1,)))

# the ImageNet recipe's crops (../_base_/imagenet_224_pipelines.py), no RandAugment
train_pipeline = _base_.crop_and_flip + [dict(type='PackInputs')]
test_pipeline = _base_.center_crop_test_pipeline
train_dataloader = dict(
    batch_size=32, num_workers=2,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train',
                 with_label=True, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=2,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val',
                 with_label=True, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1,))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(base_batch_size=32)
