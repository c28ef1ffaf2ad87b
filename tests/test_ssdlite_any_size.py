"""SSDLite trains with any dataset size (issue 19, case 12).

SSDNeck's extra levels end in 1x1 maps, where training-mode BatchNorm cannot
normalise a single image; a last batch of one image used to stop the run. The
config drops the last incomplete batch (``train_dataloader.drop_last``).
"""
import json
import os

from helpers import ROOT, tiny_det_config

SSDLITE = 'configs/ssdlite_ghostnetv2_coco.py'


def test_ssdlite_trains_when_the_last_batch_holds_one_image(tmp_path):
    from mmengine.runner import Runner

    from ghostnetv2_mm.datasets.toy_shapes import make_toy_shapes
    from ghostnetv2_mm.utils.toolkit import setup_toolkit
    root = str(tmp_path / 'toy')
    make_toy_shapes(root, num_train=4, num_val=2, size=(64, 64), max_objects=2,
                    radius=(8, 20), seed=1)
    # one training image without objects: filter_empty_gt leaves 3, batches of 2
    ann = os.path.join(root, 'annotations', 'instances_training.json')
    with open(ann) as f:
        coco = json.load(f)
    empty = coco['images'][0]['id']
    coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] != empty]
    with open(ann, 'w') as f:
        json.dump(coco, f)
    cfg = tiny_det_config(os.path.join(ROOT, SSDLITE), root, str(tmp_path / 'work'),
                          scale=(96, 96))  # the extra levels reach 1x1 at 96 px
    cfg.train_cfg.val_interval = 100  # (training is what this test is about)
    assert cfg.train_dataloader.batch_size == 2
    setup_toolkit(cfg)
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == 3
    runner.train()
    assert runner.iter == 1  # the batch of the third image was dropped, not crashed on
