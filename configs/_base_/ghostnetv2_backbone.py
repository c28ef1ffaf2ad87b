# GhostNetV2-1.0x with the official ImageNet weights, as the COCO and ADE20K configs put
# it in place of their toolkit base config's backbone:
#
#   _base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
#             './_base_/ghostnetv2_backbone.py']
#   model = dict(backbone=dict(_base_.ghostnetv2_backbone, norm_eval=True))
#
# `_base_.ghostnetv2_backbone` reads this file's variable; `dict(it, key=value)` is a
# copy with `key` changed. Listing this file also imports the plugin, which registers
# GhostNetV2 (and the rest of the family) with mmdet, mmseg and mmpretrain.
custom_imports = dict(imports=['ghostnetv2_mm'], allow_failed_imports=False)

ghostnetv2_backbone = dict(
    _delete_=True,  # replaces the base's ResNet / MobileNetV2 whole, not key by key
    type='GhostNetV2',
    arch='1.0x',
    # The last block of stride 8 / 16 / 32 (40 / 112 / 160 channels): what a detector
    # that starts at P3 reads. (3, 5, 7, 9) adds the stride-4 block (24 channels).
    out_indices=(5, 7, 9),
    # By URL, downloaded once into torch hub's cache. A local copy: --cfg-options
    # model.backbone.init_cfg.checkpoint=PATH; from scratch: model.backbone.init_cfg=None.
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/'
        'releases/download/GhostNetV2/ck_ghostnetv2_10.pth.tar'))
