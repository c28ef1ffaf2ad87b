# GhostNetV2-1.0x with ImageNet weights (ghostnetv2_backbone.py), dilated to output
# stride 8 as mmseg's "-d8" models: the ADE20K configs' backbone.
_base_ = ['./ghostnetv2_backbone.py']

ghostnetv2_d8_backbone = dict(
    _base_.ghostnetv2_backbone,
    # Stages 5-8 (strides 16 and 32 in the classifier) keep stride 1 and dilate by 2
    # and 4 instead.
    strides=(1, 2, 1, 2, 1, 1, 1, 1, 1),
    dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4),
    # The last block of each resolution: 24 ch at /4, 40 ch at /8, 112 ch (dilated 2),
    # 160 ch (dilated 4); all but the first at /8 here.
    out_indices=(3, 5, 7, 9))
