# The image handling of the GhostNetV2 ImageNet recipe at 224x224
# (configs/ghostnetv2-1.0x_8xb128_in1k.py), which the transfer configs that fine-tune at
# that size share. Training starts with a random resized crop (bicubic) and a horizontal
# flip (a config adds its augmentations and PackInputs); the test resizes the short side
# to 256 (bicubic) and takes the centre 224x224 crop (crop ratio 0.875): how the
# published top-1 figures were measured.
crop_and_flip = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
center_crop_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
