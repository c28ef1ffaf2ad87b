"""Multi-class non-maximum suppression that exports to ONNX's ``NonMaxSuppression``.

Eagerly it runs torchvision's NMS per image and class; under ``torch.onnx.export``
(TorchScript exporter) the same call becomes one ``NonMaxSuppression`` node, so the
config's test-time NMS runs inside the exported graph. The surrounding code keeps
the batch dimension and pads every image to ``max_per_img`` detections, which keeps
all shapes static except the (hidden) number of NMS survivors.
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


def multiclass_nms(boxes: Tensor, scores: Tensor, labels: Tensor, num_classes: int,
                   iou_thr: float, score_thr: float,
                   max_per_img: int) -> Tuple[Tensor, Tensor]:
    """Class-aware NMS over per-image candidates, padded to ``max_per_img`` rows.

    Args:
        boxes (Tensor): (N, M, 4) candidate boxes, x1, y1, x2, y2.
        scores (Tensor): (N, M) candidate scores; a candidate with score <=
            ``score_thr`` is never kept (so 0 marks a discarded candidate when
            ``score_thr >= 0``).
        labels (Tensor): (N, M) candidate classes.
        num_classes (int): Number of classes.
        iou_thr (float): Boxes of one class overlapping more than this are suppressed.
        score_thr (float): See ``scores``.
        max_per_img (int): Rows per image of the outputs.

    Returns:
        tuple: ``dets`` (N, max_per_img, 5: x1, y1, x2, y2, score), best first, and
        ``labels`` (N, max_per_img). Rows past the last detection have score 0,
        box 0 and label -1.
    """
    n, m = scores.shape
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, 1)
    class_scores = torch.where(labels.unsqueeze(1) == classes, scores.unsqueeze(1),
                               torch.zeros_like(scores).unsqueeze(1))  # (N, C, M)
    selected = _NonMaxSuppression.apply(boxes, class_scores, max_per_img, float(iou_thr),
                                        float(score_thr))
    b, c, i = selected[:, 0], selected[:, 1], selected[:, 2]
    # Scatter the survivors' scores into an (N, C*M) table and take the best per image.
    flat = (b * num_classes + c) * m + i
    kept = torch.zeros_like(class_scores).reshape(-1)
    kept = kept.scatter(0, flat, class_scores.reshape(-1).index_select(0, flat))
    kept = torch.cat([kept.reshape(n, -1), scores.new_zeros(n, max_per_img)], dim=1)
    top_scores, top = kept.topk(max_per_img, dim=1)
    valid = top_scores > 0
    box_idx = torch.where(valid, top % m, torch.zeros_like(top))
    top_boxes = torch.gather(boxes, 1, box_idx.unsqueeze(-1).expand(-1, -1, 4))
    top_boxes = top_boxes * valid.unsqueeze(-1).to(top_boxes.dtype)
    top_labels = torch.where(valid, top // m, torch.full_like(top, -1))
    dets = torch.cat([top_boxes, top_scores.unsqueeze(-1)], dim=-1)
    return dets, top_labels
