"""The INT8 check of ``quantize_onnx.py`` (``int8_differences``) on constructed outputs
(no model): a detector's detections are matched, not compared slot by slot."""
import numpy as np
import onnx
from onnx import TensorProto, helper

from ghostnetv2_mm.deployment.export import METADATA_PREFIX, write_onnx_with_metadata
from ghostnetv2_mm.deployment.quantize import (INT8_MIN_SCORE, describe_int8, file_task,
                                               int8_differences)

NAMES = ['dets', 'labels']
# one image, five detections above the judged score, one below it, two padding rows
BOXES = np.array([[10, 10, 40, 40], [60, 10, 100, 50], [10, 60, 50, 110],
                  [70, 70, 120, 120], [30, 30, 70, 70], [0, 80, 20, 100]], np.float32)
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1], np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2])
# the same scores moved by up to 0.08: the order becomes 1, 0, 3, 2, 4, 5
REORDERED = np.array([0.82, 0.86, 0.64, 0.68, 0.5, 0.1], np.float32)


def outputs(boxes=BOXES, scores=SCORES, labels=LABELS, slots=8):
    """``dets`` (1, slots, 5) and ``labels`` (1, slots), sorted by score, padded as
    the export pads (score 0, label -1)."""
    order = np.argsort(-scores, kind='stable')
    dets = np.zeros((1, slots, 5), np.float32)
    out_labels = -np.ones((1, slots), np.int64)
    dets[0, :len(order), :4] = boxes[order]
    dets[0, :len(order), 4] = scores[order]
    out_labels[0, :len(order)] = labels[order]
    return [dets, out_labels]


def judge(got, ref=None, **kwargs):
    rows = int8_differences(NAMES, ref or outputs(), got, task='detection', **kwargs)
    assert len(rows) == 1 and rows[0]['name'] == 'dets, labels'
    return rows[0]


def test_reordered_equal_detections_pass():
    # INT8 moves near-equal scores past each other: other slots, same detections
    got = outputs(BOXES + 1.5, REORDERED)
    assert not np.array_equal(got[1], outputs()[1])  # the slots do differ
    row = judge(got)
    assert row['ok'] and row['judged'] == row['matched'] == 5
    assert row['judged_int8'] == row['matched_int8'] == 5
    # the slot-by-slot rule (any other task) calls the same outputs different
    assert not all(r['ok'] for r in int8_differences(NAMES, outputs(), got))


def test_small_score_changes_reordering_pass():
    scores = np.array([0.85, 0.88, 0.7, 0.64, 0.5, 0.1], np.float32)
    row = judge(outputs(BOXES, scores))
    assert row['ok'] and row['matched'] == 5
    assert np.isclose(row['max_score_diff'], 0.08, atol=1e-6)
    assert 'have an INT8 twin' in describe_int8(row) and describe_int8(row).endswith('OK')


def test_missing_detection_fails():
    keep = np.arange(6) != 2
    row = judge(outputs(BOXES[keep], SCORES[keep], LABELS[keep]))
    assert not row['ok'] and (row['matched'], row['judged']) == (4, 5)
    assert 'OUTSIDE the tolerance' in describe_int8(row)


def test_label_swap_fails():
    labels = LABELS.copy()
    labels[1] = 2
    row = judge(outputs(labels=labels))
    assert not row['ok'] and row['matched'] == 4 and row['matched_int8'] == 4


def test_moved_box_fails():
    boxes = BOXES.copy()
    boxes[3] += 30  # IoU with its old place: 0.14
    row = judge(outputs(boxes))
    assert not row['ok'] and row['matched'] == 4


def test_score_beyond_the_tolerance_fails_and_is_named():
    scores = SCORES.copy()
    scores[0] = 0.75  # 0.15 off: box and label there, the score is not
    row = judge(outputs(scores=scores))
    assert not row['ok'] and row['score_off'] == 2  # (seen from both sides)
    assert judge(outputs(scores=scores), tolerance=0.2)['ok']


def test_added_detection_fails():
    boxes = np.concatenate([BOXES, [[80, 0, 120, 30]]]).astype(np.float32)
    row = judge(outputs(boxes, np.append(SCORES, 0.65).astype(np.float32),
                        np.append(LABELS, 1)))
    assert not row['ok'] and row['matched'] == 5 and row['matched_int8'] == 5
    assert row['judged_int8'] == 6


def test_min_matched_and_min_score():
    keep = np.arange(6) != 2
    got = outputs(BOXES[keep], SCORES[keep], LABELS[keep])
    assert judge(got, min_matched=0.8)['ok']  # 4 of 5
    # a detection below the judged score may go (clutter at the score threshold)
    keep = np.arange(6) != 5
    assert SCORES[5] < INT8_MIN_SCORE
    assert judge(outputs(BOXES[keep], SCORES[keep], LABELS[keep]))['ok']
    assert not judge(outputs(BOXES[keep], SCORES[keep], LABELS[keep]), min_score=0.05)['ok']


def test_nothing_judged_fails():
    nothing = outputs(BOXES[:0], SCORES[:0], LABELS[:0])
    row = judge(nothing, ref=nothing)
    assert not row['ok'] and 'nothing compared' in row['text']


def test_masks_of_twins_are_compared():
    # detection j's mask (in its box's frame): row j set; the INT8 file has the
    # same masks in its own slot order
    patterns = np.zeros((8, 6, 6), np.float32)
    for j in range(6):
        patterns[j, j] = 0.9
    order = np.argsort(-REORDERED, kind='stable')
    names = NAMES + ['masks']
    ref = outputs() + [patterns[None]]  # (SCORES are sorted: slot j = detection j)
    got = outputs(BOXES, REORDERED) + [patterns[np.r_[order, 6, 7]][None]]
    rows = int8_differences(names, ref, got, task='detection')
    assert [r['name'] for r in rows] == ['dets, labels', 'masks']
    assert all(r['ok'] for r in rows) and rows[1]['identical'] == 1.0
    # each slot with the mask of the detection that sat there in float32: wrong
    got[2] = patterns[None]
    rows = int8_differences(names, ref, got, task='detection')
    assert rows[0]['ok'] and not rows[1]['ok']
    assert 'OUTSIDE' in describe_int8(rows[1])


def test_other_files_keep_the_range_and_pixel_rules():
    ref = np.linspace(0, 10, 50, dtype=np.float32).reshape(1, 50)
    assert int8_differences(['out'], [ref], [ref + 0.9])[0]['ok']  # 0.09 of the range
    assert not int8_differences(['out'], [ref], [ref + 1.1])[0]['ok']
    classes = np.zeros((1, 1, 10, 10), np.int64)
    changed = classes.copy()
    changed[0, 0, 0, :9] = 3  # 9% of the pixels
    assert int8_differences(['output'], [classes], [changed], task='segmentation')[0]['ok']
    changed[0, 0, 1, :2] = 3  # 11%
    row = int8_differences(['output'], [classes], [changed], task='segmentation')[0]
    assert not row['ok'] and 'of the elements differ' in row['text']


def _onnx_file(path, outputs, task=None):
    nodes = [helper.make_node('Identity', ['input'], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in outputs])
    model = helper.make_model(graph)
    write_onnx_with_metadata(model.SerializeToString(), str(path),
                             {METADATA_PREFIX + 'task': task} if task else None)
    return str(path)


def test_file_task_reads_the_metadata_or_the_output_names(tmp_path):
    assert file_task(_onnx_file(tmp_path / 'a.onnx', NAMES, 'detection'), NAMES) == 'detection'
    # a file without the project's metadata: a detector's output names tell
    assert file_task(_onnx_file(tmp_path / 'b.onnx', NAMES), NAMES) == 'detection'
    assert file_task(_onnx_file(tmp_path / 'c.onnx', ['output'], 'segmentation'),
                     ['output']) == 'segmentation'
    assert file_task(_onnx_file(tmp_path / 'd.onnx', ['logits']), ['logits']) == ''
    assert onnx.load(str(tmp_path / 'a.onnx')).graph.output[0].name == 'dets'
