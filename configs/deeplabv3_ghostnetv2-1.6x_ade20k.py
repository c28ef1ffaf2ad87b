# DeepLabV3 on a dilated GhostNetV2-1.6x (output stride 8), ADE20K 512x512, 160k
# iterations; everything else as configs/deeplabv3_ghostnetv2_ade20k.py.
_base_ = ['./deeplabv3_ghostnetv2_ade20k.py', './_base_/ghostnetv2-1.6x.py']

model = dict(
    backbone=_base_.ghostnetv2_width,
    # ASPP on the last block (/32 in the classifier), the auxiliary FCN on the /16 one
    decode_head=dict(in_channels=256),
    auxiliary_head=dict(in_channels=180))
