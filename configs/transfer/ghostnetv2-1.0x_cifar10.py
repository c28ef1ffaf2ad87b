# Fine-tune ImageNet-pretrained GhostNetV2 1.0x on CIFAR-10 at its native 32x32 resolution
# (1 GPU x 128 images, 30 epochs). At 32x32 the final feature map is 1x1 and the DFC
# attention pools 2x2 maps down to 1x1; this implementation handles that, the reference
# one crashes when a side is 32 px or less. For the usual "upsampled" transfer setting
# (better accuracy, ~49x the MACs) use ghostnetv2-1.0x_cifar10-224px.py.
#   data:    data/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
#   weights: the official release file, by URL (downloaded once into torch hub's cache)
#   python tools/train.py configs/transfer/ghostnetv2-1.0x_cifar10.py
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    './_base_/finetune_schedule.py',
]
custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='GhostNetV2', arch='1.0x', out_indices=(10,),
        init_cfg=dict(type='Pretrained', checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_10.pth.tar')),  # noqa: E501
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='StackedLinearClsHead', num_classes=10, in_channels=960,
              mid_channels=[1280], dropout_rate=0.2, act_cfg=dict(type='ReLU'),
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))

# The ImageNet weights expect ImageNet normalisation; CIFAR images are loaded as RGB.
data_preprocessor = dict(num_classes=10, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=False)
train_dataloader = dict(batch_size=128, dataset=dict(download=False))
val_dataloader = dict(batch_size=256, dataset=dict(download=False))
test_dataloader = val_dataloader

auto_scale_lr = dict(base_batch_size=128)
