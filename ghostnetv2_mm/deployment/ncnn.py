"""ncnn, the mobile runtime: convert a model to ``PREFIX.param`` / ``PREFIX.bin`` and run
it with ncnn's Python binding.

The conversion goes through the project's ONNX export form (``export.py``,
``wrappers.py``: the deploy model with its exact rewrites), written for one fixed input
shape, which pnnx (the PyTorch / ONNX to ncnn converter, PyPI ``pnnx``) turns into an
ncnn graph. (pnnx's own tracer on the PyTorch deploy model gives a graph ncnn cannot
load: the DFC pooling's size-dependent crop becomes a Crop with shape inputs.) ncnn
sizes its Interp (resize) layers at conversion, so a file runs at its input size only.

What goes into the file (:func:`ncnn_form`):

* backbones, ImageNet classifiers: as in the ONNX file (features; logits);
* segmentors: as in the ONNX file (the class map at the input resolution);
* single-stage detectors (RetinaNet, YOLOv3, SSDLite): the network up to the head's
  raw outputs (class scores and box deltas per pyramid level). ncnn has no
  ``NonMaxSuppression`` with ONNX's semantics, so decoding and NMS run in Python on
  the ncnn outputs (:class:`DetectionPostProcess`): for heads the ONNX export supports
  (RetinaNet) the very code of the ONNX graph (``dense_candidates``, ``batched_nms``),
  otherwise (YOLOv3, SSDLite: other box coders / softmax scores) the head's own
  ``predict_by_feat``. Either way the result is ``dets`` / ``labels`` as the ONNX
  detectors give them, which ``runtime.py`` maps back to the image;
* two-stage detectors (Mask R-CNN) are refused: between the stages their graph selects
  a data-dependent number of boxes (NMS, per-level RoI selection) for RoIAlign, which
  ncnn cannot express.

ncnn files carry no metadata, so the export writes ``PREFIX.json`` beside them
(:func:`sidecar`): what ``export_onnx`` records in an ONNX file (config, task,
normalisation, input conventions, classes) plus the fixed input size, the blob names,
the output shapes and the SHA-256 of both files (a .param from another export is
noticed).
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..utils.cli import UserError
from .export import METADATA_PREFIX, export_metadata, export_onnx, wrap_for_export
from .runtime import ImagePreparer, OnnxPredictor
from .wrappers import (DenseDetectorExport, SegmentorExport, _check_dense_head, batched_nms,
                       dense_candidates)

INSTALL_HINT = ("pip install pnnx ncnn (or pip install 'ghostnetv2-mm[deploy]', or "
                'bash tools/install.sh --deploy)')
SIDECAR_FORMAT = 'ghostnetv2_mm ncnn export'
SIDECAR_VERSION = 1
# pnnx names the graph's input and outputs in0, out0, out1, ... in the order of the
# ONNX graph's inputs and outputs
INPUT_BLOB = 'in0'


def require(package: str):
    """Import ``package`` ('ncnn' or 'pnnx'); :class:`UserError` saying how to install
    it when it is missing."""
    import importlib
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise UserError(f'the ncnn tools need the PyPI package {package!r}, which is not '
                        f'installed: {INSTALL_HINT}') from exc


def prefix_files(prefix: str) -> Dict[str, str]:
    """The files of an ncnn export: ``param``, ``bin`` and ``json`` (the sidecar)."""
    return {ext: f'{prefix}.{ext}' for ext in ('param', 'bin', 'json')}


# --------------------------------------------------------------- what goes in the file
class DenseHeadOutputs(DenseDetectorExport):
    """A single-stage detector up to its head's raw outputs: ``head(extract_feat(x))``
    flattened to one tensor per output (for RetinaNet the class scores of every level,
    then the box deltas of every level). ``groups`` says how many of them make up each
    of the head's output lists, to hand them back to its post-processing.

    A :class:`DenseDetectorExport` (what the export checks compare as a detector),
    whose post-processing runs outside the graph (:class:`DetectionPostProcess`).
    """

    def __init__(self, detector: nn.Module):
        nn.Module.__init__(self)  # no check: the head's own code post-processes
        self.detector = detector
        levels = len(detector.bbox_head.prior_generator.strides)
        # the head's forward returns a tuple of per-level lists: RetinaNet and SSD
        # (class scores, box deltas), YOLOv3 (its prediction maps,)
        kinds = (('pred_map',) if type(detector.bbox_head).__name__.startswith('YOLO')
                 else ('cls_score', 'bbox_pred'))
        self.groups = tuple(levels for _ in kinds)
        self.output_names = tuple(f'{kind}_level{i}' for kind in kinds for i in range(levels))

    def forward(self, input: Tensor) -> List[Tensor]:
        outs = self.detector.bbox_head(self.detector.extract_feat(input))
        flat = [t for group in outs for t in group]
        assert tuple(len(g) for g in outs) == self.groups, 'head output groups changed'
        return flat


class SegmentorLogits(SegmentorExport):
    """An mmseg ``EncoderDecoder``'s decode-head logits resized (bilinear) to the input
    size: the ONNX segmentor graph without its last step, the per-pixel argmax (ncnn's
    ArgMax layer is not in its PyPI builds), which :func:`class_map` takes outside."""

    output_names = ('logits',)

    def forward(self, input: Tensor) -> Tensor:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(input))
        return F.interpolate(logits, size=tuple(input.shape[2:]), mode='bilinear',
                             align_corners=head.align_corners)


def class_map(logits: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """(N, 1, H, W) int64 class indices from (N, C, H, W) logits, as the ONNX
    segmentor graph ends: the argmax, or for one channel the sigmoid above
    ``threshold`` (the decode head's)."""
    if logits.shape[1] == 1:
        return (1 / (1 + np.exp(-logits)) > threshold).astype(np.int64)
    return logits.argmax(axis=1)[:, None].astype(np.int64)


def refuse_two_stage(name: str) -> None:
    """:class:`UserError`: ncnn cannot run a two-stage detector (``name``)."""
    raise UserError(f'{name}: ncnn cannot run two-stage detectors (Mask / Faster '
                    'R-CNN): between the stages the graph picks a data-dependent number of '
                    'boxes (NMS, RoIAlign per level), which pnnx leaves without ncnn '
                    'layers; export it to ONNX (export_onnx.py) instead')


def check_config(cfg) -> None:
    """Refuse, before the model is built, a config whose model ncnn cannot run."""
    if 'roi_head' in cfg.model:
        refuse_two_stage(cfg.model.get('type', 'this model'))


def ncnn_form(model: nn.Module) -> nn.Module:
    """The module whose graph goes into the ncnn file (see the module docstring);
    :class:`UserError` for two-stage detectors."""
    if hasattr(model, 'roi_head'):
        refuse_two_stage(type(model).__name__)
    if hasattr(model, 'bbox_head'):
        return DenseHeadOutputs(model).eval()
    wrapper = wrap_for_export(model)
    if isinstance(wrapper, SegmentorExport):
        return SegmentorLogits(model).eval()
    return wrapper


class DetectionPostProcess:
    """Decoding and NMS of a single-stage detector's raw head outputs (as the ncnn file
    gives them) into ``dets`` (N, K, 5) and ``labels`` (N, K), K = the head's
    ``max_per_img``, in the ONNX detectors' layout (best first, padding rows score 0
    and label -1; boxes in input pixels).

    Heads the ONNX export supports (RetinaNet) run the ONNX graph's own code
    (``dense_candidates`` and ``batched_nms``, eagerly); others (YOLOv3, SSDLite) run
    their ``predict_by_feat``, as their ``predict`` does.

    Args:
        head (nn.Module): The detector's ``bbox_head`` (weights are not used).
        groups (sequence of int): How many outputs each of the head's output lists has
            (:attr:`DenseHeadOutputs.groups`).
    """

    def __init__(self, head: nn.Module, groups: Sequence[int]):
        self.head = head
        self.groups = tuple(groups)
        try:
            _check_dense_head(head, 'dense heads')
            self.route = 'onnx graph code'
        except NotImplementedError:
            self.route = 'predict_by_feat'

    def _regroup(self, outputs: Sequence) -> List[List[Tensor]]:
        tensors = [torch.from_numpy(np.ascontiguousarray(o)) for o in outputs]
        if len(tensors) != sum(self.groups):
            raise UserError(f'{len(tensors)} head outputs, expected {sum(self.groups)} '
                            f'(groups {list(self.groups)})')
        grouped, start = [], 0
        for count in self.groups:
            grouped.append(tensors[start:start + count])
            start += count
        return grouped

    def __call__(self, outputs: Sequence, input_shape: Sequence[int]) -> List[np.ndarray]:
        """``outputs``: the head outputs (arrays with the batch first); ``input_shape``:
        (N, 3, H, W) of the input they come from. Returns [dets, labels] arrays."""
        grouped = self._regroup(outputs)
        n, _, h, w = input_shape
        cfg = self.head.test_cfg
        with torch.no_grad():
            if self.route == 'onnx graph code':
                # the sizes (and dtype) of the input are all dense_candidates reads
                like = grouped[0][0].new_empty((n, 3, h, w))
                boxes, scores, labels, _ = dense_candidates(self.head, *grouped, like)
                dets, labels = batched_nms(boxes, scores, labels,
                                           cfg['nms']['iou_threshold'],
                                           cfg.get('score_thr', 0), cfg['max_per_img'])
                return [dets.numpy(), labels.numpy()]
            metas = [dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                          batch_input_shape=(h, w), scale_factor=(1.0, 1.0))
                     for _ in range(n)]
            results = self.head.predict_by_feat(*grouped, batch_img_metas=metas,
                                                rescale=False)
        k = cfg['max_per_img']
        dets = np.zeros((n, k, 5), np.float32)
        labels = np.full((n, k), -1, np.int64)
        for i, result in enumerate(results):
            order = result.scores.argsort(descending=True)[:k]
            kept = len(order)
            dets[i, :kept, :4] = result.bboxes[order].numpy()
            dets[i, :kept, 4] = result.scores[order].numpy()
            labels[i, :kept] = result.labels[order].numpy()
        return [dets, labels]


def build_head(cfg) -> nn.Module:
    """The config's detection head alone (for its post-processing; weights unused)."""
    import copy

    from ..utils.toolkit import setup_toolkit
    from mmdet.registry import MODELS
    setup_toolkit(cfg)
    head_cfg = copy.deepcopy(cfg.model.bbox_head)
    head_cfg.update(train_cfg=None, test_cfg=copy.deepcopy(cfg.model.get('test_cfg')))
    return MODELS.build(head_cfg).eval()


# ------------------------------------------------------------------------ conversion
PARAM_MAGIC = '7767517'


def _unknown_layers(param_path: str) -> List[str]:
    """Layer types in an ncnn .param that this ncnn build cannot create (pnnx leaves
    ops it cannot map under their own names); :class:`UserError` when the file is not
    an ncnn .param at all."""
    ncnn = require('ncnn')
    with open(param_path, encoding='utf-8', errors='replace') as f:
        lines = f.read().splitlines()
    if not lines or lines[0].strip() != PARAM_MAGIC or len(lines) < 2:
        raise UserError(f'{param_path!r} is not an ncnn .param file (its first line is '
                        f'not the magic number {PARAM_MAGIC})')
    types = {line.split()[0] for line in lines[2:] if line.strip()}
    # (a layer ncnn knows by name may still be left out of a build: ArgMax is, in the
    # PyPI wheels; create_layer says None then)
    return sorted(t for t in types if ncnn.create_layer(t) is None)


def onnx_to_ncnn(onnx_path: str, input_shape: Sequence[int], param_path: str,
                 bin_path: str) -> str:
    """Convert a fixed-shape ONNX file with pnnx into ``param_path`` / ``bin_path``
    (fp32 weights). pnnx's by-products go to a temporary folder. Returns pnnx's
    output; :class:`UserError` when it fails or leaves layers ncnn cannot run."""
    pnnx = require('pnnx')
    work = tempfile.mkdtemp(prefix='pnnx-')
    try:
        shape = ','.join(str(int(s)) for s in input_shape)
        side = {key: os.path.join(work, name) for key, name in (
            ('pnnxparam', 'model.pnnx.param'), ('pnnxbin', 'model.pnnx.bin'),
            ('pnnxpy', 'model_pnnx.py'), ('pnnxonnx', 'model.pnnx.onnx'),
            ('ncnnpy', 'model_ncnn.py'))}
        # pnnx writes FILE.pnnxsim.onnx beside its input: it converts a copy
        source = os.path.join(work, 'model.onnx')
        shutil.copyfile(onnx_path, source)
        command = [pnnx.EXEC_PATH, source, f'inputshape=[{shape}]',
                   'fp16=0', f'ncnnparam={os.path.abspath(param_path)}',
                   f'ncnnbin={os.path.abspath(bin_path)}'] + [
                       f'{key}={path}' for key, path in side.items()]
        done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log = done.stdout + done.stderr
    if (done.returncode != 0 or not os.path.isfile(param_path)
            or os.path.getsize(param_path) == 0):
        last = [line for line in log.splitlines() if line.strip()][-1:] or ['no output']
        raise UserError(f'pnnx could not convert the model (exit status '
                        f'{done.returncode}): {last[0].strip()}')
    unknown = _unknown_layers(param_path)
    if unknown:
        raise UserError(f'ncnn cannot run this model: pnnx left the ops {unknown} '
                        'without an ncnn layer')
    return log


def export_ncnn(wrapper: nn.Module, param_path: str, bin_path: str,
                size: Tuple[int, int], onnx_dir: Optional[str] = None) -> str:
    """Write ``wrapper`` (see :func:`ncnn_form`) as an ncnn graph for input
    (1, 3, *size): the project's ONNX export at that one shape, converted by pnnx.
    Returns pnnx's output."""
    folder = tempfile.mkdtemp(prefix='ncnn-export-', dir=onnx_dir)
    try:
        onnx_path = os.path.join(folder, 'model.onnx')
        # unpadded: ncnn runs the ghost concatenations faster as traced
        # (docs/benchmarks.md, the padding rewrite)
        export_onnx(wrapper, onnx_path, tuple(size), batch=1, dynamic=False,
                    pad_channels=None)
        return onnx_to_ncnn(onnx_path, (1, 3, *size), param_path, bin_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- sidecar
def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def plain_metadata(metadata: Dict[str, str]) -> Dict:
    """``export_metadata``'s ONNX metadata_props as plain JSON values, prefix dropped."""
    plain = {}
    for key, value in metadata.items():
        name = key[len(METADATA_PREFIX):]
        plain[name] = value if name in ('source', 'task') else json.loads(value)
    return plain


def sidecar(metadata: Dict[str, str], size: Tuple[int, int], output_names: Sequence[str],
            output_shapes: Sequence[Sequence[int]], param_path: str, bin_path: str,
            groups: Optional[Sequence[int]] = None) -> Dict:
    """The content of ``PREFIX.json``: ``export_metadata`` (config, task,
    normalisation, input conventions, classes) plus the fixed input, the blobs and
    shapes of the outputs, the detectors' head output groups and post-processing,
    and the files' SHA-256."""
    content = dict(format=SIDECAR_FORMAT, version=SIDECAR_VERSION,
                   **plain_metadata(metadata))
    content['input_blob'] = dict(name=INPUT_BLOB, shape=[1, 3, int(size[0]), int(size[1])],
                                 note='fixed size: ncnn sizes its resize layers at '
                                 'conversion')
    content['outputs'] = [dict(name=name, blob=f'out{i}', shape=[int(s) for s in shape])
                          for i, (name, shape) in enumerate(zip(output_names, output_shapes))]
    if groups is not None:
        content['head_output_groups'] = [int(g) for g in groups]
        content['post_processing'] = ('decoding and NMS of the head outputs as the '
                                      "config's bbox_head does them (see "
                                      'ghostnetv2_mm/deployment/ncnn.py)')
    content['sha256'] = dict(param=sha256(param_path), bin=sha256(bin_path))
    return content


def read_sidecar(prefix: str) -> Dict:
    """``PREFIX.json`` checked against ``PREFIX.param`` / ``.bin`` (present, and the
    files it was written with); :class:`UserError` naming the file otherwise."""
    files = prefix_files(prefix)
    for ext in ('param', 'bin', 'json'):
        if not os.path.isfile(files[ext]):
            what = ('ncnn files carry no metadata: export them with '
                    'tools/deployment/export_ncnn.py, which writes it') if ext == 'json' \
                else 'an ncnn export is PREFIX.param, PREFIX.bin and PREFIX.json'
            raise UserError(f'{files[ext]!r}: no such file ({what})')
    try:
        with open(files['json']) as f:
            content = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f'{files["json"]!r} is not JSON: {exc}') from exc
    if not isinstance(content, dict) or content.get('format') != SIDECAR_FORMAT:
        raise UserError(f'{files["json"]!r} is not the sidecar of an export_ncnn.py '
                        f'export (no "format": "{SIDECAR_FORMAT}")')
    for ext in ('param', 'bin'):
        if sha256(files[ext]) != content.get('sha256', {}).get(ext):
            raise UserError(f'{files[ext]!r} is not the file {files["json"]} was written '
                            'with (another SHA-256): a foreign or replaced file; export '
                            'the model again')
    return content


def sidecar_mismatches(content: Dict, cfg, config_name: str = '') -> Tuple[List[str], List[str]]:
    """(mismatches, notes) between what a sidecar records and what ``cfg``
    prescribes, as ``runtime.metadata_mismatches`` for ONNX files."""
    expected = plain_metadata(export_metadata(cfg, config_name, content.get('task', '')))
    mismatches, notes = [], []
    for name, want in expected.items():
        have = content.get(name)
        if have is None or have == want:
            continue
        if name == 'source':
            notes.append(f'exported from {have}; checked against {want or "the config"}')
        else:
            mismatches.append(f'{name}: the file has {json.dumps(have, sort_keys=True)}, '
                              f'the config {json.dumps(want, sort_keys=True)}')
    return mismatches, notes


# ---------------------------------------------------------------------------- runner
#: ncnn ``Option`` flags per precision. ``fp16``: half-precision storage (and
#: arithmetic where the CPU has it, as on ARMv8.2), the default of ncnn's ``Option``
#: and so of mobile builds; ``bf16``: bfloat16 storage; ``fp32``: both off.
_NCNN_OFF = dict(use_fp16_packed=False, use_fp16_storage=False, use_fp16_arithmetic=False,
                 use_bf16_packed=False, use_bf16_storage=False)
NCNN_PRECISIONS = {
    'fp32': dict(_NCNN_OFF),
    'fp16': dict(_NCNN_OFF, use_fp16_packed=True, use_fp16_storage=True,
                 use_fp16_arithmetic=True),
    'bf16': dict(_NCNN_OFF, use_bf16_packed=True, use_bf16_storage=True),
}


def cpu_net(threads: int = 1, precision: str = 'fp32'):
    """An empty ``ncnn.Net`` set to run on the CPU (no Vulkan) with ``threads``
    threads in ``precision`` (:data:`NCNN_PRECISIONS`: ncnn's default would pick fp16
    or bf16 storage on CPUs that have them)."""
    if precision not in NCNN_PRECISIONS:
        raise ValueError(f'precision={precision!r}: allowed: {", ".join(NCNN_PRECISIONS)}')
    ncnn = require('ncnn')
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    for flag, value in NCNN_PRECISIONS[precision].items():
        setattr(net.opt, flag, value)
    return net


class NcnnRunner:
    """An ncnn graph run on the CPU in fp32 (no fp16 / bf16 storage or arithmetic,
    which ncnn would pick by default on CPUs that have them), one image at a time.

    Args:
        param (str): The .param file.
        bin (str): The .bin file.
        input_shape (sequence of int): (1, 3, H, W), the file's fixed input.
        outputs (sequence of dict): ``name``, ``blob`` and ``shape`` (batch first)
            of each output, as the sidecar lists them.
        threads (int): ncnn's threads.
    """

    def __init__(self, param: str, bin: str, input_shape: Sequence[int],
                 outputs: Sequence[Dict], input_blob: str = INPUT_BLOB, threads: int = 1):
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_blob = input_blob
        self.outputs = [dict(o) for o in outputs]
        self.output_names = [o['name'] for o in self.outputs]
        self.net = cpu_net(int(threads), 'fp32')
        for path in (param, bin):
            if not os.path.isfile(path):
                raise UserError(f'{path!r}: no such file')
        unknown = _unknown_layers(param)
        if unknown:
            raise UserError(f'{param!r}: layers {unknown} that this ncnn cannot run')
        if self.net.load_param(param) != 0:
            raise UserError(f'{param!r} is not an ncnn .param file ncnn can load')
        if self.net.load_model(bin) != 0:
            raise UserError(f'{bin!r} does not hold the weights {param} needs')
        blobs = set(self.net.input_names()) | set(self.net.output_names())
        missing = [b for b in [input_blob] + [o['blob'] for o in self.outputs]
                   if b not in blobs]
        if missing:
            raise UserError(f'{param!r} has no blobs {missing} (inputs '
                            f'{list(self.net.input_names())}, outputs '
                            f'{list(self.net.output_names())}): not the file the sidecar '
                            'describes')

    @classmethod
    def from_prefix(cls, prefix: str, threads: int = 1) -> 'NcnnRunner':
        """The export ``PREFIX.param`` / ``.bin``, described by ``PREFIX.json``."""
        content = read_sidecar(prefix)
        files = prefix_files(prefix)
        runner = cls(files['param'], files['bin'], content['input_blob']['shape'],
                     content['outputs'], content['input_blob']['name'], threads)
        runner.sidecar = content
        return runner

    def __call__(self, x) -> List[np.ndarray]:
        return self.run(x)

    def run(self, x) -> List[np.ndarray]:
        """Run on a (N, 3, H, W) batch (tensor or array) at the file's input size;
        returns one (N, ...) float array per output, as ``run_onnx`` does."""
        import ncnn
        array = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
        if array.ndim != 4 or tuple(array.shape[1:]) != self.input_shape[1:]:
            want = 'Nx' + 'x'.join(str(s) for s in self.input_shape[1:])
            raise UserError(f'input of shape {"x".join(map(str, array.shape))}: this ncnn '
                            f'file runs at {want} only (the input size is fixed at '
                            'export; export again with --input-size for another size)')
        per_output = [[] for _ in self.outputs]
        for image in np.ascontiguousarray(array, dtype=np.float32):
            extractor = self.net.create_extractor()
            extractor.input(self.input_blob, ncnn.Mat(np.ascontiguousarray(image)))
            for i, out in enumerate(self.outputs):
                status, mat = extractor.extract(out['blob'])
                if status != 0:
                    raise UserError(f'ncnn failed to compute output {out["name"]} '
                                    f'(blob {out["blob"]}, status {status})')
                value = np.array(mat)
                shape = tuple(out['shape'][1:])
                if value.size != int(np.prod(shape)):
                    raise UserError(f'ncnn output {out["name"]} has {value.size} values, '
                                    f'the sidecar says shape {list(out["shape"])}')
                per_output[i].append(value.reshape(shape))
        return [np.stack(values) for values in per_output]


# ----------------------------------------------- the file plus the steps outside it
class NcnnModel:
    """An ncnn export with the steps that run outside the file, giving what the ONNX
    export of the same model gives for a batch: detectors ``dets`` and ``labels``,
    segmentors the class map (N, 1, H, W), others the file's outputs. A callable
    ``run(x) -> list of arrays``, as ``verify.compare`` takes it.

    Args:
        runner (NcnnRunner): The file.
        task (str): 'detection', 'segmentation', 'classification' or 'backbone'.
        post (DetectionPostProcess, optional): Detectors' decoding and NMS.
        threshold (float): Segmentors with one output channel: the decode head's
            threshold on the sigmoid.
    """

    def __init__(self, runner: NcnnRunner, task: str,
                 post: Optional[DetectionPostProcess] = None, threshold: float = 0.3):
        if task == 'detection' and post is None:
            raise ValueError('a detector needs its post-processing (post=...)')
        self.runner, self.task, self.post, self.threshold = runner, task, post, threshold

    def __call__(self, x) -> List[np.ndarray]:
        outputs = self.runner.run(x)
        if self.task == 'detection':
            return self.post(outputs, tuple(x.shape))
        if self.task == 'segmentation':
            return [class_map(outputs[0], self.threshold)]
        return outputs


def pad_to_input(batch: Tensor, size: Sequence[int], what: str = 'the input') -> Tensor:
    """``batch`` (N, 3, h, w) zero-padded at the bottom and right to the file's fixed
    ``size`` (H, W), as the toolkits' data preprocessors pad a batch to its largest
    image (after normalisation, so with zeros); :class:`UserError` when it is larger."""
    h, w = batch.shape[-2:]
    height, width = (int(s) for s in size)
    if h > height or w > width:
        raise UserError(f'{what} is {h}x{w} after the config\'s test pipeline, larger '
                        f'than the ncnn file\'s fixed input {height}x{width}: export it '
                        f'with an --input-size of at least {h} {w}')
    if (h, w) == (height, width):
        return batch
    return F.pad(batch, (0, width - w, 0, height - h))


class NcnnPredictor(OnnxPredictor):
    """An ncnn export of a detector or segmentor with its config's preprocessing and
    the project's post-processing: :class:`runtime.OnnxPredictor`'s steps (the mapping
    back to the image, the drawing), with the ncnn file in place of onnxruntime. The
    prepared image is padded to the file's fixed input size (``pad_to_input``).

    Args:
        cfg (Config): The config the file was exported from.
        prefix (str): ``PREFIX`` of ``PREFIX.param`` / ``.bin`` / ``.json``.
        threads (int): ncnn's threads.
    """

    def __init__(self, cfg, prefix: str, threads: int = 1):
        # (OnnxPredictor.__init__ is not called: it would open an onnxruntime session)
        runner = NcnnRunner.from_prefix(prefix, threads)
        self.sidecar = runner.sidecar
        self.task = self.sidecar.get('task')
        if self.task not in ('detection', 'segmentation'):
            raise UserError(f'{prefix}: a {self.task or "model"} export; ncnn_infer runs '
                            'detectors and segmentors')
        self.cfg = cfg
        self.prepare = ImagePreparer(cfg)
        self.scope = self.prepare.scope
        self.size = runner.input_shape[2:]
        post, threshold = None, 0.3
        if self.task == 'detection':
            post = DetectionPostProcess(build_head(cfg), self.sidecar['head_output_groups'])
        else:
            threshold = cfg.model.decode_head.get('threshold') or 0.3
        self.model = NcnnModel(runner, self.task, post, threshold)
        self.padded = None

    def __call__(self, image_path: str):
        """The toolkit's data sample with predictions in original image pixels."""
        inputs, sample = self.prepare(image_path)
        prepared = tuple(inputs.shape[-2:])
        inputs = pad_to_input(inputs, self.size, f'image {image_path!r}')
        self.padded = prepared if prepared != tuple(self.size) else None
        outputs = self.model(inputs)
        if self.task == 'detection':
            return self._detections(outputs, sample)
        return self._segmentation(outputs, sample)
