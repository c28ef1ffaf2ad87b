# As ghostnetv2-1.0x_cifar10.py, with the 32x32 images upsampled (bicubic) to 224x224,
# the resolution the ImageNet weights were trained at.
#   python tools/train.py configs/transfer/ghostnetv2-1.0x_cifar10-224px.py
_base_ = './ghostnetv2-1.0x_cifar10.py'
img_size = 224
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=(img_size, img_size), interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(img_size, img_size), interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.005))
auto_scale_lr = dict(base_batch_size=64)
