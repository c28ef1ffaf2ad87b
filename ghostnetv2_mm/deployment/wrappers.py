"""Export wrappers: a whole OpenMMLab model as one tensor-in, tensors-out module.

They follow mmdeploy's end-to-end conventions, so code written for mmdeploy's ONNX
files reads these:

* input ``input``: the normalised, padded batch (N, 3, H, W), float32;
* detectors: ``dets`` (N, K, 5: x1, y1, x2, y2, score; best first, in input pixels,
  clipped to the input) and ``labels`` (N, K), K = the config's ``max_per_img``
  (rows past the last detection: score 0, label -1); Mask R-CNN adds ``masks``
  (N, K, 28, 28), each detection's mask-head map for its class (probabilities, to
  paste into the box);
* segmentors: ``output`` (N, 1, H, W) int64 class indices at the input resolution.

Every size is read from the input tensor, never from Python numbers, so a graph
traced at one size holds at every size (``torch.onnx.operators.shape_as_tensor``,
sizes under tracing). The post-processing repeats the toolkits' own ``predict``
(RetinaNet and the RPN: ``_predict_by_feat_single`` and ``_bbox_post_process``;
Mask R-CNN: ``StandardRoIHead.predict_bbox`` and ``predict_mask``; mmseg:
``EncoderDecoder.inference`` in whole mode and ``postprocess_result``) in batched,
traceable form; ``verify.py`` compares the two.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.onnx.operators import shape_as_tensor

from .nms import batched_nms


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


def _check_dense_head(head, what: str) -> None:
    """Refuse dense heads whose post-processing the export does not repeat."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
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
            f'{type(head).__name__}: ONNX export supports {what} with '
            + ', '.join(problems) + '; this head differs')
    if cfg.get('score_thr', 0) < 0:
        raise ValueError(f"test_cfg.score_thr={cfg['score_thr']}: must be >= 0")


def dense_candidates(head, cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                     input: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """A dense head's candidates before NMS, as its ``predict_by_feat`` picks them:
    per level the ``nms_pre`` best (anchor, class) pairs, their boxes decoded and
    clipped to the input, and candidates not wider and taller than ``min_bbox_size``
    scored 0. Returns (N, M, ...) ``boxes``, ``scores``, ``labels`` and ``levels``."""
    cfg = head.test_cfg
    nms_pre, min_size = cfg.get('nms_pre', -1), cfg.get('min_bbox_size', -1)
    n, c = input.shape[0], head.cls_out_channels
    boxes, scores, labels, levels = [], [], [], []
    for level, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
        score = cls.permute(0, 2, 3, 1).reshape(n, -1, c).sigmoid()
        delta = reg.permute(0, 2, 3, 1).reshape(n, -1, 4)
        anchors = anchor_grid(head.prior_generator.base_anchors[level].to(input),
                              head.prior_generator.strides[level], cls)
        flat = score.reshape(n, -1)
        k = flat.shape[1] if nms_pre <= 0 else _clamp_max(flat.shape[1], nms_pre)
        top_scores, top = flat.topk(k, dim=1)
        anchor_idx = top // c
        boxes.append(decode_deltas(
            anchors.index_select(0, anchor_idx.reshape(-1)).reshape(n, -1, 4),
            torch.gather(delta, 1, anchor_idx.unsqueeze(-1).expand(-1, -1, 4)),
            head.bbox_coder, _input_limits(input)))
        scores.append(top_scores)
        labels.append(top % c)
        levels.append(torch.full_like(top, level))
    boxes, scores, labels, levels = (torch.cat(t, dim=1)
                                     for t in (boxes, scores, labels, levels))
    if min_size >= 0:
        wh = boxes[..., 2:] - boxes[..., :2]
        scores = torch.where((wh > min_size).all(dim=-1), scores, torch.zeros_like(scores))
    return boxes, scores, labels, levels


class DenseDetectorExport(nn.Module):
    """A single-stage anchor-based mmdet detector (RetinaNet) with its test-time
    post-processing: ``dense_candidates``, class-aware NMS above ``score_thr`` and the
    ``max_per_img`` best."""

    output_names = ('dets', 'labels')

    def __init__(self, detector: nn.Module):
        super().__init__()
        _check_dense_head(detector.bbox_head, 'dense heads (as RetinaNet has)')
        self.detector = detector

    def forward(self, input: Tensor) -> Tuple[Tensor, Tensor]:
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(input))
        boxes, scores, labels, _ = dense_candidates(head, cls_scores, bbox_preds, input)
        cfg = head.test_cfg
        return batched_nms(boxes, scores, labels, cfg['nms']['iou_threshold'],
                           cfg.get('score_thr', 0), cfg['max_per_img'])


def roi_features(extractor, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
    """mmdet's ``SingleRoIExtractor`` on (R, 5) ``rois`` (batch index, x1, y1, x2, y2):
    each RoI pooled (torchvision's RoIAlign, exported as ONNX ``RoiAlign``) from the
    level its size maps to, ``floor(log2(sqrt(w * h) / finest_scale + 1e-6))``
    clamped to the levels there are. Each level pools only its own RoIs (a
    data-dependent number, which ONNX handles); one gather puts them back in order."""
    from torchvision.ops import roi_align
    layers = extractor.roi_layers
    scale = ((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])).sqrt()
    level = torch.floor(torch.log2(scale / extractor.finest_scale + 1e-6))
    level = level.clamp(min=0, max=len(layers) - 1)
    order, pooled = [], []
    for i, layer in enumerate(layers):
        index = torch.nonzero(level == i).flatten()
        order.append(index)
        pooled.append(roi_align(feats[i], rois.index_select(0, index), layer.output_size,
                                layer.spatial_scale, layer.sampling_ratio, layer.aligned))
    # pooled rows are grouped by level; row j of the result is the one from RoI j
    return torch.cat(pooled).index_select(0, torch.cat(order).argsort())


def _batch_rois(boxes: Tensor) -> Tensor:
    """(N, K, 4) boxes as (N * K, 5) RoIs with their image index first."""
    n, k = boxes.shape[:2]
    image = torch.arange(n, device=boxes.device).to(boxes.dtype).view(-1, 1, 1)
    return torch.cat([image.expand(-1, k, 1), boxes], dim=-1).reshape(-1, 5)


class TwoStageDetectorExport(nn.Module):
    """An mmdet two-stage detector (Faster / Mask R-CNN: RPN, ``StandardRoIHead``)
    with its test-time post-processing:

    1. RPN proposals: ``dense_candidates`` of the RPN head, NMS within each pyramid
       level (``test_cfg.rpn``), the ``max_per_img`` best;
    2. boxes: RoI features of the proposals, the bbox head's softmax scores and
       per-class boxes, class-aware NMS above ``score_thr`` (``test_cfg.rcnn``);
    3. masks (when the model has a mask head): RoI features of the detected boxes,
       the mask head's ``mask_size`` map of each box's class after the sigmoid.

    Outputs ``dets``, ``labels`` and ``masks`` (N, K, 28, 28 for Mask R-CNN), as
    mmdeploy's: a mask is pasted into its box and thresholded at
    ``mask_thr_binary`` outside the graph (``paste_masks``). Proposals the RPN padding
    adds (fewer than ``max_per_img`` survive) score 0 in the second stage.
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        _check_dense_head(detector.rpn_head, 'RPN heads (as Faster / Mask R-CNN have)')
        roi_head = detector.roi_head
        problems = []
        if type(roi_head).__name__ != 'StandardRoIHead':
            problems.append('a StandardRoIHead')
        extractors = [roi_head.bbox_roi_extractor]
        if roi_head.with_mask:
            extractors.append(roi_head.mask_roi_extractor)
            if roi_head.mask_head.class_agnostic:
                problems.append('class-specific masks')
        for extractor in extractors:
            if (type(extractor).__name__ != 'SingleRoIExtractor'
                    or any(type(layer).__name__ != 'RoIAlign' or not layer.aligned
                           or layer.pool_mode != 'avg' for layer in extractor.roi_layers)):
                problems.append('SingleRoIExtractors of aligned average RoIAlign')
                break
        bbox_head = roi_head.bbox_head
        if bbox_head.reg_class_agnostic or bbox_head.custom_cls_channels:
            problems.append('a bbox head with class-specific boxes and softmax scores')
        if roi_head.test_cfg.get('nms', {}).get('type', 'nms') != 'nms':
            problems.append("test_cfg.rcnn.nms.type='nms'")
        if problems:
            raise NotImplementedError(
                f'{type(detector).__name__}: ONNX export supports two-stage detectors with '
                + ', '.join(problems) + '; this one differs')
        self.detector = detector
        self.output_names = ('dets', 'labels', 'masks') if roi_head.with_mask else (
            'dets', 'labels')

    def proposals(self, feats: Sequence[Tensor], input: Tensor) -> Tensor:
        """(N, P, 5) RPN proposals with scores, P = ``test_cfg.rpn.max_per_img``."""
        head = self.detector.rpn_head
        cls_scores, bbox_preds = head(feats)
        boxes, scores, _, levels = dense_candidates(head, cls_scores, bbox_preds, input)
        cfg = head.test_cfg
        dets, _ = batched_nms(boxes, scores, levels, cfg['nms']['iou_threshold'],
                              cfg.get('score_thr', 0), cfg['max_per_img'])
        return dets

    def forward(self, input: Tensor) -> Tuple[Tensor, ...]:
        roi_head = self.detector.roi_head
        cfg = roi_head.test_cfg
        feats = self.detector.extract_feat(input)
        proposals = self.proposals(feats, input)
        n, p = proposals.shape[:2]
        bbox_feats = roi_features(roi_head.bbox_roi_extractor,
                                  feats[:roi_head.bbox_roi_extractor.num_inputs],
                                  _batch_rois(proposals[..., :4]))
        cls_score, bbox_pred = roi_head.bbox_head(bbox_feats)
        num_classes = roi_head.bbox_head.num_classes
        # softmax over classes and background (last), padding proposals scored 0
        scores = F.softmax(cls_score, dim=-1)[:, :num_classes].reshape(n, p, num_classes)
        scores = scores * (proposals[..., 4:] > 0).to(scores.dtype)
        boxes = decode_deltas(proposals[..., None, :4],
                              bbox_pred.reshape(n, p, num_classes, 4),
                              roi_head.bbox_head.bbox_coder, _input_limits(input))
        classes = torch.arange(num_classes, device=input.device).expand(n, p, num_classes)
        dets, labels = batched_nms(boxes.reshape(n, -1, 4), scores.reshape(n, -1),
                                   classes.reshape(n, -1), cfg['nms']['iou_threshold'],
                                   cfg['score_thr'], cfg['max_per_img'])
        if not roi_head.with_mask:
            return dets, labels
        # the mask head runs on the detections only (as in predict), not the padding
        k = dets.shape[1]
        real = (labels >= 0).reshape(-1)
        kept = torch.nonzero(real).flatten()
        mask_feats = roi_features(roi_head.mask_roi_extractor,
                                  feats[:roi_head.mask_roi_extractor.num_inputs],
                                  _batch_rois(dets[..., :4]).index_select(0, kept))
        mask_pred = roi_head.mask_head(mask_feats)  # (detections, classes, S, S)
        size = mask_pred.shape[-2:]
        index = labels.reshape(-1).index_select(0, kept).reshape(-1, 1, 1, 1)
        masks = torch.gather(mask_pred, 1, index.expand(-1, 1, *size)).sigmoid()
        # back to (N, K) rows: each padding row reads an appended empty mask
        masks = torch.cat([masks.flatten(1), masks.new_zeros(1, size[0] * size[1])])
        rank = torch.cumsum(real.long(), 0) - 1
        rows = torch.where(real, rank, torch.zeros_like(rank) + kept.shape[0])
        return dets, labels, masks.index_select(0, rows).reshape(n, k, *size)


def paste_masks(masks: Tensor, boxes: Tensor, height: int, width: int,
                threshold: float) -> Tensor:
    """(K, S, S) mask probabilities pasted into their (K, 4) boxes on a (height, width)
    canvas and thresholded, (K, H, W) bool: ``FCNMaskHead``'s own pasting as it runs
    on the CPU (only the region around the boxes is sampled, the rest stays empty)."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
    canvas = masks.new_zeros((len(masks), height, width), dtype=torch.bool)
    if len(masks) == 0:
        return canvas
    pasted, region = _do_paste_mask(masks[:, None], boxes, height, width, skip_empty=True)
    canvas[(slice(None), ) + region] = pasted >= threshold
    return canvas


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
    """An mmpretrain ``ImageClassifier``'s class scores before the softmax: its plain
    network forward ``mode='tensor'``. For any other OpenMMLab model the same call
    gives the raw head outputs, which is what the MAC counts wrap it for."""

    output_names = ('logits',)

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, input: Tensor) -> Tensor:
        return self.classifier(input, mode='tensor')
