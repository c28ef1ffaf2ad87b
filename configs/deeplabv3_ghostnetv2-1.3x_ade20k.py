# DeepLabV3 on a dilated GhostNetV2-1.3x (output stride 8), ADE20K 512x512, 160k
# iterations; everything else as configs/deeplabv3_ghostnetv2_ade20k.py.
_base_ = ['./deeplabv3_ghostnetv2_ade20k.py']

model = dict(
    backbone=dict(
        arch='1.3x',
        init_cfg=dict(checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_13.pth.tar')),  # noqa: E501
    decode_head=dict(in_channels=208),  # 1.3x widths: 32 /4, 52 /8, 144, 208
    auxiliary_head=dict(in_channels=144))
