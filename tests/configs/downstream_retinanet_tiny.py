# The ToyShapes RetinaNet demo shrunk for the downstream benchmark's tests: the demo's
# pipelines at 64x64, batches of 2, no loader workers, every box kept (score_thr=0: after
# two iterations no score passes the demo's threshold, and the metric needs boxes).
_base_ = ['../../configs/demo/retinanet_ghostnetv2_toyshapes.py']

image_size = (64, 64)


def at_image_size(pipeline):
    """``pipeline`` with every Resize step at ``image_size`` (not kept in the config)."""
    return [dict(step, scale=image_size) if step['type'] == 'Resize' else step
            for step in pipeline]


model = dict(neck=dict(out_channels=16), bbox_head=dict(in_channels=16, feat_channels=16,
                                                        stacked_convs=1),
             test_cfg=dict(score_thr=0.0))
train_pipeline = at_image_size(_base_.train_pipeline)
test_pipeline = at_image_size(_base_.test_pipeline)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
