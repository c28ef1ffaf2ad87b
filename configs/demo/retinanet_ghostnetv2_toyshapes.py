# Demo: RetinaNet + FPN with a GhostNetV2-1.0x backbone on ToyShapes, trained from
# scratch on a CPU in a few minutes:
#
#   python -m ghostnetv2_mm.datasets.toy_shapes data/toy_shapes
#   python tools/train.py configs/demo/retinanet_ghostnetv2_toyshapes.py
#   python tools/test.py configs/demo/retinanet_ghostnetv2_toyshapes.py \
#       work_dirs/retinanet_ghostnetv2_toyshapes/iter_600.pth --show-dir vis
#
# ToyShapes (ghostnetv2_mm/datasets/toy_shapes.py): 128x128 COCO-format images with 1-4
# circles, squares and triangles, 20-60 px across. The model is mmdet's RetinaNet made
# small for that: GhostNetV2 from scratch (BN in training mode; no ImageNet weights
# offline) tapped at strides 8 / 16 / 32 (40 / 112 / 160 channels), a 64-channel FPN
# over strides 8-64, anchors from 16 px, 2-conv heads.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::retinanet/retinanet_tta.py',
    './_base_/toyshapes_detection.py'
]

channels = 64  # FPN / head width (256 in the COCO config)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(_base_.scratch_backbone),
    neck=dict(in_channels=[40, 112, 160], out_channels=channels, start_level=0,
              add_extra_convs='on_input', num_outs=4),
    bbox_head=dict(
        num_classes=3,
        in_channels=channels,
        feat_channels=channels,
        stacked_convs=2,
        # base anchors of 2 x stride: 16 / 32 / 64 / 128 px (x 1, 1.26, 1.59)
        anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32, 64])),
    test_cfg=dict(nms_pre=300, max_per_img=20))
