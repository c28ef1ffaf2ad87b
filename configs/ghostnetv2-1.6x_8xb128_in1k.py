# GhostNetV2 1.6x (published: 77.8 top-1); same recipe as 1.0x.
#   python tools/test.py configs/ghostnetv2-1.6x_8xb128_in1k.py ck_ghostnetv2_16.pth.tar
_base_ = './ghostnetv2-1.0x_8xb128_in1k.py'
arch = '1.6x'
model = dict(backbone=dict(arch=arch), neck=dict(in_channels=1536))
