"""Run an exported file on images with onnxruntime: the config's own test pipeline
and data preprocessor prepare the input, the results come back as the toolkit's data
samples, and the toolkit's visualiser draws them (no mmdeploy, no PyTorch model)."""
import copy
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..errors import UserError
from ..utils.fileio import atomic_output
from ..utils.toolkit import dataset_meta
from .export import (METADATA_PREFIX, export_metadata, onnx_session, read_onnx_metadata,
                     run_onnx)


def _test_pipeline(cfg):
    """The config's test pipeline without annotation loading (no labels at inference)."""
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    return [copy.deepcopy(step) for step in pipeline
            if 'LoadAnnotations' not in step['type']]


# Beyond this ratio of an image's long side to its short one, resizing the long side to
# a network's input size leaves the short side below one pixel (320 / 10000 < 1).
EXTREME_ASPECT = 100


def pipeline_failure(image_path: str, exc: Exception) -> str:
    """The one line for a test pipeline that failed on ``image_path``: whether the file
    is no image, or an image (of which the size is named) that the pipeline cannot
    prepare, e.g. one so elongated that the resize leaves a side of no pixels."""
    import mmcv
    error = f'{type(exc).__name__}: {" ".join(str(exc).split())[:200]}'
    try:
        image = mmcv.imread(image_path)
    except Exception:  # noqa: BLE001 - mmcv's readers raise several kinds
        image = None
    if image is None:
        return f'image {image_path!r} cannot be read as an image: {error}'
    h, w = image.shape[:2]
    hint = ''
    if max(h, w) >= EXTREME_ASPECT * min(h, w):
        hint = ('; its aspect ratio is too extreme: resized to the input size, the short '
                'side becomes less than one pixel (crop or pad the image first)')
    return (f'image {image_path!r} ({w}x{h} pixels) is an image, but the config\'s test '
            f'pipeline cannot prepare it{hint} ({error})')


def drawable(sample):
    """``sample`` as the toolkits' visualisers draw it correctly: a segmentation map
    as a NumPy array. mmseg's visualiser indexes the image with a boolean torch mask,
    which NumPy reads as the integer 1 when the image has one pixel (IndexError)."""
    seg = getattr(sample, 'pred_sem_seg', None)
    if seg is not None and isinstance(seg.data, torch.Tensor):
        from mmengine.structures import PixelData
        sample = sample.clone()
        sample.pred_sem_seg = PixelData(data=seg.data.cpu().numpy(), metainfo=seg.metainfo)
    return sample


class ImagePreparer:
    """An image file as the config prepares it for its model: the test pipeline
    (loading, resize) and the data preprocessor (normalise, pad).

    Args:
        cfg (Config): The model's config.
    """

    def __init__(self, cfg):
        from mmengine.dataset import Compose

        from ghostnetv2_mm.utils.toolkit import setup_toolkit
        self.scope = setup_toolkit(cfg)
        registry = __import__(f'{self.scope}.registry', fromlist=['MODELS'])
        self.pipeline = Compose(_test_pipeline(cfg))
        self.preprocessor = registry.MODELS.build(cfg.model.data_preprocessor)

    def __call__(self, image_path: str):
        """(batch (1, 3, H, W) float32, data sample with the image's metainfo);
        :class:`UserError` naming the file when it is not a readable image."""
        try:
            data = self.pipeline(dict(img_path=image_path))
        except Exception as exc:  # noqa: BLE001 - any reader failure: name the file
            raise UserError(pipeline_failure(image_path, exc)) from exc
        if data is None:
            raise UserError(f'image {image_path!r} cannot be read as an image')
        with torch.no_grad():
            batch = self.preprocessor(dict(inputs=[data['inputs']],
                                           data_samples=[data['data_samples']]),
                                      training=False)
        return batch['inputs'], batch['data_samples'][0]


def metadata_mismatches(cfg, onnx_file: str, config_name: str = '') -> Tuple[List[str], List[str]]:
    """Compare what ``onnx_file`` records it was made from (``export_metadata``)
    with what ``cfg`` prescribes. Returns (mismatches, notes): a mismatch (another
    normalisation, other input conventions or classes) makes the file's results wrong
    with this config; notes say what could not be checked or only differs in name."""
    recorded = read_onnx_metadata(onnx_file)
    if not any(k.startswith(METADATA_PREFIX) for k in recorded):
        return [], [f'{onnx_file} records nothing about what it was made from (exported '
                    'before ghostnetv2-mm recorded it): its normalisation and classes '
                    'cannot be checked against the config']
    expected = export_metadata(cfg, config_name, recorded.get(METADATA_PREFIX + 'task', ''))
    mismatches, notes = [], []
    for key, want in expected.items():
        name = key[len(METADATA_PREFIX):]
        have = recorded.get(key)
        if have is None or have == want:
            continue
        if name == 'source':
            notes.append(f'{onnx_file} was exported from {have}; checked against '
                         f'{want or "the given config"}')
        else:
            mismatches.append(f'{name}: the file has {have}, the config {want}')
    return mismatches, notes


class OnnxPredictor:
    """An exported detector or segmentor with its config's preprocessing.

    Args:
        cfg (Config): The config the file was exported from.
        onnx_file (str): The exported file.
        threads (int, optional): onnxruntime intra-op threads.
    """

    def __init__(self, cfg, onnx_file: str, threads: Optional[int] = None):
        self.cfg = cfg
        self.prepare = ImagePreparer(cfg)
        self.scope = self.prepare.scope
        try:
            self.session = onnx_session(onnx_file, threads)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors: name the file
            raise UserError(f'{onnx_file!r} is not a readable ONNX file: '
                            f'{" ".join(str(exc).split())[:300]}') from exc
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs in (['dets', 'labels'], ['dets', 'labels', 'masks']):
            self.task = 'detection'
        elif outputs == ['output']:
            self.task = 'segmentation'
        else:
            raise UserError(f'{onnx_file}: outputs {outputs} are neither a detector\'s '
                            "('dets', 'labels'[, 'masks']) nor a segmentor's ('output',)")

    def preprocess(self, image_path: str):
        """(batch (1, 3, H, W) float32, data sample with the image's metainfo)."""
        return self.prepare(image_path)

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
        with atomic_output(out_file) as out:
            visualizer.add_datasample('onnx', image, drawable(sample), draw_gt=False,
                                      show=False, out_file=out.path, **kwargs)
