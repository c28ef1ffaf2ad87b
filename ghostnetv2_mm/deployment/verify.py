"""Compare an exported ONNX file, run by onnxruntime, with the PyTorch model's own
``predict`` (detectors, segmentors) or forward (classifiers, backbones)."""
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .export import run_onnx


def torch_detections(detector: nn.Module, batch: torch.Tensor, top: int) -> List[Dict]:
    """``detector.predict`` on an already normalised, padded batch whose every image
    fills the whole tensor (img_shape = the batch's H, W; no rescale)."""
    from mmdet.structures import DetDataSample
    h, w = batch.shape[-2:]
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                           pad_shape=(h, w), scale_factor=(1.0, 1.0),
                                           batch_input_shape=(h, w)))
               for _ in range(batch.shape[0])]
    with torch.no_grad():
        results = detector.predict(batch, samples, rescale=False)
    out = []
    for r in results:
        inst = r.pred_instances
        order = inst.scores.argsort(descending=True)[:top]
        out.append(dict(bboxes=inst.bboxes[order], scores=inst.scores[order],
                        labels=inst.labels[order]))
    return out


def match_detections(expected: Dict, dets: np.ndarray, labels: np.ndarray,
                     iou_thr: float = 0.99, score_tol: float = 1e-3) -> Tuple[int, float]:
    """How many of the ``expected`` detections (dict of bboxes/scores/labels) have a
    partner among the ONNX rows (``dets`` (K, 5), ``labels`` (K,)) with the same label,
    IoU > ``iou_thr`` and a score within ``score_tol``; and the largest score
    difference among the matched ones."""
    from torchvision.ops import box_iou
    dets_t = torch.from_numpy(np.asarray(dets, dtype=np.float32))
    labels_t = torch.from_numpy(np.asarray(labels)).long()
    real = dets_t[:, 4] > 0
    dets_t, labels_t = dets_t[real], labels_t[real]
    if len(expected['scores']) == 0 or len(dets_t) == 0:
        return 0, 0.0
    iou = box_iou(expected['bboxes'].float(), dets_t[:, :4])
    score_diff = (expected['scores'].float()[:, None] - dets_t[None, :, 4]).abs()
    ok = ((iou > iou_thr) & (score_diff <= score_tol)
          & (expected['labels'][:, None] == labels_t[None]))
    matched = ok.any(dim=1)
    worst = float(torch.where(ok, score_diff, torch.full_like(score_diff, -1.0))
                  .max(dim=1).values[matched].max()) if matched.any() else 0.0
    return int(matched.sum()), worst


def compare(model: nn.Module, wrapper: nn.Module, session, sizes: Sequence[Tuple[int, int]],
            batch: int = 1, top: int = 20, seed: int = 0) -> List[Dict]:
    """One line of figures per input size; each entry has ``size``, ``ok`` and the
    measured agreement: detectors ``matched``/``expected`` of the ``top`` best
    detections (IoU > 0.99, same label, score within 1e-3) and ``max_score_diff``;
    segmentors ``identical`` (fraction of equal pixels, ok at >= 0.999); others
    ``max_abs_diff`` (ok below 1e-4)."""
    from .wrappers import DenseDetectorExport, SegmentorExport
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for h, w in sizes:
        x = torch.randn(batch, 3, h, w, generator=gen)
        got = run_onnx(session, x)
        row = dict(size=(h, w))
        if isinstance(wrapper, DenseDetectorExport):
            expected = torch_detections(model, x, top)
            matched = total = 0
            worst = 0.0
            for i, exp in enumerate(expected):
                m, d = match_detections(exp, got[0][i], got[1][i])
                matched, total, worst = matched + m, total + len(exp['scores']), max(worst, d)
            row.update(matched=matched, expected=total, max_score_diff=worst,
                       ok=matched == total)
        elif isinstance(wrapper, SegmentorExport):
            with torch.no_grad():
                results = model.predict(x)
            ref = torch.stack([r.pred_sem_seg.data for r in results]).numpy()
            onnx_out = got[0]
            same = (float((ref == onnx_out).mean()) if ref.shape == onnx_out.shape
                    else 0.0)
            row.update(identical=same, ok=same >= 0.999)
        else:
            with torch.no_grad():
                ref = wrapper(x)
            ref = ref if isinstance(ref, (list, tuple)) else [ref]
            diffs = [float(np.abs(r.numpy() - g).max()) if r.shape == g.shape
                     else float('inf') for r, g in zip(ref, got)]
            row.update(max_abs_diff=max(diffs), ok=max(diffs) < 1e-4)
        rows.append(row)
    return rows


def describe(row: Dict) -> str:
    """One printable line for a ``compare`` row."""
    h, w = row['size']
    if 'matched' in row:
        what = (f"{row['matched']}/{row['expected']} top detections matched (IoU > 0.99, "
                f"same label, score within 1e-3; max score diff "
                f"{row['max_score_diff']:.2e})")
    elif 'identical' in row:
        what = f"{100 * row['identical']:.3f}% identical pixels"
    else:
        what = f"max abs diff {row['max_abs_diff']:.2e}"
    return f"  {h}x{w}: {what} {'OK' if row['ok'] else 'FAIL'}"
