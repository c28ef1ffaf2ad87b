"""Whole-model ONNX export (RetinaNet, Mask R-CNN, DeepLabV3) checked with onnxruntime
against the PyTorch ``predict``, small inputs in the exported graph, and INT8
quantisation. No timing assertions."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from ghostnetv2_mm.models import DFCAttention, GhostNetV2

from helpers import (DEEPLABV3, DEEPLABV3_OPTIONS, RETINANET, RETINANET_OPTIONS, ROOT,
                     random_checkpoint, randomise_bn)

import onnxruntime as ort  # noqa: E402  (required test dependencies, no skip)

from ghostnetv2_mm.deployment import (BackboneExport, build_model, export_onnx,  # noqa: E402
                                      onnx_session, quantize_int8, quantized_node_counts,
                                      run_onnx, wrap_for_export)
from ghostnetv2_mm.deployment.verify import (argmax_differences, compare,  # noqa: E402
                                              detection_boundaries, judge_detections,
                                              torch_detections)

# Every test here compares float results of two implementations (PyTorch, onnxruntime)
pytestmark = pytest.mark.numerics

MASK_RCNN = os.path.join(ROOT, 'configs', 'mask-rcnn_ghostnetv2_coco.py')
MASK_RCNN_OPTIONS = {
    'model.backbone.init_cfg': None, 'model.neck.out_channels': 32,
    'model.rpn_head.in_channels': 32, 'model.rpn_head.feat_channels': 32,
    'model.roi_head.bbox_roi_extractor.out_channels': 32,
    'model.roi_head.bbox_head.in_channels': 32, 'model.roi_head.bbox_head.fc_out_channels': 64,
    'model.roi_head.bbox_head.num_classes': 3,
    'model.roi_head.mask_roi_extractor.out_channels': 32,
    'model.roi_head.mask_head.in_channels': 32, 'model.roi_head.mask_head.conv_out_channels': 32,
    'model.roi_head.mask_head.num_classes': 3}


def _sharpen_roi_heads(model):
    """He-normal weights for the RoI heads' layers except the box regression: as
    initialised by the config, every RoI scores about 1 / (classes + 1) for every class
    whatever its features, which would hide a wrong RoI pooling (and leave nothing
    above score_thr); now scores and masks depend on the pooled features, while the
    boxes stay near their proposals."""
    with torch.no_grad():
        for module in model.roi_head.modules():
            if (isinstance(module, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.ConvTranspose2d))
                    and module is not model.roi_head.bbox_head.fc_reg):
                torch.nn.init.kaiming_normal_(module.weight)
                if module.bias is not None:
                    module.bias.normal_(0, 0.1)
    return model


def _export(config, options, folder, size=(128, 128), sharpen=None):
    ckpt = random_checkpoint(config, options, folder / 'random.pth', sharpen)
    model = build_model(config, ckpt, options)
    wrapper = wrap_for_export(model).eval()
    path = str(folder / 'model.onnx')
    export_onnx(wrapper, path, size)
    return model, onnx_session(path), ckpt


@pytest.fixture(scope='module')
def retinanet(tmp_path_factory):
    """RetinaNet from its config (random weights), exported at 128x128."""
    return _export(RETINANET, RETINANET_OPTIONS, tmp_path_factory.mktemp('retinanet'))


@pytest.fixture(scope='module')
def deeplabv3(tmp_path_factory):
    """DeepLabV3 from its config (random weights), exported at 128x128."""
    return _export(DEEPLABV3, DEEPLABV3_OPTIONS, tmp_path_factory.mktemp('deeplabv3'))


@pytest.fixture(scope='module')
def mask_rcnn(tmp_path_factory):
    """Mask R-CNN from its config (random weights, sharpened RoI heads), exported at
    128x128."""
    return _export(MASK_RCNN, MASK_RCNN_OPTIONS, tmp_path_factory.mktemp('mask_rcnn'),
                   sharpen=_sharpen_roi_heads)


def test_retinanet_onnx_matches_predict_at_two_sizes(retinanet):
    model, session, _ = retinanet
    gen = torch.Generator().manual_seed(1)
    for size in [(128, 128), (160, 192)]:
        x = torch.randn(2, 3, *size, generator=gen)
        dets, labels = run_onnx(session, x)
        assert dets.shape == (2, 100, 5) and labels.shape == (2, 100)
        expected = torch_detections(model, x)
        for i, exp in enumerate(expected):
            assert len(exp['scores']) >= 20  # random weights: plenty of boxes
            # each of PyTorch's 20 best has its ONNX twin (same label, IoU > 0.99,
            # score equal to rounding) anywhere in the output, or is a near-tie at a
            # boundary (NMS, top-k cut, score threshold); so is each of the ONNX 20 best
            judged = judge_detections(exp, dets[i], labels[i], detection_boundaries(model),
                                      top=20)
            assert judged['real'] == [], (size, judged)
            assert judged['matched'] >= 20 - len(judged['ties']), (size, judged)


def test_retinanet_onnx_pads_with_zero_rows_and_keeps_the_nms(retinanet):
    model, session, _ = retinanet
    x = torch.randn(1, 3, 96, 96)
    dets, labels = run_onnx(session, x)
    real = dets[0, :, 4] > 0
    expected = torch_detections(model, x, top=1000)[0]
    assert int(real.sum()) == min(100, len(expected['scores']))
    assert (labels[0][~real] == -1).all() and (dets[0][~real] == 0).all()
    # after NMS no two kept boxes of one class overlap by more than the config's 0.5
    boxes = torch.from_numpy(dets[0][real, :4])
    lab = torch.from_numpy(labels[0][real])
    iou = box_iou(boxes, boxes)
    same = (lab[:, None] == lab[None]) & ~torch.eye(len(lab), dtype=torch.bool)
    assert iou[same].max().item() <= 0.5 + 1e-5


def test_mask_rcnn_onnx_outputs_follow_mmdeploy(mask_rcnn):
    model, session, _ = mask_rcnn
    assert [o.name for o in session.get_outputs()] == ['dets', 'labels', 'masks']
    dets, labels, masks = run_onnx(session, torch.randn(2, 3, 96, 160))
    assert dets.shape == (2, 100, 5) and labels.shape == (2, 100)
    assert masks.shape == (2, 100, 28, 28)  # the mask head's map of each box's class
    assert masks.min() >= 0 and masks.max() <= 1 and masks.max() > 0.5
    padding = dets[..., 4] == 0
    assert (labels[padding] == -1).all() and (masks[padding] == 0).all()


def test_mask_rcnn_onnx_without_detections_gives_only_padding_rows(tmp_path):
    # random RoI heads as the config initialises them score every class about
    # 1 / (classes + 1): nothing passes a score_thr of 0.9, the mask head then runs
    # on no RoI at all, and the outputs are all padding
    options = {**MASK_RCNN_OPTIONS, 'model.test_cfg.rcnn.score_thr': 0.9}
    model, session, _ = _export(MASK_RCNN, options, tmp_path)
    x = torch.randn(1, 3, 96, 128)
    assert len(torch_detections(model, x, top=100)[0]['scores']) == 0
    dets, labels, masks = run_onnx(session, x)
    assert masks.shape == (1, 100, 28, 28)
    assert (dets == 0).all() and (labels == -1).all() and (masks == 0).all()


# 64x64: fewer than the RPN's 1000 proposals survive its NMS, so the graph's padding
# proposals must score 0 in the second stage; 160x192: RoIs map to several levels.
@pytest.mark.parametrize('size', [(64, 64), (128, 128), (160, 192)], ids=str)
def test_mask_rcnn_onnx_matches_predict(mask_rcnn, size):
    model, session, _ = mask_rcnn
    (row,) = compare(model, wrap_for_export(model), session, [size], batch=2, top=100)
    # PyTorch's (up to) 100 detections per image have their ONNX twins (same label,
    # IoU > 0.99, score equal to rounding) or are near-ties at a boundary: nearby
    # proposals of these random features can score equal to 1e-6, and which of two
    # such boxes NMS keeps then follows float rounding. Their masks, pasted, equal
    # pixel for pixel. (A RoI pooled from the wrong level changes scores: real.)
    assert row['expected'] >= 150  # both images: plenty of detections to compare
    assert row['real'] == [] and row['ok'], row
    assert row['matched'] >= row['expected'] - row['tied'], row
    assert row['mask_identical'] >= 0.999, row


def test_deeplabv3_onnx_matches_predict_at_two_sizes(deeplabv3):
    model, session, _ = deeplabv3
    gen = torch.Generator().manual_seed(1)
    for size in [(128, 128), (160, 192)]:
        x = torch.randn(2, 3, *size, generator=gen)
        (output,) = run_onnx(session, x)
        assert output.shape == (2, 1, *size)
        with torch.no_grad():
            results = model.predict(x)
        expected = torch.stack([r.pred_sem_seg.data for r in results]).numpy()
        logits = torch.stack([r.seg_logits.data for r in results]).numpy()
        # a pixel may differ only where PyTorch's two best logits agree to rounding
        assert (output == expected).mean() >= 0.999
        _, real = argmax_differences(logits, expected[:, 0], output[:, 0])
        assert real == 0, size


@pytest.mark.parametrize('traced_at', [(8, 8), (1, 1), (5, 7)],
                         ids=['traced-8x8', 'traced-1x1', 'traced-5x7'])
def test_dfc_pooling_traced_at_one_size_holds_at_every_size(tmp_path, traced_at):
    class Pool(torch.nn.Module):
        def forward(self, x):
            return DFCAttention.downsample(x)

    path = str(tmp_path / 'pool.onnx')
    torch.onnx.export(Pool(), (torch.randn(1, 2, *traced_at),), path, dynamo=False,
                      opset_version=17, input_names=['input'], output_names=['out'],
                      dynamic_axes={'input': {0: 'n', 2: 'h', 3: 'w'}})
    session = onnx_session(path)
    for h in range(1, 10):
        for w in range(1, 10):
            x = torch.randn(2, 2, h, w)
            # the reference: 2x2 average pool, a 1-pixel side pooled with kernel 1
            kernel = (min(2, h), min(2, w))
            expected = F.avg_pool2d(x, kernel, kernel)
            torch.testing.assert_close(DFCAttention.downsample(x), expected, rtol=0, atol=0)
            (got,) = run_onnx(session, x)
            assert got.shape == tuple(expected.shape), (h, w)
            assert np.abs(got - expected.numpy()).max() < 1e-6, (h, w)


def test_backbone_onnx_is_right_for_inputs_of_32_pixels_and_less(tmp_path):
    # Traced at 64 px (2-px maps at stride 32); run at sizes whose last maps are 1 px.
    backbone = randomise_bn(GhostNetV2('1.0x', out_indices=(5, 7, 9, 10))).eval()
    backbone.switch_to_deploy(channels_last=False)
    path = str(tmp_path / 'backbone.onnx')
    export_onnx(BackboneExport(backbone), path, (64, 64))
    session = onnx_session(path)
    for size in [(32, 32), (17, 40), (1, 1), (64, 64)]:
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            expected = backbone(x)
        got = run_onnx(session, x)
        for e, g in zip(expected, got):
            assert g.shape == tuple(e.shape), size
            assert np.abs(g - e.numpy()).max() < 1e-4, size


def test_int8_quantised_backbone_runs_and_stays_close(tmp_path):
    backbone = randomise_bn(GhostNetV2('1.0x', out_indices=(5,))).eval()  # small: fast
    backbone.switch_to_deploy(channels_last=False)
    src, dst = str(tmp_path / 'fp32.onnx'), str(tmp_path / 'int8.onnx')
    export_onnx(BackboneExport(backbone), src, (64, 64))
    gen = torch.Generator().manual_seed(0)
    calib = [torch.randn(4, 3, 64, 64, generator=gen).numpy() for _ in range(4)]
    quantize_int8(src, dst, calib)
    counts = quantized_node_counts(dst)
    # every conv quantised; the DFC gates (Sigmoid, Mul) stay float
    assert counts['int8'].get('Conv', 0) > 0 and 'Conv' not in counts['float']
    assert counts['float'].get('Sigmoid', 0) > 0 and 'Sigmoid' not in counts['int8']
    x = calib[0]
    (ref,) = run_onnx(onnx_session(src), x)
    (got,) = run_onnx(onnx_session(dst), x)
    assert got.shape == ref.shape
    cosine = (ref * got).sum() / np.sqrt((ref ** 2).sum() * (got ** 2).sum())
    assert cosine > 0.9


def test_export_tool_checks_a_whole_model(tmp_path, deeplabv3):
    _, _, ckpt = deeplabv3
    options = [f'{k}={v}' for k, v in DEEPLABV3_OPTIONS.items()]
    out = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', '--config', DEEPLABV3,
         '--checkpoint', ckpt, '--out', str(tmp_path / 'd.onnx'), '--export-size', '96',
         '--check-sizes', '96', '64x128', '--cfg-options', *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    identical = [float(line.split()[1].rstrip('%')) for line in out.stdout.splitlines()
                 if 'identical pixels' in line]
    assert len(identical) == 2 and min(identical) >= 99.9


def test_onnx_predictor_gives_inference_detectors_mask_rcnn_results(mask_rcnn, toy_root,
                                                                     tmp_path):
    # The end-to-end ONNX path: the config's test pipeline (a 64x64 image resized to
    # 800x800), onnxruntime, boxes and masks mapped back to the original image,
    # against mmdet's own inference_detector on the PyTorch model; then the drawing.
    import glob

    import mmcv
    from mmdet.apis import inference_detector
    from mmengine.config import Config

    from ghostnetv2_mm.deployment.runtime import OnnxPredictor
    model, _, ckpt = mask_rcnn
    cfg = Config.fromfile(MASK_RCNN)
    cfg.merge_from_dict(MASK_RCNN_OPTIONS)
    image = sorted(glob.glob(os.path.join(toy_root, 'images', 'validation', '*')))[0]
    predictor = OnnxPredictor(cfg, os.path.join(os.path.dirname(ckpt), 'model.onnx'))
    got = predictor(image).pred_instances
    model.cfg = cfg
    ref = inference_detector(model, image).pred_instances
    h, w = mmcv.imread(image).shape[:2]
    assert got.masks.shape == (len(got), h, w) and len(got) == len(ref) > 50
    # every PyTorch detection has its ONNX twin in original-image pixels (or is a
    # near-tie at a boundary), and the twins' masks (pasted at the original size) are
    # the same pixels
    dets = torch.cat([got.bboxes, got.scores[:, None]], dim=1).numpy()
    expected = dict(bboxes=ref.bboxes, scores=ref.scores, labels=ref.labels)
    judged = judge_detections(expected, dets, got.labels.numpy(),
                              detection_boundaries(model), top=len(ref))
    assert judged['real'] == [], judged
    pairs = [(i, p) for i, p in enumerate(judged['partners']) if p >= 0]
    assert len(pairs) >= len(ref) - len(judged['ties'])
    mine, theirs = [i for i, _ in pairs], [p for _, p in pairs]
    identical = float((got.masks[theirs] == ref.masks[mine]).float().mean())
    assert identical >= 0.999
    out = str(tmp_path / 'drawn.png')
    predictor.draw(image, predictor(image), out)
    assert mmcv.imread(out).shape[:2] == (h, w)


def test_export_tool_checks_a_detector_on_images(tmp_path, mask_rcnn, toy_root):
    # random inputs would not do for a trained detector (nothing found in noise): the
    # tool checks on images prepared by the config's test pipeline
    _, _, ckpt = mask_rcnn
    options = [f'{k}={v}' for k, v in MASK_RCNN_OPTIONS.items()]
    images = [os.path.join(toy_root, 'images', split) for split in ('training', 'validation')]
    # With random weights, boxes of these images score equal to 1e-7 (near-ties at
    # NMS and the top-k cut) which the CPU's kernels and thread count decide either
    # way: the check counts them, and fails only on real differences.
    out = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', '--config', MASK_RCNN,
         '--checkpoint', ckpt, '--out', str(tmp_path / 'm.onnx'), '--export-size', '96',
         '--check-images', *images, '--cfg-options', *options],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    summary = next(line for line in out.stdout.splitlines() if line.startswith('all '))
    numbers = re.match(r'all 6 inputs: (\d+)/(\d+) detections matched, (\d+) near-ties '
                       r'not counted, (\d+) real differences, .* masks >= ([\d.]+)% '
                       'identical$', summary)
    assert numbers, summary
    matched, expected, tied, real, masks = map(float, numbers.groups())
    assert expected >= 6 * 20 and real == 0  # the top 20 of each image
    assert matched >= expected - tied
    assert masks >= 99.9
    # near-ties are named with their boundary under their image's line
    assert (tied > 0) == ('near-tie(s) at a boundary' in out.stdout)
    assert (tmp_path / 'm.onnx').exists()


def test_export_tool_names_a_missing_check_image(tmp_path):
    out = subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', '--config', MASK_RCNN,
         '--out', str(tmp_path / 'm.onnx'), '--check-images', str(tmp_path / 'nope.jpg')],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert f"--check-images '{tmp_path / 'nope.jpg'}': no such file or folder" in out.stderr
