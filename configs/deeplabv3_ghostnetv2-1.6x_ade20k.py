# DeepLabV3 on a dilated GhostNetV2-1.6x (output stride 8), ADE20K 512x512, 160k
# iterations; everything else as configs/deeplabv3_ghostnetv2_ade20k.py.
_base_ = ['./deeplabv3_ghostnetv2_ade20k.py']

model = dict(
    backbone=dict(
        arch='1.6x',
        init_cfg=dict(checkpoint='https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_16.pth.tar')),  # noqa: E501
    decode_head=dict(in_channels=256),  # 1.6x widths: 40 /4, 64 /8, 180, 256
    auxiliary_head=dict(in_channels=180))
