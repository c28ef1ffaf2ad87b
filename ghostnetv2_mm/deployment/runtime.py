"""Run an exported file on images with onnxruntime: the config's own test pipeline
and data preprocessor prepare the input, the results come back as the toolkit's data
samples, and the toolkit's visualiser draws them (no mmdeploy, no PyTorch model)."""
import copy
from typing import Optional

import numpy as np
import torch

from .export import onnx_session, run_onnx


def _test_pipeline(cfg):
    """The config's test pipeline without annotation loading (no labels at inference)."""
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    return [copy.deepcopy(step) for step in pipeline
            if 'LoadAnnotations' not in step['type']]


def dataset_meta(cfg) -> dict:
    """Class names (and palette) for drawing: the config's metainfo, else its dataset
    class's."""
    from mmengine.registry import DATASETS
    dataset = cfg.test_dataloader.dataset
    meta = dict(dataset.get('metainfo') or {})
    dataset_cls = DATASETS.get(dataset['type'])
    defaults = dict(getattr(dataset_cls, 'METAINFO', {}) or {})
    if 'classes' in meta and len(meta['classes']) != len(defaults.get('classes', ())):
        defaults.pop('palette', None)  # the default palette belongs to other classes
    defaults.update(meta)
    return defaults


class OnnxPredictor:
    """An exported detector or segmentor with its config's preprocessing.

    Args:
        cfg (Config): The config the file was exported from.
        onnx_file (str): The exported file.
        threads (int, optional): onnxruntime intra-op threads.
    """

    def __init__(self, cfg, onnx_file: str, threads: Optional[int] = None):
        from mmengine.dataset import Compose

        from ghostnetv2_mm.utils.toolkit import setup_toolkit
        self.scope = setup_toolkit(cfg)
        registry = __import__(f'{self.scope}.registry', fromlist=['MODELS'])
        self.cfg = cfg
        self.pipeline = Compose(_test_pipeline(cfg))
        self.preprocessor = registry.MODELS.build(cfg.model.data_preprocessor)
        self.session = onnx_session(onnx_file, threads)
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs in (['dets', 'labels'], ['dets', 'labels', 'masks']):
            self.task = 'detection'
        elif outputs == ['output']:
            self.task = 'segmentation'
        else:
            raise ValueError(f'{onnx_file}: outputs {outputs} are neither a detector\'s '
                             "('dets', 'labels'[, 'masks']) nor a segmentor's ('output',)")

    def preprocess(self, image_path: str):
        """(batch (1, 3, H, W) float32, data sample with the image's metainfo)."""
        data = self.pipeline(dict(img_path=image_path))
        with torch.no_grad():
            batch = self.preprocessor(dict(inputs=[data['inputs']],
                                           data_samples=[data['data_samples']]),
                                      training=False)
        return batch['inputs'], batch['data_samples'][0]

    def __call__(self, image_path: str):
        """The toolkit's data sample with predictions in original image pixels."""
        inputs, sample = self.preprocess(image_path)
        outputs = run_onnx(self.session, inputs)
        if self.task == 'detection':
            return self._detections(outputs, sample)
        return self._segmentation(outputs, sample)

    def _detections(self, outputs, sample):
        from mmengine.structures import InstanceData
        dets, labels = (torch.from_numpy(np.asarray(o))[0] for o in outputs[:2])
        real = dets[:, 4] > 0
        dets, labels = dets[real], labels[real]
        scale_w, scale_h = sample.metainfo.get('scale_factor', (1.0, 1.0))
        boxes = dets[:, :4] / dets.new_tensor([scale_w, scale_h, scale_w, scale_h])
        h, w = sample.metainfo['ori_shape'][:2]
        result = InstanceData(scores=dets[:, 4], labels=labels.long())
        if len(outputs) > 2:
            # Mask R-CNN: each box's map pasted into the original image, as mmdet's
            # predict(rescale=True) pastes it (the rescaled box, then the threshold)
            from .wrappers import paste_masks
            threshold = self.cfg.model.test_cfg.rcnn.mask_thr_binary
            masks = torch.from_numpy(np.asarray(outputs[2]))[0][real]
            result.masks = paste_masks(masks, boxes, h, w, threshold)
        boxes[:, 0::2].clamp_(0, w)
        boxes[:, 1::2].clamp_(0, h)
        result.bboxes = boxes
        sample.pred_instances = result
        return sample

    @staticmethod
    def _segmentation(outputs, sample):
        import torch.nn.functional as F
        from mmengine.structures import PixelData
        labels = torch.from_numpy(np.asarray(outputs[0]))[0:1].float()  # (1, 1, H, W)
        h, w = sample.metainfo['img_shape'][:2]
        labels = labels[..., :h, :w]  # drop any padding
        ori = tuple(sample.metainfo['ori_shape'][:2])
        if tuple(labels.shape[-2:]) != ori:
            # Class indices, so nearest (mmseg resizes the logits bilinearly before
            # its argmax, which the graph's fixed output cannot: borders may differ).
            labels = F.interpolate(labels, size=ori, mode='nearest')
        sample.pred_sem_seg = PixelData(data=labels[0].long())
        return sample

    def draw(self, image_path: str, sample, out_file: str, score_thr: float = 0.3):
        """Draw ``sample``'s predictions on the image with the toolkit's visualiser."""
        import mmcv
        from mmengine.registry import VISUALIZERS
        vis_cfg = copy.deepcopy(self.cfg.get('visualizer') or dict(
            type='DetLocalVisualizer' if self.task == 'detection' else 'SegLocalVisualizer'))
        vis_cfg['name'] = f'onnx_infer_{id(self)}'
        vis_cfg.pop('vis_backends', None)
        visualizer = VISUALIZERS.build(vis_cfg)
        visualizer.dataset_meta = dataset_meta(self.cfg)
        image = mmcv.imread(image_path, channel_order='rgb')
        kwargs = dict(pred_score_thr=score_thr) if self.task == 'detection' else {}
        visualizer.add_datasample('onnx', image, sample, draw_gt=False, show=False,
                                  out_file=out_file, **kwargs)
