# YOLOv3 with a GhostNetV2-1.0x backbone, COCO 2017, 320x320 training and testing,
# 30 epochs over a 10x repeated training set (mmdet calls it "300e"), 8 GPUs x 24
# images. The paper's detection setting (YOLOv3 on COCO against MobileNetV2 and
# GhostNet).
#
#   bash tools/dist_train.sh configs/yolov3_ghostnetv2_320_coco.py 8
#
# Only the backbone and the neck's input widths differ from mmdet's own
# yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py (22.2 box AP), which this inherits
# unchanged: data pipeline, anchors, head, schedule, optimizer. The model part is that
# of yolov3_ghostnetv2_416_coco.py (see there why).
_base_ = ['mmdet::yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py',
          './_base_/ghostnetv2_backbone.py']

model = dict(backbone=dict(_base_.ghostnetv2_backbone),
             neck=dict(in_channels=[160, 112, 40]))
