# GhostNetV2 1.6x (published: 77.8 top-1); same recipe as 1.0x.
#   python tools/test.py configs/ghostnetv2-1.6x_8xb128_in1k.py \
#       https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV2/ck_ghostnetv2_16.pth.tar
_base_ = './ghostnetv2-1.0x_8xb128_in1k.py'
arch = '1.6x'
model = dict(backbone=dict(arch=arch), head=dict(in_channels=1536))
