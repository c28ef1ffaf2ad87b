# GhostNet (V1, CVPR 2020) 1.0x on ImageNet-1k: GhostNetV2 1.0x's classifier without DFC
# attention (same stages, same head), for the official V1 weights (published: 73.9 top-1):
#   python tools/test.py configs/ghostnet-1.0x_8xb128_in1k.py \
#       https://github.com/huawei-noah/CV-backbones/releases/download/ghostnet_pth/ghostnet_1x.pth
# or by name: mmpretrain.get_model('ghostnet-1.0x_8xb128_in1k', pretrained=True).
# The training part is GhostNetV2's recipe (ghostnetv2-1.0x_8xb128_in1k.py), not the one
# the V1 weights were trained with; the test part (224 crop of the 256 bicubic resize) is
# how the published figure was measured.
_base_ = './ghostnetv2-1.0x_8xb128_in1k.py'
model = dict(backbone=dict(type='GhostNet'))
