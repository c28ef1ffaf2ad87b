# The ToyShapes DeepLabV3 demo (output stride 8) shrunk for the downstream benchmark's
# tests: the demo's pipelines at 64x64 crops, batches of 2, no loader workers, narrow
# heads.
_base_ = ['../../configs/demo/deeplabv3_ghostnetv2_toyshapes.py']

crop_size = (64, 64)


def at_crop_size(pipeline):
    """``pipeline`` with every image size in it (a resize's ``scale``, a crop's
    ``crop_size``) at ``crop_size`` (the function is not kept in the config)."""
    return [dict(step, **{key: crop_size for key in ('scale', 'crop_size') if key in step})
            for step in pipeline]


model = dict(data_preprocessor=dict(size=crop_size),
             decode_head=dict(channels=16), auxiliary_head=dict(channels=8))
train_pipeline = at_crop_size(_base_.train_pipeline)
test_pipeline = at_crop_size(_base_.test_pipeline)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
