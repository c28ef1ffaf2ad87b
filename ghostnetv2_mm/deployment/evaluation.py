"""Score a detector that runs outside PyTorch (an exported ONNX file, float32 or INT8)
on a config's test set with the config's own evaluator (mmdet's ``CocoMetric`` for the
detection configs), so its box AP compares with what ``tools/test.py`` reports for the
PyTorch model."""
import importlib
import os
from typing import Callable, Dict, Optional

from ..errors import UserError


def _test_dataset(cfg):
    """The config's test dataset (annotations loaded, no image read)."""
    from ghostnetv2_mm.utils.toolkit import setup_toolkit
    scope = setup_toolkit(cfg)
    if scope != 'mmdet':
        raise UserError(f'evaluate_detections: the config is an {scope} config; only '
                        'detection configs (mmdet) are scored here')
    loader = cfg.get('test_dataloader')
    if not loader or not cfg.get('test_evaluator'):
        raise UserError('evaluate_detections: the config has no test_dataloader / '
                        'test_evaluator to score with')
    dataset_cfg = loader['dataset']
    ann_file = os.path.join(dataset_cfg.get('data_root', ''), dataset_cfg.get('ann_file', ''))
    if dataset_cfg.get('ann_file') and not os.path.isfile(ann_file):
        raise UserError(f'evaluate_detections: the test annotations {ann_file!r} do not '
                        'exist (generate or download the dataset first)')
    registry = importlib.import_module(f'{scope}.registry')
    return registry.DATASETS.build(dataset_cfg)


def evaluate_detections(cfg, predict: Callable,
                        progress: Optional[Callable[[int, int], None]] = None
                        ) -> Dict[str, float]:
    """Run ``predict`` on every image of ``cfg``'s test dataset, one at a time, and
    return the metrics of ``cfg``'s test evaluator, as ``Runner.test`` computes them
    (keys such as ``coco/bbox_mAP``, ``coco/bbox_mAP_50``).

    Args:
        cfg (Config): A detection config (its test dataloader's dataset and its
            test evaluator are used; the images are read from the dataset's paths).
        predict (callable): ``predict(image_path)`` -> a ``DetDataSample`` whose
            ``pred_instances`` (bboxes in original-image pixels, scores, labels;
            masks for Mask R-CNN) describe that image, e.g.
            :class:`~ghostnetv2_mm.deployment.runtime.OnnxPredictor`.
        progress (callable, optional): Called as ``progress(done, total)``.
    """
    from mmengine.evaluator import Evaluator
    dataset = _test_dataset(cfg)
    total = len(dataset)
    if total == 0:
        raise UserError('evaluate_detections: the test dataset has no images')
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    for index in range(total):
        info = dataset.get_data_info(index)
        sample = predict(info['img_path'])
        # the evaluator matches predictions to the annotations by image id and needs
        # the original size: both come from the dataset, not from what the predictor
        # read (its pipeline runs on the path alone)
        sample.set_metainfo(dict(img_id=info['img_id'],
                                 ori_shape=(info['height'], info['width'])))
        evaluator.process(data_samples=[sample])
        if progress is not None:
            progress(index + 1, total)
    return evaluator.evaluate(total)

