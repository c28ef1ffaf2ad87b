# The fine-tuning schedule the transfer configs share: SGD with Nesterov momentum, no
# weight decay on norms and biases, one warm-up epoch, then cosine decay to 0 over 30
# epochs; validated every epoch, the best checkpoint kept. Configs set the learning
# rate (optim_wrapper.optimizer.lr) and auto_scale_lr for their batch size.
_base_ = ['mmpretrain::_base_/default_runtime.py']

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=30, eta_min=0.0,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                                     save_best='auto'))
randomness = dict(seed=0)
