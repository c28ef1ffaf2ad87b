"""Compare an exported ONNX file, run by onnxruntime, with the PyTorch model's own
``predict`` (detectors, segmentors) or forward (classifiers, backbones)."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .export import run_onnx


def whole_batch_samples(batch: torch.Tensor) -> List:
    """mmdet data samples for an already normalised, padded batch whose every image
    fills the whole tensor (img_shape = the batch's H, W; nothing to rescale)."""
    from mmdet.structures import DetDataSample
    h, w = batch.shape[-2:]
    return [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        pad_shape=(h, w), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(h, w)))
            for _ in range(batch.shape[0])]


def torch_detections(detector: nn.Module, batch: torch.Tensor, top: int) -> List[Dict]:
    """``detector.predict`` on ``whole_batch_samples`` (no rescale): per image the
    ``top`` best ``bboxes``, ``scores``, ``labels`` (and ``masks``, (K, H, W) bool,
    for detectors with a mask head)."""
    with torch.no_grad():
        results = detector.predict(batch, whole_batch_samples(batch), rescale=False)
    out = []
    for r in results:
        inst = r.pred_instances
        order = inst.scores.argsort(descending=True)[:top]
        out.append({key: inst[key][order] for key in ('bboxes', 'scores', 'labels', 'masks')
                    if key in inst})
    return out


def pair_detections(expected: Dict, dets: np.ndarray, labels: np.ndarray,
                    iou_thr: float = 0.99, score_tol: float = 1e-3) -> Tuple[List[int], float]:
    """For each of the ``expected`` detections (dict of bboxes/scores/labels), the ONNX
    row (of ``dets`` (K, 5), ``labels`` (K,)) that is its partner: same label, IoU >
    ``iou_thr`` (or corners within 0.01 px) and a score within ``score_tol``; -1 where
    none is. Also the largest score difference among the pairs."""
    from torchvision.ops import box_iou
    dets_t = torch.from_numpy(np.asarray(dets, dtype=np.float32))
    labels_t = torch.from_numpy(np.asarray(labels)).long()
    rows = torch.nonzero(dets_t[:, 4] > 0).flatten()
    if len(expected['scores']) == 0 or len(rows) == 0:
        return [-1] * len(expected['scores']), 0.0
    ours = expected['bboxes'].float()
    iou = box_iou(ours, dets_t[rows, :4])
    # boxes clipped flat at the border have no IoU (0 / 0): equal corners pair them
    corners = (ours[:, None] - dets_t[None, rows, :4]).abs().amax(-1)
    iou = torch.where(corners < 1e-2, torch.ones_like(iou), iou)
    score_diff = (expected['scores'].float()[:, None] - dets_t[None, rows, 4]).abs()
    ok = ((iou > iou_thr) & (score_diff <= score_tol)
          & (expected['labels'][:, None] == labels_t[None, rows]))
    # among the candidates, the closest score (ties of equal boxes may swap ranks)
    closeness = torch.where(ok, score_diff, torch.full_like(score_diff, float('inf')))
    best = closeness.argmin(dim=1)
    partners = [int(rows[b]) if ok[i, b] else -1 for i, b in enumerate(best.tolist())]
    found = ok.any(dim=1)
    worst = float(closeness.min(dim=1).values[found].max()) if found.any() else 0.0
    return partners, worst


# Scores equal "within float rounding": PyTorch and onnxruntime compute them in
# another order, and among boxes of equal score which one NMS keeps (and which makes
# the top k) follows that rounding.
TIE_TOL = 1e-5


def tie_partners(expected: Dict, partners: Sequence[int], dets: np.ndarray,
                 labels: np.ndarray, tol: float = TIE_TOL) -> List[int]:
    """For each expected detection without a partner, an ONNX row no one else pairs
    with that has its label and its score within ``tol``: the same tie, broken the
    other way (another of equally scored boxes kept). -1 where there is none (and for
    detections that have a partner)."""
    dets = np.asarray(dets, dtype=np.float32)
    labels = np.asarray(labels)
    taken = {p for p in partners if p >= 0}
    ties = [-1] * len(partners)
    scores = expected['scores'].float().numpy()
    wanted = expected['labels'].numpy()
    for i, p in enumerate(partners):
        if p >= 0:
            continue
        free = [r for r in np.nonzero((dets[:, 4] > 0) & (labels == wanted[i])
                                      & (np.abs(dets[:, 4] - scores[i]) <= tol))[0]
                if r not in taken]
        if free:
            ties[i] = int(free[0])
            taken.add(int(free[0]))
    return ties


def mask_agreement(expected: Dict, partners: Sequence[int], boxes: np.ndarray,
                   masks: np.ndarray, threshold: float) -> Tuple[int, int]:
    """Equal pixels and all pixels between PyTorch's masks and the partners' ONNX masks
    (pasted into their ONNX boxes and thresholded as ``FCNMaskHead`` does)."""
    from .wrappers import paste_masks
    pairs = [(i, p) for i, p in enumerate(partners) if p >= 0]
    if not pairs:
        return 0, 0
    ref = expected['masks'][[i for i, _ in pairs]]
    rows = [p for _, p in pairs]
    pasted = paste_masks(torch.from_numpy(np.asarray(masks)[rows]),
                         torch.from_numpy(np.asarray(boxes)[rows, :4]),
                         ref.shape[-2], ref.shape[-1], threshold)
    return int((pasted == ref).sum()), ref.numel()


def compare(model: nn.Module, wrapper: nn.Module, session, sizes: Sequence[Tuple[int, int]],
            batch: int = 1, top: int = 20, seed: int = 0,
            inputs: Optional[Sequence[torch.Tensor]] = None) -> List[Dict]:
    """One line of figures per input; each entry has ``size``, ``ok`` and the
    measured agreement: detectors ``matched``/``expected`` of the ``top`` best
    detections (IoU > 0.99, same label, score within 1e-3), ``max_score_diff``,
    ``onnx_rows`` and, with masks, ``mask_identical`` (equal pixels of the pairs'
    pasted masks, ok at >= 0.999); segmentors ``identical`` (fraction of equal pixels,
    ok at >= 0.999); others ``max_abs_diff`` (ok below 1e-4).

    The inputs are random (``batch``, 3, H, W) tensors, one per ``sizes`` entry, or
    the given ``inputs`` (e.g. real images as the config's pipeline prepares them: a
    trained detector finds nothing in noise). ``session`` is an onnxruntime session,
    or any callable ``run(x) -> list of arrays`` giving the ONNX file's outputs for a
    batch (another runtime, e.g. ncnn with its post-processing)."""
    from .wrappers import DenseDetectorExport, SegmentorExport, TwoStageDetectorExport
    run = session if callable(session) else (lambda batch: run_onnx(session, batch))
    if inputs is None:
        gen = torch.Generator().manual_seed(seed)
        inputs = [torch.randn(batch, 3, h, w, generator=gen) for h, w in sizes]
    rows = []
    for x in inputs:
        h, w = x.shape[-2:]
        got = run(x)
        row = dict(size=(h, w))
        if isinstance(wrapper, (DenseDetectorExport, TwoStageDetectorExport)):
            expected = torch_detections(model, x, top)
            matched = tied = total = same_pixels = all_pixels = onnx_rows = 0
            worst = 0.0
            for i, exp in enumerate(expected):
                onnx_rows += int((got[0][i][:, 4] > 0).sum())
                partners, d = pair_detections(exp, got[0][i], got[1][i])
                matched += sum(p >= 0 for p in partners)
                tied += sum(t >= 0 for t in tie_partners(exp, partners, got[0][i],
                                                         got[1][i]))
                total, worst = total + len(exp['scores']), max(worst, d)
                if 'masks' in exp:
                    threshold = wrapper.detector.roi_head.test_cfg['mask_thr_binary']
                    same, pixels = mask_agreement(exp, partners, got[0][i], got[2][i],
                                                  threshold)
                    same_pixels, all_pixels = same_pixels + same, all_pixels + pixels
            # (nothing detected by PyTorch: the ONNX file must detect nothing either;
            # ``summarise`` fails a check in which no input had anything to compare)
            row.update(matched=matched, tied=tied, expected=total, max_score_diff=worst,
                       onnx_rows=onnx_rows,
                       ok=matched + tied == total and (total > 0 or onnx_rows == 0))
            if all_pixels:
                row.update(mask_identical=same_pixels / all_pixels)
                row['ok'] = row['ok'] and row['mask_identical'] >= 0.999
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
    if 'matched' in row and row['expected'] == 0:
        what = (f"PyTorch detected nothing, onnxruntime {row['onnx_rows']} boxes (nothing "
                'to compare: a trained model finds nothing in noise, check images)')
    elif 'matched' in row:
        what = (f"{row['matched']}/{row['expected']} top detections matched (IoU > 0.99, "
                f"same label, score within 1e-3; max score diff "
                f"{row['max_score_diff']:.2e})")
        if row.get('tied'):
            what += (f", {row['tied']} more tied (another box of equal score, within "
                     f"{TIE_TOL:g}, kept instead)")
        if 'mask_identical' in row:
            what += f"; masks of the pairs {100 * row['mask_identical']:.3f}% identical pixels"
    elif 'identical' in row:
        what = f"{100 * row['identical']:.3f}% identical pixels"
    else:
        what = f"max abs diff {row['max_abs_diff']:.2e}"
    verdict = 'OK' if row['ok'] else 'FAIL'
    if row.get('expected') == 0 and row['ok']:
        verdict = '(agree, but nothing compared)'
    return f"  {h}x{w}: {what} {verdict}"


NOTHING_COMPARED_HINT = (
    'lower the score threshold (e.g. --cfg-options model.test_cfg.score_thr=0.01, '
    'model.test_cfg.rcnn.score_thr for two-stage detectors) or pass --check-images '
    'with images in which the model finds objects')


def summarise(rows: Sequence[Dict]) -> Tuple[bool, str]:
    """The verdict on ``compare``'s rows: (passed, one line). A detector check in
    which PyTorch detected nothing on any input compared nothing, and fails."""
    detector = bool(rows) and 'matched' in rows[0]
    if not rows or (detector and sum(r['expected'] for r in rows) == 0):
        return False, ('FAILED: nothing was compared (PyTorch detected nothing on any '
                       f'input): {NOTHING_COMPARED_HINT}')
    failed = [r for r in rows if not r['ok']]
    if failed:
        return False, f'FAILED: {len(failed)} of {len(rows)} inputs differ'
    return True, 'PASSED'
