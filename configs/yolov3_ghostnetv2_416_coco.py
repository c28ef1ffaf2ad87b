# YOLOv3 with a GhostNetV2-1.0x backbone, COCO 2017, multi-scale training (320-416),
# 416x416 testing, 30 epochs over a 10x repeated training set (mmdet calls it "300e"),
# 8 GPUs x 24 images. The paper's detection setting (YOLOv3 on COCO against
# MobileNetV2 and GhostNet).
#
#   bash tools/dist_train.sh configs/yolov3_ghostnetv2_416_coco.py 8
#
# Only the backbone and the neck's input widths differ from mmdet's own
# yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py (23.9 box AP), which this inherits
# unchanged: data pipeline, anchors, head, schedule, optimizer.
#
# The backbone (_base_/ghostnetv2_backbone.py) taps the last block of stride 8 / 16 / 32,
# 40 / 112 / 160 channels, as MobileNetV2's (2, 4, 6) tap its last block of each stride
# (32 / 96 / 320). mmdet switches MobileNetV2 to LeakyReLU here; GhostNetV2 keeps the
# ReLU its ImageNet weights were trained with. BatchNorm trains: 24 images per GPU are
# plenty. YOLOV3Neck lists its inputs deepest first.
_base_ = ['mmdet::yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py',
          './_base_/ghostnetv2_backbone.py']

model = dict(backbone=dict(_base_.ghostnetv2_backbone),
             neck=dict(in_channels=[160, 112, 40]))
