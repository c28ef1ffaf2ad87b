# DeepLabV3 (ASPP) + auxiliary FCN head on a dilated GhostNetV2-1.0x, ADE20K,
# 512x512 crops, 160k iterations, 4 GPUs x 4 images, SyncBN.
#
# Everything not written here (data pipeline, SGD lr 0.01 with poly decay, 160k
# schedule, hooks, runtime) comes unchanged from mmseg's own ResNet-50 config, so
# the run is comparable with mmseg's published DeepLabV3 numbers; the closest
# light-backbone reference is mmseg's MobileNetV2 DeepLabV3
# (mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py, 34.08 mIoU).
#
#   python tools/train.py configs/deeplabv3_ghostnetv2_ade20k.py
#   bash tools/dist_train.sh configs/deeplabv3_ghostnetv2_ade20k.py 4
#
# Needs ADE20K under data/ade/ADEChallengeData2016. The dilated backbone and its ImageNet
# weights (the official release file, by URL) come from _base_/ghostnetv2-d8_backbone.py.
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-160k_ade20k-512x512.py',
          './_base_/ghostnetv2-d8_backbone.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # The base config's ResNet weights must not reach the backbone: EncoderDecoder
    # copies model.pretrained into it. GhostNetV2's weights come from init_cfg.
    pretrained=None,
    backbone=dict(_base_.ghostnetv2_d8_backbone, norm_cfg=norm_cfg, norm_eval=False),
    # ASPP on the last bottleneck (160 ch; like MobileNetV2's 320-ch tap, not the
    # 960-ch final 1x1 conv). 256 ASPP channels (the DeepLabV3 paper's width) instead
    # of mmseg's ResNet-sized 512, which MobileNetV2 also keeps: at 512x512 the
    # backbone costs 5.8 G MACs, the 512-wide head 58 G, the 256-wide one 17 G.
    # For an exact head match with mmseg's MobileNetV2 baseline use
    # --cfg-options model.decode_head.channels=512 model.auxiliary_head.channels=256
    decode_head=dict(in_channels=160, in_index=3, channels=256, num_classes=150),
    # Auxiliary FCN on the stride-16 stage's last block (112 ch), as MobileNetV2's
    # aux head taps its 96-ch stage.
    auxiliary_head=dict(in_channels=112, in_index=2, channels=128, num_classes=150))
