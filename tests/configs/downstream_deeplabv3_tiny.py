# The ToyShapes DeepLabV3 demo (output stride 8) shrunk for the downstream benchmark's
# tests: 64x64 crops, batches of 2, no loader workers, narrow heads.
_base_ = ['../../configs/demo/deeplabv3_ghostnetv2_toyshapes.py']

crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size),
             decode_head=dict(channels=16), auxiliary_head=dict(channels=8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
