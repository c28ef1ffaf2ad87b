"""Grouped non-maximum suppression that exports to ONNX's ``NonMaxSuppression``.

Eagerly it runs torchvision's NMS per image; under ``torch.onnx.export`` (TorchScript
exporter) the same call becomes one ``NonMaxSuppression`` node, so the config's
test-time NMS runs inside the exported graph. Groups (classes, or pyramid levels for
an RPN) are kept apart the way mmcv's ``batched_nms`` keeps them apart, by moving
each group past the largest coordinate, so the suppression sees the same float
coordinates as the toolkits' ``predict``. The batch dimension stays and every image
is padded to ``max_num`` rows, which keeps all shapes static except the (hidden)
number of NMS survivors.
"""
from typing import Tuple

import torch
from torch import Tensor


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` semantics: ``boxes`` (N, M, 4) as corner pairs,
    ``scores`` (N, C, M); returns the selected ``(batch, class, box)`` triples (S, 3),
    each class suppressed on its own, boxes with score <= ``score_thr`` dropped and at
    most ``max_per_class`` kept per image and class."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_class: int,
                iou_thr: float, score_thr: float) -> Tensor:
        from torchvision.ops import nms
        selected = []
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                idx = torch.nonzero(scores[b, c] > score_thr).flatten()
                keep = idx[nms(boxes[b, idx], scores[b, c, idx], iou_thr)][:max_per_class]
                triple = torch.stack([torch.full_like(keep, b), torch.full_like(keep, c),
                                      keep], dim=1)
                selected.append(triple)
        if not selected:
            return boxes.new_zeros((0, 3), dtype=torch.long)
        return torch.cat(selected)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_thr, score_thr):
        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor([value], dtype=dtype))
        return g.op('NonMaxSuppression', boxes, scores, const(max_per_class, torch.long),
                    const(iou_thr, torch.float32), const(score_thr, torch.float32),
                    center_point_box_i=0)


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_thr: float,
                score_thr: float, max_num: int) -> Tuple[Tensor, Tensor]:
    """NMS within groups over per-image candidates, the best ``max_num`` kept.

    Args:
        boxes (Tensor): (N, M, 4) candidate boxes, x1, y1, x2, y2.
        scores (Tensor): (N, M) candidate scores; a candidate scoring <= ``score_thr``
            is never kept (so, with ``score_thr >= 0``, a score of 0 discards one).
        groups (Tensor): (N, M) integer group of each candidate (its class, or its
            pyramid level); boxes of different groups never suppress each other.
        iou_thr (float): Boxes of one group overlapping more than this are suppressed.
        score_thr (float): See ``scores``.
        max_num (int): Rows per image of the outputs.

    Returns:
        tuple: ``dets`` (N, max_num, 5: x1, y1, x2, y2, score), best first, and
        ``groups`` (N, max_num) of the kept boxes. Rows past the last kept box have
        score 0, box 0 and group -1.
    """
    n, m = scores.shape
    candidate = (scores > score_thr).unsqueeze(-1)
    # mmcv's offset: (largest coordinate among the candidates + 1) x group, per image
    largest = torch.where(candidate, boxes, torch.zeros_like(boxes)).reshape(n, -1)
    largest = largest.max(dim=1, keepdim=True).values
    shifted = boxes + (groups.to(boxes.dtype) * (largest + 1)).unsqueeze(-1)
    selected = _NonMaxSuppression.apply(shifted, scores.unsqueeze(1), max_num,
                                        float(iou_thr), float(score_thr))
    # Scatter the survivors' scores into an (N, M) table and take the best per image
    # (padded by max_num zeros, so that images with few survivors have max_num rows).
    flat = selected[:, 0] * m + selected[:, 2]
    kept = torch.zeros_like(scores).reshape(-1)
    kept = kept.scatter(0, flat, scores.reshape(-1).index_select(0, flat))
    kept = torch.cat([kept.reshape(n, m), scores.new_zeros(n, max_num)], dim=1)
    top_scores, top = kept.topk(max_num, dim=1)
    valid = top_scores > 0
    index = torch.where(valid, top, torch.zeros_like(top))
    top_boxes = torch.gather(boxes, 1, index.unsqueeze(-1).expand(-1, -1, 4))
    top_boxes = top_boxes * valid.unsqueeze(-1).to(top_boxes.dtype)
    top_groups = torch.where(valid, torch.gather(groups, 1, index),
                             torch.full_like(index, -1))
    dets = torch.cat([top_boxes, top_scores.unsqueeze(-1)], dim=-1)
    return dets, top_groups
