# GhostNetV2 1.3x (published: 76.9 top-1); same recipe as 1.0x.
#   python tools/test.py configs/ghostnetv2-1.3x_8xb128_in1k.py \
#       https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_13.pth.tar
_base_ = './ghostnetv2-1.0x_8xb128_in1k.py'
arch = '1.3x'
model = dict(backbone=dict(arch=arch), head=dict(in_channels=1248))
