# SSDLite with a GhostNetV2-1.0x backbone, COCO 2017, 320x320, 120 epochs over a 5x
# repeated training set (mmdet calls it "600e"), 8 GPUs x 24 images, from scratch.
#
#   bash tools/dist_train.sh configs/ssdlite_ghostnetv2_coco.py 8
#
# Only the backbone and the feature widths differ from mmdet's own
# ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py (21.3 box AP), which this inherits
# unchanged: data pipeline, anchors, schedule, optimizer.
#
# Weights: none, as in that baseline, which trains MobileNetV2 from scratch (hence
# its 600 "epochs"). A run that starts from ImageNet weights would not compare with
# 21.3. To start from the official GhostNetV2 weights anyway:
#   --cfg-options model.backbone.init_cfg=None model.backbone.pretrained=https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_10.pth.tar
_base_ = ['mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py']

# ghostnetv2_mm.compat.ssd: mmdet 3.3.0's SSDHead fails at its first validation image
# (mmdet issue 11063); SSDHeadCompat is the same head with that bug worked around.
custom_imports = dict(imports=['ghostnetv2_mm', 'ghostnetv2_mm.compat.ssd'],
                      allow_failed_imports=False)

# SSDLite's two backbone maps: the last block of stride 16 and the final 1x1 conv at
# stride 32 (MobileNetV2: 96 and 1280 channels; GhostNetV2: 112 and 960). The neck
# passes both through and adds four extra levels of its own.
feature_channels = (112, 960, 512, 256, 256, 128)
model = dict(
    backbone=dict(
        _delete_=True,
        type='GhostNetV2',
        arch='1.0x',
        out_indices=(7, 10),
        # the baseline's backbone normalisation and from-scratch initialisation
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        init_cfg=dict(type='TruncNormal', layer='Conv2d', std=0.03)),
    neck=dict(in_channels=feature_channels[:2], out_channels=feature_channels),
    bbox_head=dict(type='SSDHeadCompat', in_channels=feature_channels))

# Any dataset size: SSDNeck's extra levels end in 1x1 maps, and BatchNorm in training
# mode cannot normalise a 1x1 map of a single image ("Expected more than 1 value per
# channel"). A last batch of one image (a dataset size that leaves a remainder of 1
# per GPU) would stop the run, so the last incomplete batch of each epoch is dropped
# (at most batch_size - 1 images an epoch, seen in other epochs: the sampler
# shuffles). The batch size per GPU must be at least 2 for the same reason.
train_dataloader = dict(drop_last=True)
