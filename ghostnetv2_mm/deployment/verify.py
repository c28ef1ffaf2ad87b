"""Judge a runtime (onnxruntime, or any callable giving ``run_onnx``'s outputs) against
the PyTorch model's own ``predict`` (detectors, segmentors) or forward (classifiers,
backbones).

PyTorch and a runtime compute the same float32 sums in another order (blocked kernels,
SIMD width, threads), so their outputs agree to rounding, not bit for bit. Where a
decision has a boundary - a detection's score at the top-k cut or the score
threshold, two boxes' overlap at the NMS IoU threshold, two equal scores competing
in NMS, a pixel's two best logits - the two sides may fall on different sides of it.
Such a *near-tie* is reported and counted, and does not fail the check; every other
difference (a box missing far from every boundary, a score, label or box that
differs) does.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from .export import run_onnx

# How far two float32 results of the same computation may lie apart: ROUNDING times
# their magnitude, and at least ROUNDING (scores, IoUs and probabilities lie in
# [0, 1]; below 1 the rounding of the terms they came from still counts). float32
# has a unit roundoff of 2**-24 (6e-8); a sum of n terms in another order differs by
# up to about n times that, relative to the sum of the terms' magnitudes, not to the
# result, and a network chains such sums (convolutions over hundreds to thousands of
# terms, RoIAlign's sampling, a softmax over large logits). Measured here between
# PyTorch and onnxruntime on this project's test models (random weights,
# ATEN_CPU_CAPABILITY default / avx2 / native): RetinaNet scores differ by up to
# 5.4e-7, Mask R-CNN's (sharpened random RoI heads) by up to 1.2e-5 (3.3e-5
# relative); 1e-4 leaves a margin of 8x over that, while a score off by 1e-3 (or a
# box 1e-2 from a boundary) stays a real difference.
ROUNDING = 1e-4


def rounding_tol(a, b):
    """The largest difference between ``a`` and ``b`` (numbers or arrays) that float32
    rounding explains: ``ROUNDING`` times the larger magnitude, at least ``ROUNDING``."""
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
    return ROUNDING * scale


def within_rounding(a, b):
    """Whether ``a`` and ``b`` (numbers or arrays, elementwise) agree to rounding."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.abs(a - b) <= rounding_tol(a, b)


def as_runner(runtime) -> Callable[[torch.Tensor], Sequence[np.ndarray]]:
    """``runtime`` as a function of the input batch: an onnxruntime session (run with
    ``run_onnx``) or already a callable ``run(x) -> list of arrays`` (e.g. another
    runtime's wrapper giving the same outputs)."""
    if hasattr(runtime, 'get_inputs') and hasattr(runtime, 'run'):
        return lambda x: run_onnx(runtime, x)
    if callable(runtime):
        return runtime
    raise TypeError(f'runtime: an onnxruntime session or a callable, got '
                    f'{type(runtime).__name__}')


# ------------------------------------------------------------------------ detectors
def whole_batch_samples(batch: torch.Tensor) -> List:
    """mmdet data samples for an already normalised, padded batch whose every image
    fills the whole tensor (img_shape = the batch's H, W; nothing to rescale)."""
    from mmdet.structures import DetDataSample
    h, w = batch.shape[-2:]
    return [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                        pad_shape=(h, w), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(h, w)))
            for _ in range(batch.shape[0])]


def torch_detections(detector: nn.Module, batch: torch.Tensor,
                     top: Optional[int] = None) -> List[Dict]:
    """``detector.predict`` on ``whole_batch_samples`` (no rescale): per image the
    ``top`` best (all when None) ``bboxes``, ``scores``, ``labels`` (and ``masks``,
    (K, H, W) bool, for detectors with a mask head), best first."""
    with torch.no_grad():
        results = detector.predict(batch, whole_batch_samples(batch), rescale=False)
    out = []
    for r in results:
        inst = r.pred_instances
        order = inst.scores.argsort(descending=True, stable=True)[:top]
        out.append({key: inst[key][order] for key in ('bboxes', 'scores', 'labels', 'masks')
                    if key in inst})
    return out


def detection_boundaries(detector: nn.Module) -> Dict:
    """The test-time decisions of a detector's last stage that have a boundary:
    ``score_thr``, the NMS ``iou_thr`` and ``max_per_img`` (the top-k cut), read from
    its ``test_cfg`` (``roi_head``'s for two-stage detectors, ``bbox_head``'s else)."""
    head = detector.roi_head if hasattr(detector, 'roi_head') else detector.bbox_head
    cfg = head.test_cfg
    return dict(score_thr=float(cfg.get('score_thr', 0)),
                iou_thr=float(cfg['nms']['iou_threshold']),
                max_per_img=int(cfg['max_per_img']))


def first_stage_alternatives(detector: nn.Module, batch: torch.Tensor) -> List[Dict]:
    """A two-stage detector's final detections that hang on a near-tie of its first
    stage, per image (empty dicts for single-stage detectors).

    The RPN picks proposals with boundaries of its own: the ``nms_pre`` best per
    level, NMS within each level, the ``max_per_img`` best. A proposal within
    rounding of one of them (its score at a cut, its IoU with a kept proposal at the
    NMS threshold, or an overlapping proposal of equal score kept instead; either of
    the two) may be kept by one implementation and not the other; the second stage
    then gives another detection. These are the second-stage detections of such
    proposals (every class scoring above ``score_thr``), computed in PyTorch with the
    export's own (traceable) post-processing; :func:`judge_detections` counts a
    detection found among them as a near-tie."""
    from torchvision.ops import batched_nms as tv_batched_nms

    from .wrappers import (_batch_rois, _input_limits, decode_deltas, dense_candidates,
                           roi_features)
    if not hasattr(detector, 'rpn_head'):
        return [{} for _ in range(batch.shape[0])]
    head, roi_head = detector.rpn_head, detector.roi_head
    cfg = head.test_cfg
    nms_pre, iou_thr = cfg.get('nms_pre', -1), float(cfg['nms']['iou_threshold'])
    keep_top = int(cfg['max_per_img'])
    out = []
    with torch.no_grad():
        feats = detector.extract_feat(batch)
        cls_scores, bbox_preds = head(feats)
        # a few candidates past each level's nms_pre cut, to see who lies at it
        margin = 64 if nms_pre > 0 else 0
        original = head.test_cfg
        head.test_cfg = dict(original, nms_pre=nms_pre + margin) if margin else original
        try:
            boxes, scores, _, levels = dense_candidates(head, cls_scores, bbox_preds, batch)
        finally:
            head.test_cfg = original
        for b in range(batch.shape[0]):
            box, score, level = boxes[b], scores[b].double(), levels[b]
            boundary = torch.zeros_like(score, dtype=torch.bool)
            inside = torch.ones_like(boundary)
            if margin:
                for lv in level.unique():
                    idx = torch.nonzero(level == lv).flatten()  # best first (topk)
                    inside[idx[nms_pre:]] = False
                    if len(idx) > nms_pre:
                        cut = float(score[idx[nms_pre - 1]])
                        boundary[idx] |= torch.from_numpy(
                            within_rounding(score[idx].numpy(), cut))
            idx = torch.nonzero(inside & (score > cfg.get('score_thr', 0))).flatten()
            kept = idx[tv_batched_nms(box[idx], score[idx].float(), level[idx], iou_thr)]
            iou = torch.from_numpy(_box_iou(box[idx].numpy(), box[kept].numpy()))
            same = level[idx][:, None] == level[kept][None]
            near_thr = torch.from_numpy(within_rounding(iou.numpy(), iou_thr)) & same
            equal = torch.from_numpy(within_rounding(score[idx][:, None].numpy(),
                                                     score[kept][None].numpy()))
            rival = (iou > iou_thr - float(rounding_tol(iou_thr, iou_thr))) & same & equal
            rival &= idx[:, None] != kept[None]
            boundary[idx[(near_thr | rival).any(1)]] = True
            boundary[kept[(near_thr | rival).any(0)]] = True
            if len(kept) > keep_top:
                cut = float(score[kept[keep_top - 1]])
                boundary[kept] |= torch.from_numpy(within_rounding(score[kept].numpy(), cut))
            chosen = torch.nonzero(boundary).flatten()
            if len(chosen) == 0:
                out.append({})
                continue
            rois = _batch_rois(box[chosen][None])  # (image index 0 of its own features)
            image_feats = [f[b:b + 1] for f in feats]
            pooled = roi_features(roi_head.bbox_roi_extractor,
                                  image_feats[:roi_head.bbox_roi_extractor.num_inputs], rois)
            cls_score, bbox_pred = roi_head.bbox_head(pooled)
            classes = roi_head.bbox_head.num_classes
            probs = torch.softmax(cls_score, -1)[:, :classes]
            decoded = decode_deltas(box[chosen][:, None], bbox_pred.reshape(-1, classes, 4),
                                    roi_head.bbox_head.bbox_coder, _input_limits(batch))
            hit = probs > roi_head.test_cfg.get('score_thr', 0)
            rows, labels = torch.nonzero(hit, as_tuple=True)
            out.append(dict(bboxes=decoded[rows, labels].numpy(),
                            scores=probs[rows, labels].numpy(), labels=labels.numpy()))
    return out


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from torchvision.ops import box_iou
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iou = box_iou(torch.from_numpy(np.asarray(a, np.float64)),
                  torch.from_numpy(np.asarray(b, np.float64))).numpy()
    return np.nan_to_num(iou)  # (boxes clipped flat at the border: 0 / 0)


def pair_detections(expected: Dict, dets: np.ndarray, labels: np.ndarray,
                    iou_thr: float = 0.99,
                    score_tol: Optional[float] = None) -> Tuple[List[int], float]:
    """For each of the ``expected`` detections (dict of bboxes/scores/labels), the
    runtime row (of ``dets`` (K, 5), ``labels`` (K,); every row is searched) that is its
    partner: same label, IoU > ``iou_thr`` (or corners within 0.01 px) and a score
    that agrees to rounding (``within_rounding``; or within ``score_tol`` when
    given); -1 where none is. Also the largest score difference among the pairs."""
    dets = np.asarray(dets, dtype=np.float32)
    labels = np.asarray(labels)
    rows = np.nonzero(dets[:, 4] > 0)[0]
    scores = np.asarray(expected['scores'], dtype=np.float32)
    if len(scores) == 0 or len(rows) == 0:
        return [-1] * len(scores), 0.0
    ours = np.asarray(expected['bboxes'], dtype=np.float32)
    iou = _box_iou(ours, dets[rows, :4])
    # boxes clipped flat at the border have no IoU (0 / 0): equal corners pair them
    corners = np.abs(ours[:, None] - dets[None, rows, :4]).max(-1)
    iou = np.where(corners < 1e-2, 1.0, iou)
    theirs = dets[rows, 4]
    score_diff = np.abs(scores[:, None].astype(np.float64) - theirs[None])
    close = (score_diff <= score_tol if score_tol is not None
             else within_rounding(scores[:, None], theirs[None]))
    ok = (iou > iou_thr) & close & (np.asarray(expected['labels'])[:, None]
                                    == labels[None, rows])
    # among the candidates, the closest score (ties of equal boxes may swap ranks)
    closeness = np.where(ok, score_diff, np.inf)
    best = closeness.argmin(axis=1)
    partners = [int(rows[b]) if ok[i, b] else -1 for i, b in enumerate(best)]
    found = ok.any(axis=1)
    worst = float(closeness.min(axis=1)[found].max()) if found.any() else 0.0
    return partners, worst


def tie_partners(expected: Dict, partners: Sequence[int], dets: np.ndarray,
                 labels: np.ndarray, tol: Optional[float] = None) -> List[int]:
    """For each expected detection without a partner, a runtime row no one else pairs
    with that has its label and a score equal to rounding (``within_rounding``, or
    within ``tol``): a candidate for the same tie broken the other way (another of
    equally scored boxes kept). -1 where there is none (and for detections that have
    a partner). Whether the swap is a near-tie depends on where it happened: see
    :func:`judge_detections`."""
    dets = np.asarray(dets, dtype=np.float32)
    labels = np.asarray(labels)
    taken = {p for p in partners if p >= 0}
    ties = [-1] * len(partners)
    scores = np.asarray(expected['scores'], dtype=np.float32)
    wanted = np.asarray(expected['labels'])
    for i, p in enumerate(partners):
        if p >= 0:
            continue
        close = (np.abs(dets[:, 4] - scores[i]) <= tol if tol is not None
                 else within_rounding(dets[:, 4], scores[i]))
        free = [r for r in np.nonzero((dets[:, 4] > 0) & (labels == wanted[i]) & close)[0]
                if r not in taken]
        if free:
            ties[i] = int(free[0])
            taken.add(int(free[0]))
    return ties


def _side(bboxes, scores, labels) -> Dict[str, np.ndarray]:
    """Detections as float64 / int64 arrays, best first."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind='stable')
    return dict(bboxes=np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)[order],
                scores=scores[order], labels=np.asarray(labels).reshape(-1)[order])


def _as_dets(side: Dict[str, np.ndarray]) -> np.ndarray:
    """(K, 5) rows of a side's boxes and scores."""
    return np.concatenate([side['bboxes'], side['scores'][:, None]], 1).astype(np.float32)


def _near_tie(i: int, own: Dict, other: Dict, other_cut: Optional[float],
              other_free: np.ndarray, other_tied: np.ndarray,
              bounds: Dict) -> Optional[str]:
    """Why detection ``i`` of ``own``, missing from ``other``, lies within rounding
    of a boundary (a short phrase), or None when it does not. ``other_cut``: the
    other side's last score when its output is full (``max_per_img`` detections),
    else None; ``other_free``: the other side's detections without a partner;
    ``other_tied``: those of them already found to be near-ties."""
    score = own['scores'][i]
    if other_cut is not None:
        if within_rounding(score, other_cut):
            return (f'top-k cut (k-th score {other_cut:.7g}, gap '
                    f'{abs(score - other_cut):.1e})')
        if score <= other_cut + rounding_tol(score, other_cut) and other_tied.any():
            return 'top-k cut (pushed below it by a near-tie that entered above)'
    if within_rounding(score, bounds['score_thr']):
        return (f"score threshold {bounds['score_thr']:g} (gap "
                f"{abs(score - bounds['score_thr']):.1e})")
    same = np.nonzero(other['labels'] == own['labels'][i])[0]
    if len(same) == 0:
        return None
    iou = _box_iou(own['bboxes'][i:i + 1], other['bboxes'][same])[0]
    thr = bounds['iou_thr']
    for j, o in zip(same, iou):
        if within_rounding(o, thr):
            return f'NMS (IoU {o:.7f} with a kept box, threshold {thr:g})'
    overlapping = iou > thr - rounding_tol(thr, thr)
    # an overlapping box of equal score, without a partner, kept instead
    rivals = same[overlapping & other_free[same]]
    (swap,) = tie_partners({'scores': own['scores'][i:i + 1],
                            'labels': own['labels'][i:i + 1]}, [-1],
                           _as_dets(other)[rivals], other['labels'][rivals])
    if swap >= 0:
        j = rivals[swap]
        return (f"NMS (kept a box of equal score instead, IoU "
                f"{iou[same == j][0]:.3f}, gap {abs(other['scores'][j] - score):.1e})")
    for j, o in zip(same[overlapping], iou[overlapping]):
        if other_tied[j]:
            return f'NMS (suppressed by a near-tie box, IoU {o:.3f})'
    return None


def _first_stage(i: int, own: Dict, alternatives: Optional[Dict]) -> Optional[str]:
    """Whether detection ``i`` of ``own`` is one of the ``alternatives`` (same label,
    IoU > 0.99, score equal to rounding): it hangs on a first-stage near-tie."""
    if not alternatives or len(alternatives['scores']) == 0:
        return None
    (partner,), _ = pair_detections({k: v[i:i + 1] for k, v in own.items()},
                                    np.concatenate([alternatives['bboxes'],
                                                    alternatives['scores'][:, None]], 1),
                                    alternatives['labels'])
    if partner < 0:
        return None
    return 'first stage (from an RPN proposal at the RPN NMS / top-k boundary)'


def judge_detections(expected: Dict, dets: np.ndarray, labels: np.ndarray,
                     bounds: Dict, top: int, alternatives: Optional[Dict] = None) -> Dict:
    """One image's detections: PyTorch's against the runtime's.

    Every one of PyTorch's ``top`` best and of the runtime's ``top`` best must have a
    partner anywhere in the other side's whole output (same label, IoU > 0.99, score
    equal to rounding). One without is a near-tie when it lies within rounding of a
    boundary (``bounds`` = :func:`detection_boundaries`): its score at the top-k cut
    (the ``max_per_img``-th score of a side that is full) or at ``score_thr``; its IoU
    with a same-class box the other side kept at the NMS ``iou_thr``; an overlapping
    same-class box of equal score that the other side kept instead; or suppressed on
    the other side by a box that is itself such a near-tie. Anything else is a real
    difference.

    Args:
        expected (dict): PyTorch's detections, all of them (``bboxes``, ``scores``,
            ``labels``: tensors or arrays).
        dets (ndarray): The runtime's (K, 5) rows (x1, y1, x2, y2, score); rows of
            score 0 are padding.
        labels (ndarray): The runtime's (K,) labels.
        bounds (dict): ``score_thr``, ``iou_thr``, ``max_per_img``.
        top (int): How many of each side's best are judged.
        alternatives (dict, optional): Detections that hang on a near-tie of a first
            stage (:func:`first_stage_alternatives`): one of them missing on either
            side is a near-tie too.

    Returns:
        dict: ``expected`` (PyTorch detections judged), ``matched`` (those with a
        partner), ``partners`` (runtime row of each, -1 when none), ``ties`` and
        ``real`` (one phrase per near-tie / real difference, either side),
        ``max_score_diff`` (among the pairs) and ``runtime_rows`` (real rows).
    """
    dets = np.asarray(dets, dtype=np.float32)
    labels = np.asarray(labels)
    valid = np.nonzero(dets[:, 4] > 0)[0]
    valid = valid[np.argsort(-dets[valid, 4], kind='stable')]
    ref = _side(expected['bboxes'], expected['scores'], expected['labels'])
    run = _side(dets[valid, :4], dets[valid, 4], labels[valid])
    run_rows = valid  # (run[i] is runtime row run_rows[i])
    ref_top, run_top = min(top, len(ref['scores'])), min(top, len(run['scores']))
    ref_partner, worst = pair_detections({k: v[:ref_top] for k, v in ref.items()},
                                         _as_dets(run), run['labels'])
    run_partner, _ = pair_detections({k: v[:run_top] for k, v in run.items()},
                                     _as_dets(ref), ref['labels'])
    ref_free = np.zeros(len(ref['scores']), bool)
    run_free = np.zeros(len(run['scores']), bool)
    ref_free[:ref_top] = np.asarray(ref_partner, int) < 0
    run_free[:run_top] = np.asarray(run_partner, int) < 0
    # detections beyond the judged top that lack a partner may still explain a tie
    # (a box kept instead); they are not judged themselves
    if len(ref['scores']) > ref_top:
        rest, _ = pair_detections({k: v[ref_top:] for k, v in ref.items()},
                                  _as_dets(run), run['labels'])
        ref_free[ref_top:] = np.asarray(rest, int) < 0
    if len(run['scores']) > run_top:
        rest, _ = pair_detections({k: v[run_top:] for k, v in run.items()},
                                  _as_dets(ref), ref['labels'])
        run_free[run_top:] = np.asarray(rest, int) < 0

    k = bounds['max_per_img']
    # a side's output is full when the top-k cut dropped detections: PyTorch's has
    # max_per_img of them, the runtime's has no padding rows left
    cut = {id(ref): ref['scores'][k - 1] if len(ref['scores']) >= k else None,
           id(run): run['scores'][-1] if len(valid) == len(dets) and len(valid) else None}
    names = {id(ref): 'PyTorch', id(run): 'runtime'}
    tied = {id(ref): np.zeros(len(ref['scores']), bool),
            id(run): np.zeros(len(run['scores']), bool)}
    free = {id(ref): ref_free, id(run): run_free}
    todo = [(ref, run, i) for i in np.nonzero(ref_free[:ref_top])[0]]
    todo += [(run, ref, i) for i in np.nonzero(run_free[:run_top])[0]]
    # a box the other side has too (same label, IoU > 0.99) but with another score
    # is a real difference whatever boundary lies near
    twins = {}
    for own, other, i in todo:
        same = other['labels'] == own['labels'][i]
        iou = _box_iou(own['bboxes'][i:i + 1], other['bboxes'])[0]
        found = np.nonzero(same & (iou > 0.99))[0]
        if len(found):
            twins[(id(own), i)] = int(found[0])
    reasons = {}
    # a near-tie may explain another (a box it would have suppressed, one it pushed
    # below the top-k cut): repeat until nothing changes
    changed = True
    while changed:
        changed = False
        for own, other, i in todo:
            if tied[id(own)][i] or (id(own), i) in twins:
                continue
            why = _near_tie(i, own, other, cut[id(other)], free[id(other)],
                            tied[id(other)], bounds) or _first_stage(i, own, alternatives)
            if why:
                tied[id(own)][i] = True
                reasons[(id(own), i)] = why
                changed = True
    ties, real = [], []
    for own, other, i in todo:
        what = (f"{names[id(own)]} #{i + 1} (label {int(own['labels'][i])}, score "
                f"{own['scores'][i]:.7g})")
        if tied[id(own)][i]:
            ties.append(f'{what}: {reasons[(id(own), i)]}')
        elif (id(own), i) in twins:
            j = twins[(id(own), i)]
            real.append(f"{what}: the {names[id(other)]}'s box there scores "
                        f"{other['scores'][j]:.7g} (off by "
                        f"{abs(other['scores'][j] - own['scores'][i]):.1e})")
        else:
            real.append(f"{what}: missing from the {names[id(other)]}'s output, not at "
                        'a boundary')
    partners = [int(run_rows[p]) if p >= 0 else -1 for p in ref_partner]
    return dict(expected=ref_top, matched=sum(p >= 0 for p in partners),
                partners=partners, ties=ties, real=real, max_score_diff=worst,
                runtime_rows=len(valid))


def mask_agreement(expected: Dict, partners: Sequence[int], boxes: np.ndarray,
                   masks: np.ndarray, threshold: float) -> Tuple[int, int]:
    """Equal pixels and all pixels between PyTorch's masks and the partners' runtime
    masks (pasted into their runtime boxes and thresholded as ``FCNMaskHead`` does)."""
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


# ----------------------------------------------------------------- label decisions
def argmax_differences(logits: np.ndarray, reference: np.ndarray, got: np.ndarray,
                       threshold: Optional[float] = None) -> Tuple[int, int]:
    """Where ``got`` labels differ from the ``reference`` labels that ``logits``
    (PyTorch's: (N, C, ...) with classes on axis 1) decide, (near-ties, real): a
    differing element is a near-tie when its two best logits agree to rounding (or,
    for a single-channel sigmoid decision at ``threshold``, when its probability
    does with the threshold)."""
    reference, got = np.asarray(reference), np.asarray(got)
    differ = reference != got
    if not differ.any():
        return 0, 0
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[1] == 1:
        prob = 1 / (1 + np.exp(-logits[:, 0]))
        near = within_rounding(prob, threshold)
    else:
        best2 = -np.partition(-logits, 1, axis=1)[:, :2]
        near = within_rounding(best2[:, 0], best2[:, 1])
    ties = int((differ & near).sum())
    return ties, int(differ.sum()) - ties


# The real differences (pixels, labels) a segmentor or classifier check allows: none.
REAL_LABEL_DIFFERENCES = 0


# ------------------------------------------------------------------------- the check
def compare(model: nn.Module, wrapper: nn.Module,
            runtime: Union[object, Callable[[torch.Tensor], Sequence[np.ndarray]]],
            sizes: Sequence[Tuple[int, int]], batch: int = 1, top: int = 20, seed: int = 0,
            inputs: Optional[Sequence[torch.Tensor]] = None) -> List[Dict]:
    """One row of figures per input; each has ``size``, ``ok`` and the measured
    agreement:

    * detectors (:func:`judge_detections`): ``matched`` / ``expected`` of PyTorch's
      ``top`` best, ``tied`` and ``ties`` (near-ties, not counted), ``real`` (real
      differences; any fails), ``max_score_diff``, ``onnx_rows`` and, with masks,
      ``mask_identical`` (equal pixels of the pairs' pasted masks, ok at >= 0.999);
    * segmentors: ``identical`` (fraction of equal pixels), ``tied`` (differing pixels
      whose two best PyTorch logits agree to rounding) and ``real`` (the other
      differing pixels; ok when at most ``REAL_LABEL_DIFFERENCES``);
    * classifiers and backbones: ``max_abs_diff`` (ok below 1e-4); classifiers also
      the top-1 labels: ``tied`` / ``real`` as for segmentors.

    Args:
        model (nn.Module): The PyTorch model (deploy mode).
        wrapper (nn.Module): Its export wrapper (tells the task).
        runtime: An onnxruntime session, or a callable ``run(x) -> list of arrays``
            giving the same outputs as ``run_onnx`` (another runtime).
        sizes (sequence of (H, W)): Sizes of random inputs (``batch``, 3, H, W).
        batch (int): Batch of the random inputs.
        top (int): Detectors: how many of each side's best detections are judged.
        seed (int): Seeds the random inputs.
        inputs (sequence of Tensor, optional): The inputs instead (e.g. real images as
            the config's pipeline prepares them: a trained detector finds nothing in
            noise).
    """
    from .wrappers import DenseDetectorExport, SegmentorExport, TwoStageDetectorExport
    run = as_runner(runtime)
    if inputs is None:
        gen = torch.Generator().manual_seed(seed)
        inputs = [torch.randn(batch, 3, h, w, generator=gen) for h, w in sizes]
    rows = []
    for x in inputs:
        h, w = x.shape[-2:]
        got = run(x)
        row = dict(size=(h, w))
        if isinstance(wrapper, (DenseDetectorExport, TwoStageDetectorExport)):
            bounds = detection_boundaries(model)
            expected = torch_detections(model, x)
            alternatives = first_stage_alternatives(model, x)
            matched = total = same_pixels = all_pixels = onnx_rows = 0
            worst, ties, real = 0.0, [], []
            for i, exp in enumerate(expected):
                judged = judge_detections(exp, got[0][i], got[1][i], bounds, top,
                                          alternatives[i])
                prefix = f'image {i}: ' if len(expected) > 1 else ''
                ties += [prefix + t for t in judged['ties']]
                real += [prefix + r for r in judged['real']]
                matched += judged['matched']
                total += judged['expected']
                onnx_rows += judged['runtime_rows']
                worst = max(worst, judged['max_score_diff'])
                if 'masks' in exp:
                    threshold = wrapper.detector.roi_head.test_cfg['mask_thr_binary']
                    same, pixels = mask_agreement(exp, judged['partners'], got[0][i],
                                                  got[2][i], threshold)
                    same_pixels, all_pixels = same_pixels + same, all_pixels + pixels
            # (nothing detected by PyTorch: the runtime must detect nothing either;
            # ``summarise`` fails a check in which no input had anything to compare)
            row.update(matched=matched, tied=len(ties), ties=ties, real=real,
                       expected=total, max_score_diff=worst, onnx_rows=onnx_rows,
                       ok=not real and (total > 0 or onnx_rows == 0))
            if all_pixels:
                row.update(mask_identical=same_pixels / all_pixels)
                row['ok'] = row['ok'] and row['mask_identical'] >= 0.999
        elif isinstance(wrapper, SegmentorExport):
            with torch.no_grad():
                results = model.predict(x)
            ref = torch.stack([r.pred_sem_seg.data for r in results]).numpy()
            logits = torch.stack([r.seg_logits.data for r in results]).numpy()
            out = np.asarray(got[0])
            if ref.shape == out.shape:
                tied, real = argmax_differences(
                    logits, ref[:, 0], out[:, 0],
                    getattr(wrapper.segmentor.decode_head, 'threshold', None))
                same = float((ref == out).mean())
            else:
                tied, real, same = 0, ref.size, 0.0
            row.update(identical=same, tied=tied, real=real,
                       ok=real <= REAL_LABEL_DIFFERENCES)
        else:
            from .wrappers import ClassifierExport
            with torch.no_grad():
                ref = wrapper(x)
            ref = ref if isinstance(ref, (list, tuple)) else [ref]
            diffs = [float(np.abs(r.numpy() - g).max()) if r.shape == g.shape
                     else float('inf') for r, g in zip(ref, got)]
            row.update(max_abs_diff=max(diffs), ok=max(diffs) < 1e-4)
            if isinstance(wrapper, ClassifierExport) and ref[0].shape == got[0].shape:
                logits = ref[0].numpy()
                tied, real = argmax_differences(logits, logits.argmax(1),
                                                np.asarray(got[0]).argmax(1))
                row.update(tied=tied, real=real,
                           ok=row['ok'] and real <= REAL_LABEL_DIFFERENCES)
        rows.append(row)
    return rows


def describe(row: Dict) -> str:
    """The printable lines (one, and one more each for near-ties and real
    differences) for a ``compare`` row."""
    h, w = row['size']
    extra = []
    if 'matched' in row and row['expected'] == 0:
        what = (f"PyTorch detected nothing, the runtime {row['onnx_rows']} boxes (nothing "
                'to compare: a trained model finds nothing in noise, check images)')
    elif 'matched' in row:
        what = (f"{row['matched']}/{row['expected']} top detections matched (IoU > 0.99, "
                f"same label, score equal to rounding; max score diff "
                f"{row['max_score_diff']:.2e})")
        if 'mask_identical' in row:
            what += f"; masks of the pairs {100 * row['mask_identical']:.3f}% identical pixels"
        if row.get('ties'):
            extra.append(f"    {len(row['ties'])} near-tie(s) at a boundary (NMS, top-k "
                         'cut, score threshold, first stage), not counted: '
                         + '; '.join(row['ties']))
        if row.get('real'):
            extra.append(f"    {len(row['real'])} real difference(s): "
                         + '; '.join(row['real']))
    elif 'identical' in row:
        what = (f"{100 * row['identical']:.3f}% identical pixels ({row['tied']} near-tie "
                f"pixel(s), two best logits equal to rounding, not counted; "
                f"{row['real']} real)")
    else:
        what = f"max abs diff {row['max_abs_diff']:.2e}"
        if 'tied' in row:
            what += f"; top-1 labels: {row['tied']} near-tie(s), {row['real']} real"
    verdict = 'OK' if row['ok'] else 'FAIL'
    if row.get('expected') == 0 and row['ok']:
        verdict = '(agree, but nothing compared)'
    return '\n'.join([f"  {h}x{w}: {what} {verdict}"] + extra)


def overall(rows: Sequence[Dict]) -> str:
    """One line over a detector check's rows: matched / judged, near-ties, the largest
    score difference and the worst mask agreement."""
    masks = [r['mask_identical'] for r in rows if 'mask_identical' in r]
    return (f"all {len(rows)} inputs: {sum(r['matched'] for r in rows)}/"
            f"{sum(r['expected'] for r in rows)} detections matched, "
            f"{sum(r['tied'] for r in rows)} near-ties not counted, "
            f"{sum(len(r['real']) for r in rows)} real differences, max score diff "
            f"{max(r['max_score_diff'] for r in rows):.2e}"
            + (f', masks >= {100 * min(masks):.3f}% identical' if masks else ''))


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
    tied = sum(r.get('tied', 0) for r in rows)
    note = f' ({tied} near-ties at a boundary, not counted)' if tied else ''
    if failed:
        return False, f'FAILED: {len(failed)} of {len(rows)} inputs differ{note}'
    return True, 'PASSED' + note


def print_check(rows: Sequence[Dict]) -> Tuple[bool, str]:
    """Print ``compare``'s rows as the export tools show them (each row, then the
    overall line of a detector check over more than two inputs); returns
    :func:`summarise`'s verdict (not printed: the tools print it after the files
    are in place or refused)."""
    for row in rows:
        print(describe(row))
    if len(rows) > 2 and 'matched' in rows[0]:
        print(overall(rows))
    return summarise(rows)
