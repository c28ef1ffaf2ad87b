# DeepLabV3+ on a dilated GhostNetV2-1.0x (output stride 8), ADE20K, 512x512 crops,
# 160k iterations, 4 GPUs x 4 images.
#
#   bash tools/dist_train.sh configs/deeplabv3plus_ghostnetv2_ade20k.py 4
#
# Only the backbone and the heads' input widths differ from mmseg's own
# mobilenet_v2/mobilenet-v2-d8_deeplabv3plus_4xb4-160k_ade20k-512x512.py (34.02 mIoU),
# which this inherits unchanged: data pipeline, head widths, schedule, optimizer.
# Needs ADE20K under data/ade/ADEChallengeData2016.
#
# The backbone (_base_/ghostnetv2-d8_backbone.py, output stride 8 as the baseline's
# "-d8") taps the last block of each resolution, as MobileNetV2's (1, 2, 4, 6): 24 ch at
# /4 (the decoder's low-level input), 40 ch at /8, 112 ch and 160 ch (dilated). Its
# BatchNorm is per GPU (the default), as the baseline's MobileNetV2; the heads use
# SyncBN, as there.
_base_ = ['mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3plus_4xb4-160k_ade20k-512x512.py',
          './_base_/ghostnetv2-d8_backbone.py']

model = dict(
    # EncoderDecoder copies model.pretrained (MobileNetV2's weights in the base) into
    # the backbone; GhostNetV2's weights come from its init_cfg.
    pretrained=None,
    backbone=dict(_base_.ghostnetv2_d8_backbone),
    # ASPP on the deepest tap (in_index 3 in the base). The decoder reads the first
    # output, the stride-4 tap, whose 24 channels are MobileNetV2's too
    # (c1_in_channels=24 in the base).
    decode_head=dict(in_channels=160),
    # auxiliary FCN on the stride-16 stage (in_index 2 in the base)
    auxiliary_head=dict(in_channels=112))
