"""Export wrappers: a whole OpenMMLab model as one tensor-in, tensors-out module.

They follow mmdeploy's end-to-end conventions, so code written for mmdeploy's ONNX
files reads these:

* input ``input``: the normalised, padded batch (N, 3, H, W), float32;
* detectors: ``dets`` (N, K, 5: x1, y1, x2, y2, score; best first, in input pixels,
  clipped to the input) and ``labels`` (N, K), K = the config's ``max_per_img``
  (rows past the last detection: score 0, label -1);
* segmentors: ``output`` (N, 1, H, W) int64 class indices at the input resolution.

Every size is read from the input tensor, never from Python numbers, so a graph
traced at one size holds at every size (``torch.onnx.operators.shape_as_tensor``,
sizes under tracing). The post-processing repeats the toolkits' own ``predict``
(RetinaNet: ``BaseDenseHead._predict_by_feat_single`` and ``_bbox_post_process``;
mmseg: ``EncoderDecoder.inference`` in whole mode and ``postprocess_result``) in
batched, traceable form; ``verify.py`` compares the two.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.onnx.operators import shape_as_tensor

from .nms import multiclass_nms


def _clamp_max(value, limit: int):
    """``min(value, limit)`` for a Python int or a traced 0-d size."""
    if isinstance(value, Tensor):
        return torch.clamp(value, max=limit)
    return min(value, limit)


def anchor_grid(base_anchors: Tensor, stride: Sequence[float], feat: Tensor) -> Tensor:
    """All anchors of one level, ordered as mmdet's ``AnchorGenerator.grid_priors``
    (row-major over the feature map, base anchors innermost), from ``feat``'s size."""
    shape = shape_as_tensor(feat)
    height, width = shape[-2], shape[-1]
    shift_x = torch.arange(width, device=feat.device).to(base_anchors.dtype) * stride[0]
    shift_y = torch.arange(height, device=feat.device).to(base_anchors.dtype) * stride[1]
    xx = shift_x.view(1, -1) + torch.zeros_like(shift_y).view(-1, 1)
    yy = shift_y.view(-1, 1) + torch.zeros_like(shift_x).view(1, -1)
    shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
    return (shifts + base_anchors.view(1, -1, 4)).reshape(-1, 4)


def decode_deltas(priors: Tensor, deltas: Tensor, coder, limits: Tensor) -> Tensor:
    """mmdet's ``delta2bbox`` (``DeltaXYWHBBoxCoder``) on (N, K, 4) tensors, clipping to
    ``limits`` = (W, H, W, H) when the coder clips; same operation order, so the
    same float results."""
    means = deltas.new_tensor(coder.means)
    stds = deltas.new_tensor(coder.stds)
    denorm = deltas * stds + means
    dxy, dwh = denorm[..., :2], denorm[..., 2:]
    pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
    pwh = priors[..., 2:] - priors[..., :2]
    dxy_wh = pwh * dxy
    # (the ratio clip is a decode() argument in mmdet, left at its default by the heads)
    max_ratio = abs(math.log(16 / 1000))
    if coder.add_ctr_clamp:
        dxy_wh = torch.clamp(dxy_wh, max=coder.ctr_clamp, min=-coder.ctr_clamp)
        dwh = torch.clamp(dwh, max=max_ratio)
    else:
        dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if coder.clip_border:
        boxes = torch.minimum(boxes.clamp(min=0), limits)
    return boxes


def _input_limits(x: Tensor) -> Tensor:
    """(W, H, W, H) of the input batch, as a float tensor (traced under export)."""
    hw = shape_as_tensor(x)[2:].to(x.dtype)
    return torch.cat([hw.flip(0), hw.flip(0)])


class DenseDetectorExport(nn.Module):
    """A single-stage anchor-based mmdet detector (RetinaNet) with its test-time
    post-processing: per level the ``nms_pre`` best (anchor, class) pairs scoring above
    ``score_thr``, box decoding, the ``min_bbox_size`` filter, class-aware NMS and the
    ``max_per_img`` best."""

    output_names = ('dets', 'labels')

    def __init__(self, detector: nn.Module):
        super().__init__()
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        from mmdet.models.task_modules.prior_generators import AnchorGenerator
        head = detector.bbox_head
        problems = []
        if not isinstance(getattr(head, 'prior_generator', None), AnchorGenerator):
            problems.append('priors from an AnchorGenerator')
        if not isinstance(getattr(head, 'bbox_coder', None), DeltaXYWHBBoxCoder):
            problems.append('a DeltaXYWHBBoxCoder')
        if not getattr(head, 'use_sigmoid_cls', False):
            problems.append('sigmoid classification')
        cfg = head.test_cfg
        if cfg is None or cfg.get('nms', {}).get('type', 'nms') != 'nms':
            problems.append("test_cfg.nms.type='nms'")
        if problems:
            raise NotImplementedError(
                f'{type(head).__name__}: ONNX export supports dense heads with '
                + ', '.join(problems) + ' (as RetinaNet has); this head differs')
        if cfg.get('score_thr', 0) < 0:
            raise ValueError(f"test_cfg.score_thr={cfg['score_thr']}: must be >= 0")
        self.detector = detector
        self.nms_pre = cfg.get('nms_pre', -1)
        self.score_thr = cfg.get('score_thr', 0)
        self.min_bbox_size = cfg.get('min_bbox_size', -1)
        self.iou_thr = cfg['nms']['iou_threshold']
        self.max_per_img = cfg['max_per_img']
        self.num_classes = head.cls_out_channels

    def forward(self, input: Tensor) -> Tuple[Tensor, Tensor]:
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(input))
        n, c = input.shape[0], self.num_classes
        boxes, scores, labels = [], [], []
        for level, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            score = cls.permute(0, 2, 3, 1).reshape(n, -1, c).sigmoid()
            delta = reg.permute(0, 2, 3, 1).reshape(n, -1, 4)
            anchors = anchor_grid(head.prior_generator.base_anchors[level].to(input),
                                  head.prior_generator.strides[level], cls)
            flat = score.reshape(n, -1)
            k = flat.shape[1] if self.nms_pre < 0 else _clamp_max(flat.shape[1], self.nms_pre)
            top_scores, top = flat.topk(k, dim=1)
            anchor_idx = top // c
            boxes.append(decode_deltas(
                anchors.index_select(0, anchor_idx.reshape(-1)).reshape(n, -1, 4),
                torch.gather(delta, 1, anchor_idx.unsqueeze(-1).expand(-1, -1, 4)),
                head.bbox_coder, _input_limits(input)))
            scores.append(top_scores)
            labels.append(top % c)
        boxes, scores, labels = (torch.cat(t, dim=1) for t in (boxes, scores, labels))
        if self.min_bbox_size >= 0:
            wh = boxes[..., 2:] - boxes[..., :2]
            big = (wh > self.min_bbox_size).all(dim=-1)
            scores = torch.where(big, scores, torch.zeros_like(scores))
        return multiclass_nms(boxes, scores, labels, c, self.iou_thr, self.score_thr,
                              self.max_per_img)


class SegmentorExport(nn.Module):
    """An mmseg ``EncoderDecoder`` (whole-image inference): decode-head logits resized
    bilinearly to the input size, then per-pixel class indices (argmax; a threshold on
    the sigmoid for single-channel heads)."""

    output_names = ('output',)

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        mode = (segmentor.test_cfg or {}).get('mode', 'whole')
        if mode != 'whole':
            raise NotImplementedError(f"test_cfg.mode={mode!r}: ONNX export supports "
                                      "'whole' inference only (export the network and "
                                      'slide windows outside it)')
        if type(segmentor).__name__ != 'EncoderDecoder':
            raise NotImplementedError(f'{type(segmentor).__name__}: ONNX export supports '
                                      'EncoderDecoder segmentors')
        self.segmentor = segmentor

    def forward(self, input: Tensor) -> Tensor:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(input))
        # (under tracing these sizes are traced values: the Resize stays dynamic)
        logits = F.interpolate(logits, size=tuple(input.shape[2:]), mode='bilinear',
                               align_corners=head.align_corners)
        if logits.shape[1] == 1:
            return (logits.sigmoid() > head.threshold).long()
        return logits.argmax(dim=1, keepdim=True)


class BackboneExport(nn.Module):
    """A backbone's tuple of feature maps (one ONNX output per ``out_indices`` entry)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.output_names = tuple(f'layer{i}' for i in backbone.out_indices)

    def forward(self, input: Tensor) -> List[Tensor]:
        return list(self.backbone(input))


class ClassifierExport(nn.Module):
    """An mmpretrain ``ImageClassifier``'s class scores before the softmax."""

    output_names = ('logits',)

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, input: Tensor) -> Tensor:
        return self.classifier(input, mode='tensor')
