# The ToyShapes RetinaNet demo shrunk for the downstream benchmark's tests: 64x64
# images, batches of 2, no loader workers, every box kept (score_thr=0: after two
# iterations no score passes the demo's threshold, and the metric needs boxes).
_base_ = ['../../configs/demo/retinanet_ghostnetv2_toyshapes.py']

image_size = (64, 64)
model = dict(neck=dict(out_channels=16), bbox_head=dict(in_channels=16, feat_channels=16,
                                                        stacked_convs=1),
             test_cfg=dict(score_thr=0.0))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
