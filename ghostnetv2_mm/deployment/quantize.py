"""Static post-training INT8 quantisation of an exported ONNX file (onnxruntime, QDQ).

Weights are quantised per output channel (int8, symmetric), activations per tensor
(uint8, asymmetric) with ranges calibrated on sample inputs (min/max). Only the
operator types in ``op_types`` get quantize/dequantize pairs; everything else (by
default: the sigmoid gates of the DFC attention and the hard-sigmoid of SE, their
products, the nearest resizes, the residual adds and the pooling) stays float32, so
the gates stay exact and only the convolutions and linear layers run in INT8.
"""
import os
import tempfile
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from .export import METADATA_PREFIX, write_onnx_with_metadata

# Convolutions and linear layers: where the MACs are.
DEFAULT_OP_TYPES = ('Conv', 'Gemm', 'MatMul')

# Operator types onnxruntime (1.16+) runs on uint8 tensors, either as a QLinear*
# kernel (QLinearConcat, QLinearMul, QLinearAdd, QLinearSigmoid, QLinearAveragePool,
# QLinearGlobalAveragePool, ...) or as a type-agnostic kernel that reads and writes
# uint8 (Resize, MaxPool, Reshape, Transpose, ...). Quantising all of them removes
# the float islands (and their QuantizeLinear / DequantizeLinear pairs) between convs.
INTEGER_OP_TYPES = ('Conv', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'Sigmoid',
                    'AveragePool', 'GlobalAveragePool', 'MaxPool', 'Resize', 'Relu',
                    'Clip', 'LeakyRelu', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze',
                    'Transpose', 'Split', 'Pad', 'Softmax')

#: Where INT8 runs: placement name -> operator types quantised.
#: ``convs``: only the MAC-heavy layers (the gates, resizes, adds and pooling stay
#: float32, each behind its own QuantizeLinear / DequantizeLinear pair);
#: ``integer``: every operator onnxruntime has a uint8 kernel for.
PLACEMENTS = {'convs': DEFAULT_OP_TYPES, 'integer': INTEGER_OP_TYPES}

#: Quantisation formats: ``qdq`` (QuantizeLinear / DequantizeLinear around float ops,
#: fused by onnxruntime at load time) or ``qoperator`` (QLinear* nodes written out).
FORMATS = ('qdq', 'qoperator')


class _Batches:
    """onnxruntime's CalibrationDataReader over an iterable of (N, 3, H, W) arrays."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]):
        self.input_name = input_name
        self.batches = iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        if batch is None:
            return None
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self):  # (newer onnxruntime versions call this; one pass is enough)
        pass


def quantize_int8(src: str, dst: str, calibration: Iterable[np.ndarray],
                  op_types: Sequence[str] = DEFAULT_OP_TYPES,
                  exclude_nodes: Optional[Sequence[str]] = None,
                  per_channel: bool = True, *, float_prefixes: Sequence[str] = (),
                  quant_format: str = 'qdq', weight_type: str = 'int8',
                  reduce_range: bool = False, symmetric: bool = False) -> None:
    """Write ``dst``: ``src`` with QDQ INT8 convolutions/linear layers.

    Args:
        src (str): Float32 ONNX file (e.g. from ``export_onnx``).
        dst (str): Output path (written atomically, with ``src``'s metadata).
        calibration (iterable of ndarray): Preprocessed input batches (N, 3, H, W),
            float32, as the model expects them; a few hundred images in all.
        op_types (sequence of str): ONNX operator types to quantise.
        exclude_nodes (sequence of str, optional): Node names to keep in float.
        per_channel (bool): Per-output-channel weight scales (depthwise convolutions
            lose much more accuracy with one scale per tensor).
        float_prefixes (sequence of str): Also keep in float every node whose name
            starts with one of these (e.g. ``'/backbone/layer0/'``: the stem); the
            names are those of ``src`` after onnxruntime's pre-processing, which
            keeps the exporter's ``/module/path/Op`` names.
        quant_format (str): ``'qdq'`` (default) or ``'qoperator'``.
        weight_type (str): ``'int8'`` (default; U8S8, the VNNI kernels) or
            ``'uint8'`` (U8U8).
        reduce_range (bool): 7-bit weights (avoids the saturation of the
            pre-VNNI AVX2 ``vpmaddubsw`` path; costs accuracy).
        symmetric (bool): Symmetric ranges for activations and weights (onnxruntime's
            ``ActivationSymmetric`` / ``WeightSymmetric``; activations become int8).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if quant_format not in FORMATS:
        raise ValueError(f'quantize_int8: quant_format={quant_format!r}; allowed: '
                         + ', '.join(FORMATS))
    if weight_type not in ('int8', 'uint8'):
        raise ValueError(f'quantize_int8: weight_type={weight_type!r}; allowed: int8, uint8')
    if isinstance(float_prefixes, str):  # one prefix, not its characters
        float_prefixes = (float_prefixes,)
    source = onnx.load(src, load_external_data=False)
    unknown = unknown_nodes(src, exclude_nodes or [])
    if unknown:
        raise ValueError(f'exclude_nodes: {unknown} are no nodes of {src}')
    input_name = source.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, 'prepared.onnx')
        quantized = os.path.join(tmp, 'quantized.onnx')
        # shape inference + graph optimisation first, as onnxruntime recommends
        quant_pre_process(src, prepared, skip_symbolic_shape=True)
        exclude = list(exclude_nodes or [])
        if float_prefixes:
            names = [n.name for n in onnx.load(prepared).graph.node]
            matched = [n for n in names if n.startswith(tuple(float_prefixes))]
            if not matched:
                raise ValueError(f'quantize_int8: float_prefixes={list(float_prefixes)!r} '
                                 f'match no node of {src}; node names look like '
                                 f'{names[:3]!r}')
            exclude += matched
        symmetric_options = ({'ActivationSymmetric': True, 'WeightSymmetric': True}
                             if symmetric else {})
        quantize_static(prepared, quantized, _Batches(input_name, calibration),
                        quant_format=(QuantFormat.QDQ if quant_format == 'qdq'
                                      else QuantFormat.QOperator),
                        op_types_to_quantize=list(op_types), nodes_to_exclude=exclude,
                        per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=(QuantType.QInt8 if weight_type == 'int8'
                                     else QuantType.QUInt8),
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options=symmetric_options)
        # what the float file records it was made from holds for this one too
        metadata = {p.key: p.value for p in source.metadata_props}
        metadata[METADATA_PREFIX + 'quantized'] = (
            f'int8 {quant_format.upper()} (onnxruntime, MinMax; op types: '
            f'{",".join(op_types)}; float: {len(exclude)} nodes)')
        with open(quantized, 'rb') as f:
            write_onnx_with_metadata(f.read(), dst, metadata)


def unknown_nodes(src: str, names: Sequence[str]) -> List[str]:
    """The ``names`` that are no node of the ONNX file ``src`` (onnxruntime's
    quantiser ignores a node name it does not find, so a misspelt exclusion would
    quantise that node without a word)."""
    import onnx
    graph = onnx.load(src, load_external_data=False).graph
    present = {node.name for node in graph.node}
    return [name for name in names if name not in present]


# Integer nodes of the QOperator format that are not named QLinear*.
_INTEGER_NODES = ('ConvInteger', 'MatMulInteger', 'QGemm', 'QAttention')


def quantized_node_counts(path: str) -> dict:
    """Operator counts of a QDQ file: ``{'int8': {...}, 'float': {...}}``. A node runs
    in INT8 when it reads a DequantizeLinear output and only QuantizeLinear nodes read
    its outputs (the pattern onnxruntime fuses into an integer kernel), or when it is
    an integer node of the QOperator format (``QLinear*``); every other compute node
    runs in float32."""
    import onnx
    graph = onnx.load(path, load_external_data=False).graph
    produced_by = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    counts = {'int8': {}, 'float': {}}
    for node in graph.node:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear', 'Constant'):
            continue
        reads_dq = any(getattr(produced_by.get(i), 'op_type', None) == 'DequantizeLinear'
                       for i in node.input)
        readers = [c for o in node.output for c in consumers.get(o, [])]
        writes_q = bool(readers) and all(c.op_type == 'QuantizeLinear' for c in readers)
        kind = 'int8' if reads_dq and writes_q else 'float'
        if node.op_type.startswith('QLinear') or node.op_type in _INTEGER_NODES:
            kind = 'int8'  # the QOperator format's integer nodes
        counts[kind][node.op_type] = counts[kind].get(node.op_type, 0) + 1
    return counts


# The default tolerance of :func:`int8_differences`: INT8 costs accuracy; a float
# output that moves by more than this fraction of its range is called out.
INT8_TOLERANCE = 0.1

# Detector files are judged by matching detections, not slot by slot (INT8 moves
# near-equal scores past each other, and with them boxes between the sorted slots):
#: the float32 (and INT8) detections judged: those scoring at least INT8_MIN_SCORE
#: (what ``tools/demo.py`` and ``onnx_infer.py`` draw by default; below it a trained
#: detector's output is low-score clutter that NMS keeps or drops on small changes),
#: at most INT8_TOP per image, best first;
INT8_MIN_SCORE = 0.3
INT8_TOP = 20
#: a detection's twin on the other side: same label, IoU above INT8_MATCH_IOU and a
#: score within the tolerance (scores lie in [0, 1], so the tolerance is absolute);
INT8_MATCH_IOU = 0.5
#: the check passes when at least this share of the judged detections of each side
#: has a twin on the other (and, for Mask R-CNN, when the twins' masks, thresholded
#: at INT8_MASK_THRESHOLD in their boxes' frame, differ in at most the tolerance's
#: share of pixels).
INT8_MIN_MATCHED = 0.9
INT8_MASK_THRESHOLD = 0.5

DETECTOR_OUTPUTS = (('dets', 'labels'), ('dets', 'labels', 'masks'))


def file_task(path: str, names: Sequence[str]) -> str:
    """What an exported file's outputs are: the ``task`` its metadata records
    (``export_metadata``: 'detection', 'segmentation', 'classification', 'backbone');
    for a file without one, 'detection' when its outputs are a detector's
    (``dets``, ``labels``[, ``masks``]), else ''."""
    from .export import read_onnx_metadata
    task = read_onnx_metadata(path).get(METADATA_PREFIX + 'task', '')
    if not task and tuple(names) in DETECTOR_OUTPUTS:
        task = 'detection'
    return task


def int8_differences(names: Sequence[str], reference: Sequence[np.ndarray],
                     quantized: Sequence[np.ndarray],
                     tolerance: float = INT8_TOLERANCE, task: str = '',
                     min_matched: float = INT8_MIN_MATCHED,
                     min_score: float = INT8_MIN_SCORE) -> List[dict]:
    """Judge each output of the INT8 file against the float file's on the same
    inputs. Each row has ``name``, ``ok`` and ``text`` (what :func:`describe_int8`
    prints).

    * Detectors (``task='detection'``): one row for ``dets`` and ``labels`` together
      (and one for ``masks``): see :func:`int8_detection_differences`.
    * Every other file, per output: ``max_abs_diff``, ``range`` (of the float output)
      and ``ok`` when the difference is at most ``tolerance`` times that range; for
      integer outputs (a segmentor's class map, labels) ``relative`` is the fraction
      of elements (pixels) that differ, ok when at most ``tolerance``.

    Args:
        names (sequence of str): The output names.
        reference, quantized (sequence of ndarray): The float and INT8 files' outputs.
        tolerance (float): See above.
        task (str): The file's task (:func:`file_task`).
        min_matched (float): Detectors: the share of twins needed.
        min_score (float): Detectors: the lowest score judged.
    """
    if task == 'detection':
        return int8_detection_differences(names, reference, quantized, tolerance,
                                          min_matched, min_score)
    rows = []
    for name, ref, got in zip(names, reference, quantized):
        ref, got = np.asarray(ref), np.asarray(got)
        row = dict(name=name, shape_ok=ref.shape == got.shape)
        if not row['shape_ok']:
            row.update(ok=False, max_abs_diff=float('inf'), range=0.0, relative=float('inf'))
        elif np.issubdtype(ref.dtype, np.floating):
            diff = float(np.abs(ref.astype(np.float64) - got).max()) if ref.size else 0.0
            span = float(ref.max() - ref.min()) if ref.size else 0.0
            relative = diff / span if span > 0 else (0.0 if diff == 0 else float('inf'))
            row.update(max_abs_diff=diff, range=span, relative=relative,
                       ok=relative <= tolerance)
        else:
            differ = float((ref != got).mean()) if ref.size else 0.0
            row.update(max_abs_diff=float(np.abs(ref.astype(np.int64) - got).max())
                       if ref.size else 0.0, range=0.0, relative=differ,
                       ok=differ <= tolerance)
        if not row['shape_ok']:
            row['text'] = f'shape {got.shape} instead of {ref.shape} OUTSIDE the tolerance'
        else:
            what = ('of the elements differ' if row['range'] == 0.0 and not
                    np.issubdtype(ref.dtype, np.floating) else
                    f"of the range {row['range']:.3g}")
            row['text'] = (f"max abs diff {row['max_abs_diff']:.3g}, {row['relative']:.3g} "
                           f"{what} " + ('OK' if row['ok'] else 'OUTSIDE the tolerance'))
        rows.append(row)
    return rows


def _judged(dets: np.ndarray, labels: np.ndarray, min_score: float,
            top: int) -> Tuple[np.ndarray, dict]:
    """The rows of one image's detections that are judged (score >= ``min_score``,
    not padding, at most ``top``, best first) and them as ``pair_detections`` reads
    them."""
    keep = np.nonzero((dets[:, 4] >= min_score) & (dets[:, 4] > 0) & (labels >= 0))[0]
    keep = keep[np.argsort(-dets[keep, 4], kind='stable')][:top]
    return keep, dict(bboxes=dets[keep, :4], scores=dets[keep, 4], labels=labels[keep])


def _twins(own_dets, own_labels, other_dets, other_labels, tolerance, min_score, top):
    """Per image, the judged rows of ``own`` and their twins' rows in ``other`` (-1:
    none; the whole other output is searched, below ``min_score`` too); the largest
    score difference of a twin; how many without a twin have a box of their label
    there (IoU > INT8_MATCH_IOU) whose score is further off, and by how much."""
    from .verify import pair_detections
    judged, worst, off, off_worst = [], 0.0, 0, 0.0
    for n in range(len(own_dets)):
        rows, expected = _judged(own_dets[n], own_labels[n], min_score, top)
        partners, diff = pair_detections(expected, other_dets[n], other_labels[n],
                                         iou_thr=INT8_MATCH_IOU, score_tol=tolerance)
        judged.append((rows, partners))
        worst = max(worst, diff)
        missing = [i for i, p in enumerate(partners) if p < 0]
        if missing:
            loose, _ = pair_detections({k: v[missing] for k, v in expected.items()},
                                       other_dets[n], other_labels[n],
                                       iou_thr=INT8_MATCH_IOU, score_tol=np.inf)
            for i, p in zip(missing, loose):
                if p >= 0:
                    off += 1
                    off_worst = max(off_worst, abs(float(other_dets[n][p, 4])
                                                   - float(expected['scores'][i])))
    return judged, worst, off, off_worst


def int8_detection_differences(names: Sequence[str], reference: Sequence[np.ndarray],
                               quantized: Sequence[np.ndarray],
                               tolerance: float = INT8_TOLERANCE,
                               min_matched: float = INT8_MIN_MATCHED,
                               min_score: float = INT8_MIN_SCORE,
                               top: int = INT8_TOP) -> List[dict]:
    """Judge an exported detector's INT8 outputs (``dets`` (N, K, 5), ``labels``
    (N, K)[, ``masks`` (N, K, h, w)], each image's detections sorted by score, padding
    rows scored 0) by matching detections, not slot by slot: INT8 reorders near-equal
    scores, and a slot-by-slot comparison calls that a difference.

    Each judged float32 detection (score >= ``min_score``, the ``top`` best per
    image) looks for an INT8 twin anywhere in that image's INT8 output (same label,
    IoU > ``INT8_MATCH_IOU``, score within ``tolerance``), and each judged INT8
    detection for a float32 twin (INT8 must not add detections either). Row
    ``dets, labels``: ``matched`` / ``judged`` (float32 side), ``matched_int8`` /
    ``judged_int8``, ``max_score_diff`` (of the twins), ``score_off`` (detections
    without a twin whose box and label are there but whose score is further off)
    and ``ok`` when both shares are at least ``min_matched`` and something was
    judged. Row ``masks`` (Mask R-CNN): ``identical``, the share of equal pixels of
    the float32 detections' masks and their twins' (thresholded at
    ``INT8_MASK_THRESHOLD``, in the box frame the file gives them), ok when at least
    ``1 - tolerance``.
    """
    ref = dict(zip(names, (np.asarray(r) for r in reference)))
    got = dict(zip(names, (np.asarray(q) for q in quantized)))
    shapes = {k: (ref[k].shape, got[k].shape) for k in ref if k in got}
    if any(a != b for a, b in shapes.values()) or len(shapes) != len(names):
        return [dict(name=k, ok=False, shape_ok=False,
                     text=f'shape {b} instead of {a}: OUTSIDE the tolerance')
                for k, (a, b) in shapes.items()] or [dict(
                    name=', '.join(names), ok=False, shape_ok=False,
                    text='outputs missing: OUTSIDE the tolerance')]
    ref_dets, got_dets = ref['dets'].astype(np.float32), got['dets'].astype(np.float32)
    forward, worst, off, off_worst = _twins(ref_dets, ref['labels'], got_dets,
                                            got['labels'], tolerance, min_score, top)
    backward, worst_back, off_back, off_worst_back = _twins(
        got_dets, got['labels'], ref_dets, ref['labels'], tolerance, min_score, top)
    judged = sum(len(r) for r, _ in forward)
    matched = sum(sum(p >= 0 for p in ps) for _, ps in forward)
    judged_q = sum(len(r) for r, _ in backward)
    matched_q = sum(sum(p >= 0 for p in ps) for _, ps in backward)
    share = matched / judged if judged else 0.0
    share_q = matched_q / judged_q if judged_q else 1.0
    row = dict(name='dets, labels', shape_ok=True, judged=judged, matched=matched,
               judged_int8=judged_q, matched_int8=matched_q,
               max_score_diff=max(worst, worst_back), score_off=off + off_back,
               score_off_max=max(off_worst, off_worst_back),
               ok=judged > 0 and share >= min_matched and share_q >= min_matched)
    if not judged:
        text = (f'the float32 file detects nothing scoring >= {min_score:g} in these '
                'images: nothing compared (calibrate with images that show objects, or '
                'lower --min-score)')
    else:
        text = (f'{matched}/{judged} float32 detections (score >= {min_score:g}, top '
                f'{top} per image) have an INT8 twin (same label, IoU > {INT8_MATCH_IOU:g},'
                f' score within {tolerance:g}), {matched_q}/{judged_q} INT8 detections a '
                f'float32 twin; max score diff {row["max_score_diff"]:.3g}')
        if row['score_off']:
            text += (f'; {row["score_off"]} without a twin have the box and label there '
                     f'with a score further off (up to {row["score_off_max"]:.3g})')
    row['text'] = text + (f' (need {min_matched:g} of each) '
                          + ('OK' if row['ok'] else 'OUTSIDE the tolerance')
                          if judged else ' OUTSIDE the tolerance')
    rows = [row]
    if 'masks' in ref:
        same = pixels = 0
        for n, (own, partners) in enumerate(forward):
            pairs = [(r, p) for r, p in zip(own, partners) if p >= 0]
            if pairs:
                a = ref['masks'][n][[r for r, _ in pairs]] >= INT8_MASK_THRESHOLD
                b = got['masks'][n][[p for _, p in pairs]] >= INT8_MASK_THRESHOLD
                same, pixels = same + int((a == b).sum()), pixels + a.size
        identical = same / pixels if pixels else 0.0
        ok = pixels > 0 and identical >= 1 - tolerance
        rows.append(dict(name='masks', shape_ok=True, identical=identical, ok=ok,
                         text=(f'{100 * identical:.2f}% equal pixels of the twins\' masks '
                               f'(at {INT8_MASK_THRESHOLD:g}; need {100 * (1 - tolerance):g}%) '
                               if pixels else 'no twins to compare masks of ')
                         + ('OK' if ok else 'OUTSIDE the tolerance')))
    return rows


def describe_int8(row: dict) -> str:
    """The printed line of an :func:`int8_differences` row."""
    return f"  output {row['name']}: {row['text']}"


def quantize_pt2e_x86(module, example, calibration: Iterable):
    """PT2E static INT8 of ``module`` for x86 CPUs: ``torch.export`` at the example's
    fixed size, torchao's ``X86InductorQuantizer`` (uint8 activations per tensor,
    int8 weights per channel), ``prepare_pt2e``, calibration, ``convert_pt2e``.
    Run the result under ``torch.compile`` with ``torch._inductor.config.freezing``
    on: Inductor then lowers the quantize / dequantize patterns to oneDNN's int8
    convolutions (eagerly the result runs the float ops on fake-quantised values).

    Args:
        module (nn.Module): Float model in eval mode (deploy form).
        example (Tensor): One input (N, 3, H, W); the capture is specialised to
            its shape, so calibration batches and later inputs must have it too.
        calibration (iterable of Tensor): Inputs of the example's shape.

    Returns:
        torch.fx.GraphModule: the converted (quantised) module.
    """
    import torch
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    except ImportError as exc:  # PT2E moved out of torch.ao into torchao (torch 2.10+)
        raise ImportError('quantize_pt2e_x86 needs torchao (pip install torchao)') from exc
    with torch.no_grad():
        graph = torch.export.export(module, (example,)).module()
    # The quantizer finds convs and linears by the ``source_fn_stack`` metadata, which
    # non-strict export (the default) leaves out; name each node's source layer type.
    sources = {torch.ops.aten.conv2d.default: torch.nn.Conv2d,
               torch.ops.aten.linear.default: torch.nn.Linear}
    for node in graph.graph.nodes:
        if node.target in sources and 'source_fn_stack' not in node.meta:
            node.meta['source_fn_stack'] = [(node.name, sources[node.target])]
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(torch.as_tensor(batch))
    return convert_pt2e(prepared)


# ------------------------------------------------------------- calibration images
# The image files a calibration folder is searched for
CALIBRATION_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def read_image(path, w, h):
    """(3, h, w) float32 RGB; :class:`UserError` naming a file that is no image."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image = image.convert('RGB').resize((w, h), Image.BILINEAR)
    except Exception as exc:  # noqa: BLE001 - PIL's many errors: name the file
        raise UserError(f'--calib-dir: {path!r} cannot be read as an image ({exc}); '
                        'remove it or fix it') from exc
    return np.asarray(image, dtype=np.float32).transpose(2, 0, 1)


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux: MemAvailable)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def check_memory(num: int, h: int, w: int) -> None:
    """Refuse, before reading an image, calibration inputs that cannot fit in memory
    (the process would be killed without a word). Counts the float32 input arrays
    only: onnxruntime's calibration needs more on top, for every intermediate output."""
    need = num * 3 * h * w * 4
    free = available_memory()
    if need > free:
        raise UserError(f'--size {h} {w} with {num} calibration images needs '
                        f'{need / 2 ** 30:.1f} GiB for the inputs alone, but '
                        f'{free / 2 ** 30:.1f} GiB are available; use a smaller --size or '
                        '--num-images', 2)


def calibration_batches(folder, num, batch, size, mean, std):
    """(N, 3, H, W) float32 batches of the first ``num`` images under ``folder``
    (sorted, searched recursively), resized to ``size`` (H or (H, W)) and normalised
    with ``mean`` / ``std`` (RGB); :class:`UserError` for a folder without images, an
    image that cannot be read, or inputs that would not fit in memory."""
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
                   if f.lower().endswith(CALIBRATION_SUFFIXES))[:num]
    if not paths:
        raise UserError(f'--calib-dir {folder!r}: no images ({", ".join(CALIBRATION_SUFFIXES)})')
    h, w = size if len(size) == 2 else size * 2
    check_memory(len(paths), h, w)
    mean, std = np.float32(mean).reshape(3, 1, 1), np.float32(std).reshape(3, 1, 1)
    batches = []
    for start in range(0, len(paths), batch):
        images = [read_image(p, w, h) for p in paths[start:start + batch]]
        batches.append(((np.stack(images) - mean) / std).astype(np.float32))
    return batches
