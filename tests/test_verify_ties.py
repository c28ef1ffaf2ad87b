"""The export check's judgement on constructed predictions (no model, no timing): a
difference that float rounding explains at a boundary (top-k cut, NMS, score
threshold, a pixel's two best logits) is a counted near-tie; anything else fails."""
import numpy as np
import pytest
import torch

from ghostnetv2_mm.deployment.verify import (ROUNDING, argmax_differences,
                                             judge_detections, within_rounding)

BOUNDS = dict(score_thr=0.05, iou_thr=0.5, max_per_img=100)


def _pytorch(boxes, scores, labels):
    return dict(bboxes=torch.tensor(boxes, dtype=torch.float32),
                scores=torch.tensor(scores, dtype=torch.float32),
                labels=torch.tensor(labels))


def _runtime(boxes, scores, labels, rows=100):
    """The runtime's padded (rows, 5) dets and (rows,) labels."""
    dets = np.zeros((rows, 5), np.float32)
    out = np.full(rows, -1)
    dets[:len(scores), :4] = boxes
    dets[:len(scores), 4] = scores
    out[:len(scores)] = labels
    return dets, out


# three detections far from every boundary: scores 0.9, 0.7, 0.3 (score_thr 0.05),
# boxes that do not overlap
BOXES = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 52, 52]]
SCORES = [0.9, 0.7, 0.3]
LABELS = [0, 1, 1]


def test_identical_detections_pass_with_nothing_to_report():
    row = judge_detections(_pytorch(BOXES, SCORES, LABELS), *_runtime(BOXES, SCORES, LABELS),
                           BOUNDS, top=20)
    assert (row['matched'], row['expected'], row['ties'], row['real']) == (3, 3, [], [])


def test_a_near_tie_at_rank_k_passes_and_is_counted():
    # max_per_img 3: both outputs are full; the third place went to another box of
    # class 1 whose score equals the PyTorch third's to 1e-7
    bounds = dict(BOUNDS, max_per_img=3)
    other = [60, 60, 70, 70]
    dets, labels = _runtime(BOXES[:2] + [other], SCORES[:2] + [0.3 + 1e-7], LABELS, rows=3)
    row = judge_detections(_pytorch(BOXES, SCORES, LABELS), dets, labels, bounds, top=3)
    assert row['real'] == [] and row['matched'] == 2
    assert len(row['ties']) == 2 and all('top-k cut' in t for t in row['ties'])


@pytest.mark.parametrize('side', [-1, 1], ids=['iou-below', 'iou-above'])
def test_an_nms_flip_at_the_iou_threshold_passes_and_is_counted(side):
    # a second box of class 0 whose IoU with the first is 0.5 -+ 1e-7: PyTorch kept
    # both (IoU below 0.5), the runtime suppressed it - or the other way round
    iou = 0.5 + side * 1e-7
    inter = 200 * iou / (1 + iou)  # two 10x10 boxes shifted along x
    shifted = [10 - inter / 10, 0, 20 - inter / 10, 10]
    assert within_rounding(iou, 0.5)
    both = (BOXES + [shifted], SCORES + [0.5], LABELS + [0])
    one = (BOXES, SCORES, LABELS)
    kept, suppressed = (both, one) if side < 0 else (one, both)
    row = judge_detections(_pytorch(*kept), *_runtime(*suppressed), BOUNDS, top=20)
    assert row['real'] == []
    assert len(row['ties']) == 1 and 'NMS' in row['ties'][0]


def test_a_missing_box_away_from_every_boundary_fails():
    # 1e-2 from every boundary: score 0.06 (threshold 0.05), IoU 0.49 with a kept box
    # of its class (NMS threshold 0.5), and no top-k cut
    inter = 200 * 0.49 / 1.49
    near = [10 - inter / 10, 0, 20 - inter / 10, 10]
    pytorch = _pytorch(BOXES + [near], SCORES + [0.06], LABELS + [0])
    row = judge_detections(pytorch, *_runtime(BOXES, SCORES, LABELS), BOUNDS, top=20)
    assert row['ties'] == [] and len(row['real']) == 1
    assert 'not at a boundary' in row['real'][0]


def test_a_score_off_by_1e_3_fails():
    dets, labels = _runtime(BOXES, [0.9, 0.7, 0.3 + 1e-3], LABELS)
    row = judge_detections(_pytorch(BOXES, SCORES, LABELS), dets, labels, BOUNDS, top=20)
    assert row['ties'] == [] and len(row['real']) == 2  # one on each side
    assert all('off by 1.0e-03' in r for r in row['real'])


def test_a_label_swap_fails():
    dets, labels = _runtime(BOXES, SCORES, [0, 1, 2])
    row = judge_detections(_pytorch(BOXES, SCORES, LABELS), dets, labels, BOUNDS, top=20)
    assert row['ties'] == [] and len(row['real']) == 2


def test_a_partner_is_found_beyond_the_runtime_top_k():
    # two boxes of equal score (to 5e-8) in the other order: PyTorch's second is the
    # runtime's third, outside the judged top 2 but in its output
    scores = [0.9, 0.7, 0.7 - 5e-8]
    dets, labels = _runtime([BOXES[0], BOXES[2], BOXES[1]], [0.9, 0.7, 0.7 - 5e-8],
                            [0, 1, 1])
    row = judge_detections(_pytorch(BOXES, scores, LABELS), dets, labels, BOUNDS, top=2)
    assert row['real'] == [] and row['ties'] == [] and row['matched'] == 2


def _logits():
    """(1, 3, 8, 8) logits with clear decisions: class 0 left, class 2 right."""
    logits = np.zeros((1, 3, 8, 8), np.float32)
    logits[0, 0, :, :4] = 5
    logits[0, 2, :, 4:] = 5
    return logits


def test_a_wrong_segmentation_region_fails():
    logits = _logits()
    reference = logits.argmax(1)
    got = reference.copy()
    got[0, 2:6, 2:6] = 1  # a 4x4 region of a class PyTorch scored far lower
    assert argmax_differences(logits, reference, got) == (0, 16)


def test_segmentation_near_tie_pixels_pass_and_are_counted():
    logits = _logits()
    # on a column, classes 0 and 1 equal to rounding: the runtime picked class 1
    logits[0, 1, :, 0] = 5 * (1 - ROUNDING / 10)
    reference = logits.argmax(1)
    got = reference.copy()
    got[0, :, 0] = 1
    assert argmax_differences(logits, reference, got) == (8, 0)


def test_a_detection_that_hangs_on_a_first_stage_near_tie_passes_and_is_counted():
    # a two-stage detector's RPN kept another of two equally scored proposals: the
    # runtime lacks PyTorch's third detection, which is among the second-stage
    # detections of the RPN's near-tie proposals (first_stage_alternatives)
    alternatives = dict(bboxes=np.array([BOXES[2]], np.float32),
                        scores=np.array([SCORES[2]], np.float32), labels=np.array([1]))
    dets, labels = _runtime(BOXES[:2], SCORES[:2], LABELS[:2])
    row = judge_detections(_pytorch(BOXES, SCORES, LABELS), dets, labels, BOUNDS, top=20,
                           alternatives=alternatives)
    assert row['real'] == [] and len(row['ties']) == 1 and 'first stage' in row['ties'][0]


class _Doubler(torch.nn.Module):
    """A stand-in backbone (one output) and classifier (logits): x * 2."""
    out_indices = (0,)

    def forward(self, x, mode='tensor'):
        return (x * 2,) if mode == 'tuple' else x.flatten(1) * 2


def test_compare_takes_a_plain_callable_as_the_runtime():
    from ghostnetv2_mm.deployment import BackboneExport
    from ghostnetv2_mm.deployment.verify import compare

    class Backbone(_Doubler):
        def forward(self, x):
            return super().forward(x, 'tuple')

    wrapper = BackboneExport(Backbone())
    (row,) = compare(None, wrapper, lambda x: [x.numpy() * 2], [(4, 4)])
    assert row['ok'] and row['max_abs_diff'] == 0
    (row,) = compare(None, wrapper, lambda x: [x.numpy() * 2 + 1e-3], [(4, 4)])
    assert not row['ok']


def test_a_classifier_top_1_swap_between_equal_logits_is_a_counted_near_tie():
    from ghostnetv2_mm.deployment import ClassifierExport
    from ghostnetv2_mm.deployment.verify import compare
    # logits 1.0 and 0.99999994 (one float32 step apart) first and second
    x = torch.tensor([0.5, 0.49999997, 0.1, 0.0]).view(1, 4, 1, 1)

    def swapped(batch):  # the runtime's rounding made the second one win
        logits = batch.flatten(1).numpy() * 2
        logits[0, :2] = logits[0, 1::-1].copy()
        return [logits]

    (row,) = compare(None, ClassifierExport(_Doubler()), swapped, [], inputs=[x])
    assert row['ok'] and (row['tied'], row['real']) == (1, 0)
