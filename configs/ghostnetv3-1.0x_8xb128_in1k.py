# GhostNetV3 1.0x on ImageNet-1k: GhostNetV2 1.0x's classifier with GhostNetV3's
# re-parameterisable branches (training layout; same head), for the official V3 weights
# (published: 77.1 top-1), the only released V3 width:
#   python tools/test.py configs/ghostnetv3-1.0x_8xb128_in1k.py \
#       https://github.com/huawei-noah/Efficient-AI-Backbones/releases/download/GhostNetV3/ghostnetv3-1.0.pth.tar
# or by name: mmpretrain.get_model('ghostnetv3-1.0x_8xb128_in1k', pretrained=True).
# The training part is GhostNetV2's recipe (ghostnetv2-1.0x_8xb128_in1k.py), not V3's
# (which adds knowledge distillation); the test part is the published evaluation.
_base_ = './ghostnetv2-1.0x_8xb128_in1k.py'
model = dict(backbone=dict(type='GhostNetV3'))
