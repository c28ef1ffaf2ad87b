"""Box AP of a detector that runs outside PyTorch (``evaluate_detections``, what
``tools/analysis/int8_study.py --detector-config`` scores float32 and INT8 ONNX files
with): a predictor's detections are scored exactly as tools/test.py's path
(``Runner.test``) scores the PyTorch model. Tiny RetinaNet, 2 generated images."""
import copy
import json
import os

import pytest
import torch

from helpers import ROOT

TINY_RETINANET = os.path.join(ROOT, 'tests', 'configs', 'retinanet_ghostnetv2_toyshapes_tiny.py')


def _tiny_config(toy_root, work_dir):
    from mmengine.config import Config
    cfg = Config.fromfile(TINY_RETINANET)
    root = toy_root.rstrip('/') + '/'
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = root
    # one image per batch: Runner.test then runs each image alone, as a predictor does
    # (a batch would pad and regroup the convolutions: last-bit differences)
    cfg.test_dataloader.batch_size = 1
    cfg.test_evaluator.ann_file = root + 'annotations/instances_validation.json'
    # anchors from 16 px (the objects are 16-40 px) and 100 boxes per image: see below
    cfg.model.bbox_head.anchor_generator.octave_base_scale = 2
    cfg.model.test_cfg.max_per_img = 100
    cfg.visualizer.name = 'visualizer_test_detection_eval'
    cfg.work_dir = work_dir
    return cfg


def _ground_truth_predictor(toy_root):
    """``predict(image_path)``: the image's annotated boxes, score 1, as a detector
    that finds every object exactly would return them."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from ghostnetv2_mm.datasets.toy_shapes import CLASSES
    with open(os.path.join(toy_root, 'annotations', 'instances_validation.json')) as f:
        coco = json.load(f)
    label_of = {c['id']: CLASSES.index(c['name']) for c in coco['categories']}
    boxes = {}
    for image in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == image['id']]
        boxes[os.path.basename(image['file_name'])] = (
            torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]),
            torch.tensor([label_of[a['category_id']] for a in anns]))

    def predict(path):
        bboxes, labels = boxes[os.path.basename(path)]
        sample = DetDataSample()
        sample.pred_instances = InstanceData(bboxes=bboxes, labels=labels,
                                             scores=torch.ones(len(labels)))
        return sample
    return predict


def test_evaluate_detections_scores_as_tools_test_does(toy_root, tmp_path):
    from mmengine.dataset import Compose
    from mmengine.runner import Runner

    from ghostnetv2_mm.deployment.evaluation import evaluate_detections
    cfg = _tiny_config(toy_root, str(tmp_path))
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    model = runner.model.eval()
    # random weights would move the boxes anywhere: with the regression at zero every
    # box is an anchor, and among 100 anchors per image (random scores, score_thr 0)
    # some overlap the shapes, so the figures are no trivial zeros
    torch.nn.init.zeros_(model.bbox_head.retina_reg.weight)
    torch.nn.init.zeros_(model.bbox_head.retina_reg.bias)
    expected = runner.test()  # tools/test.py's path: the test loop and evaluator
    pipeline = Compose([s for s in cfg.test_pipeline if 'LoadAnnotations' not in s['type']])

    def pytorch_predictor(path):  # the same model on the same image, outside the loop
        data = pipeline(dict(img_path=path))
        with torch.no_grad():
            return model.test_step(dict(inputs=[data['inputs']],
                                        data_samples=[data['data_samples']]))[0]

    seen = []
    got = evaluate_detections(cfg, pytorch_predictor,
                              progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]  # every test image, one at a time
    assert expected['coco/bbox_mAP_50'] > 0
    assert got == expected
    # a detector that finds every object exactly scores 1 (image ids and sizes of the
    # predictions are those of the annotations)
    perfect = evaluate_detections(cfg, _ground_truth_predictor(toy_root))
    assert perfect['coco/bbox_mAP'] == perfect['coco/bbox_mAP_50'] == 1.0


def test_evaluate_detections_refuses_a_missing_test_set(toy_root, tmp_path):
    from ghostnetv2_mm.deployment.evaluation import evaluate_detections
    from ghostnetv2_mm.errors import UserError
    cfg = _tiny_config(toy_root, str(tmp_path))
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'nowhere') + '/'
    with pytest.raises(UserError, match='test annotations .*nowhere.* do not exist'):
        evaluate_detections(cfg, lambda path: None)
