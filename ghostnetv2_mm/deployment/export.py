"""Build a config's model in deploy mode, wrap it and write it as ONNX."""
import io
import json
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..checkpoint import load_model_weights
from ..errors import UserError
from ..utils.fileio import atomic_write_bytes
from .graph_rewrites import DEFAULT_MULTIPLE, pad_ghost_concats
from .wrappers import (BackboneExport, ClassifierExport, DenseDetectorExport,
                       SegmentorExport, TwoStageDetectorExport)

# The TorchScript exporter: its graph keeps every size symbolic (the wrappers read
# them from the input), and its custom-op symbolics give the NonMaxSuppression node.
# (torch >= 2.9 defaults to the torch.export-based exporter, which is what breaks
# mmdeploy 1.3.1; opset 17 is the last one the TorchScript exporter writes fully.)
DEFAULT_OPSET = 17
# The opsets --opset allows: the graphs need 11 (NonMaxSuppression, RoiAlign), the
# TorchScript exporter writes up to 20 (the check tells whether a model holds up at
# the chosen one).
OPSETS = (11, 20)
# metadata_props keys of an exported file start with this
METADATA_PREFIX = 'ghostnetv2_mm.'


def prepare_for_export(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with its GhostNet backbone switched to deploy mode,
    with NCHW weights (ONNX has no memory layout, so the graph must not carry layout
    conversions); the backbone's own ``switch_to_deploy`` defaults to channels-last,
    the fastest layout for PyTorch on CPU."""
    model.eval()
    backbone = getattr(model, 'backbone', model)
    if hasattr(backbone, 'switch_to_deploy'):
        backbone.switch_to_deploy(channels_last=False)
    return model


def build_model(config, checkpoint: Optional[str] = None, cfg_options=None) -> nn.Module:
    """A config's model (mmdet / mmseg / mmpretrain), weights loaded, in deploy mode.

    Without ``checkpoint`` the weights stay as initialised at construction (no
    ``init_weights``: nothing is downloaded) - useful for tests and timing only.
    """
    from mmengine.config import Config

    from ghostnetv2_mm.utils.toolkit import build_model_from_config, merge_cfg_options
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    merge_cfg_options(cfg, cfg_options)
    # SyncBN (the segmentation configs') is plain BN outside distributed training
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(build_model_from_config(cfg))
    if checkpoint:
        load_model_weights(model, checkpoint)
    return prepare_for_export(model)


def wrap_for_export(model: nn.Module) -> nn.Module:
    """The export wrapper that fits ``model`` (detector, segmentor, classifier or
    backbone); raises NotImplementedError naming the model type otherwise."""
    return _wrapper_of(model).eval()


def _wrapper_of(model: nn.Module) -> nn.Module:
    kind = type(model).__name__
    if hasattr(model, 'bbox_head'):
        return DenseDetectorExport(model)
    if hasattr(model, 'roi_head'):
        return TwoStageDetectorExport(model)
    if hasattr(model, 'decode_head'):
        return SegmentorExport(model)
    if hasattr(model, 'head') and hasattr(model, 'neck'):
        return ClassifierExport(model)
    if hasattr(model, 'out_indices'):
        return BackboneExport(model)
    raise NotImplementedError(f'{kind}: no ONNX export wrapper for this model type '
                              '(detectors with bbox_head or rpn_head + roi_head, '
                              'segmentors with decode_head, classifiers, backbones)')


def export_onnx(wrapper: nn.Module, path: str, size: Tuple[int, int] = (224, 224),
                batch: int = 1, opset: int = DEFAULT_OPSET,
                metadata: Optional[Dict[str, str]] = None, dynamic: bool = True,
                pad_channels: Optional[int] = DEFAULT_MULTIPLE) -> None:
    """Trace ``wrapper`` on a random (batch, 3, *size) input and write ``path`` with
    dynamic batch, height and width, or (``dynamic=False``) for that one input shape
    only. The output names are ``wrapper.output_names``; ``metadata`` (see
    :func:`export_metadata`) goes into the file's metadata_props. ``path`` is written
    atomically: it is the old file or the complete new one.

    ``pad_channels``: the ghost-module concatenations that feed only convolutions
    get both halves zero-padded to a multiple of this many channels
    (:func:`~.graph_rewrites.pad_ghost_concats`: exact, keeps the runtimes' blocked
    layouts through them); None leaves the traced graph as it is."""
    # (the exporter restores the wrapper's own mode afterwards, recursively: a wrapper
    # left in training mode would switch the model's dropout and BN back on)
    wrapper.eval()
    names = list(wrapper.output_names)
    dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    for name in names:
        dynamic_axes[name] = {0: 'batch'}
    if not dynamic:
        dynamic_axes = None
    example = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is chosen on purpose (see DEFAULT_OPSET); its
        # tracer also warns about Python-level shape checks, which hold at every size
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript')
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        try:
            torch.onnx.export(wrapper, (example,), buffer, dynamo=False,
                              opset_version=opset, input_names=['input'],
                              output_names=names, dynamic_axes=dynamic_axes,
                              do_constant_folding=True)
        except torch.onnx.errors.OnnxExporterError as exc:
            raise UserError(f'the ONNX export at opset {opset} failed: '
                            f'{str(exc).strip().splitlines()[0]}') from exc
    data = buffer.getvalue()
    if pad_channels:
        import onnx
        model = onnx.load_from_string(data)
        if pad_ghost_concats(model, pad_channels):
            data = model.SerializeToString()
    write_onnx_with_metadata(data, path, metadata)


# ------------------------------------------------------ what the file was made from
def write_onnx_with_metadata(data: bytes, path: str,
                             metadata: Optional[Dict[str, str]] = None) -> None:
    """Write the serialised ONNX model ``data`` to ``path`` atomically, with
    ``metadata`` added to its metadata_props (replacing entries of the same key)."""
    if metadata:
        import onnx
        model = onnx.load_from_string(data)
        props = {p.key: p.value for p in model.metadata_props}
        props.update(metadata)
        onnx.helper.set_model_props(model, props)
        data = model.SerializeToString()
    atomic_write_bytes(data, path)


def read_onnx_metadata(path: str) -> Dict[str, str]:
    """The metadata_props of an ONNX file (weights not loaded)."""
    import onnx
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's errors: name the file
        raise UserError(f'{path!r} is not a readable ONNX file ({type(exc).__name__}: '
                        f'{exc})') from exc
    return {p.key: p.value for p in model.metadata_props}


def _normalisation(preprocessor: dict) -> dict:
    to_rgb = bool(preprocessor.get('bgr_to_rgb', preprocessor.get('to_rgb', False)))
    return dict(mean=[float(v) for v in preprocessor.get('mean') or []],
                std=[float(v) for v in preprocessor.get('std') or []], to_rgb=to_rgb)


def export_metadata(cfg=None, source: str = '', task: str = '') -> Dict[str, str]:
    """What an exported file is made from, as ONNX metadata_props (JSON values):
    ``source`` (the config file name or the model), ``task``, ``normalisation``
    (mean, std, to_rgb: what the input must have had applied), ``input`` (the
    conventions: layout, padding, the test pipeline's resize) and ``classes``.

    Args:
        cfg (Config, optional): The config the model was built from; without it only
            ``source`` and ``task`` are recorded (backbones, ImageNet classifiers).
        source (str): Where the model came from.
        task (str): 'detection', 'segmentation', 'classification' or 'backbone'.
    """
    meta = {METADATA_PREFIX + 'source': source, METADATA_PREFIX + 'task': task}
    if cfg is None:
        return meta
    preprocessor = dict(cfg.model.get('data_preprocessor') or {})
    conventions = dict(layout='NCHW float32, normalised ((pixel - mean) / std) and padded',
                       pad_size_divisor=preprocessor.get('pad_size_divisor',
                                                         preprocessor.get('size_divisor')),
                       pad_size=preprocessor.get('size'))
    pipeline = cfg.get('test_pipeline') or cfg.get('test_dataloader', {}).get(
        'dataset', {}).get('pipeline') or []
    for step in pipeline:
        if step.get('type') in ('Resize', 'RandomResize', 'FixShapeResize'):
            conventions.update(resize=step.get('scale'), keep_ratio=step.get('keep_ratio'))
    classes = _dataset_classes(cfg)
    meta.update({METADATA_PREFIX + 'normalisation': _normalisation(preprocessor),
                 METADATA_PREFIX + 'input': conventions,
                 METADATA_PREFIX + 'classes': list(classes)})
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in meta.items()}


def _dataset_classes(cfg) -> Sequence[str]:
    from ..utils.toolkit import dataset_meta
    return dataset_meta(cfg).get('classes', ())


def onnx_session(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_onnx(session, batch) -> Sequence:
    """Run ``session`` on a (N, 3, H, W) batch (tensor or array); returns the outputs."""
    array = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else batch
    return session.run(None, {session.get_inputs()[0].name: array})


# ------------------------------------------------------------ the export tools' model
# The backbone outputs of a backbone export unless --out-indices says otherwise: the
# last block of each resolution from stride 4 to 32.
DEFAULT_OUT_INDICES = (3, 5, 7, 9)


def add_model_arguments(parser, runtime: str, config_help: str) -> None:
    """The options of an export tool that choose what it exports and with which
    weights: ``--config`` or ``--classifier`` (else the backbone), ``--arch``,
    ``--out-indices``, ``--checkpoint``, ``--cfg-options``. Check them after parsing
    with :func:`check_model_arguments`.

    Args:
        parser (ArgumentParser): The tool's parser.
        runtime (str): What one backbone output becomes ('ONNX', 'ncnn'), for the help.
        config_help (str): The help of ``--config``.
    """
    from mmengine.config import DictAction

    from ..models.arch import ARCH_WIDTHS
    from ..utils.cli import existing_file, file_or_url, int_in
    what = parser.add_mutually_exclusive_group()
    what.add_argument('--config', type=existing_file, help=config_help)
    what.add_argument('--classifier', action='store_true',
                      help='export the ImageNet classifier of --arch (logits)')
    parser.add_argument('--arch', default=None, choices=sorted(ARCH_WIDTHS),
                        help='backbone/classifier width (without --config; default 1.0x)')
    layers = _backbone_layers()
    parser.add_argument('--out-indices', type=int_in(-layers, layers - 1), nargs='+',
                        default=None, help=f'backbone outputs, one {runtime} output each '
                        f'(backbone export; layers 0 to {layers - 1}, default '
                        f'{" ".join(map(str, DEFAULT_OUT_INDICES))})')
    parser.add_argument('--checkpoint', type=file_or_url,
                        help='weights: a path or URL in any layout the '
                        'project reads (default: random weights)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.bbox_head.num_classes=3')


def _backbone_layers() -> int:
    from ..models.arch import BASE_STAGES
    return len(BASE_STAGES) + 2  # the stem, the stages, the final 1x1 conv


def check_model_arguments(parser, args) -> None:
    """Refuse the options of :func:`add_model_arguments` that another kind of export
    would ignore without a word (``--arch`` with ``--config``, ``--out-indices``
    beyond a backbone export) and a layer named twice; fill in the defaults
    (``--arch`` 1.0x, ``--out-indices`` :data:`DEFAULT_OUT_INDICES`). Errors go
    through ``parser.error``."""
    if args.config and args.arch is not None:
        parser.error('argument --arch: not allowed with --config (the config sets the '
                     'width)')
    if (args.config or args.classifier) and args.out_indices is not None:
        parser.error('argument --out-indices: only for a backbone export (not with '
                     + ('--config)' if args.config else '--classifier)'))
    args.arch = args.arch or '1.0x'
    indices = args.out_indices or list(DEFAULT_OUT_INDICES)
    layers = _backbone_layers()
    if len({i % layers for i in indices}) != len(indices):
        parser.error(f'argument --out-indices: {indices} names a layer twice; allowed: '
                     f'distinct layers from 0 to {layers - 1} (negatives count from the end)')
    args.out_indices = indices


def export_inputs(parser, args) -> List[Tuple[str, str]]:
    """Check ``--check-images`` (it needs ``--config``, whose test pipeline prepares
    them; files, or folders of images) and return the (option, path) of every input
    file of an export, for :func:`~ghostnetv2_mm.utils.cli.check_output`."""
    from ..utils.cli import image_files
    if args.check_images:
        if not args.config:
            parser.error('--check-images needs --config (its test pipeline prepares them)')
        args.check_images = image_files(args.check_images, '--check-images')
    return ([('--config', args.config), ('--checkpoint', args.checkpoint)]
            + [('--check-images', p) for p in args.check_images or []])


def build_for_export(cfg=None, checkpoint: Optional[str] = None, classifier: bool = False,
                     arch: str = '1.0x',
                     out_indices: Sequence[int] = DEFAULT_OUT_INDICES) -> nn.Module:
    """What the export tools export, in deploy mode: ``cfg``'s whole model, or
    (without a config) the ImageNet classifier of ``arch`` or its backbone with
    ``out_indices``; weights from ``checkpoint`` in any layout the project reads
    (random, seeded, without one)."""
    if cfg is not None:
        return build_model(cfg, checkpoint)
    torch.manual_seed(0)
    if classifier:
        from ..models import build_classifier
        model = build_classifier(arch)
    else:
        from ..models import GhostNetV2
        model = GhostNetV2(arch, out_indices=tuple(out_indices))
    if checkpoint:
        load_model_weights(model, checkpoint)
    return prepare_for_export(model)


def export_source(config: Optional[str] = None, classifier: bool = False,
                  arch: str = '1.0x') -> str:
    """What :func:`build_for_export` builds, in words (the metadata's ``source``):
    the config's file name, or ``GhostNetV2 <arch> classifier`` / ``backbone``."""
    if config:
        return os.path.basename(config)
    return f'GhostNetV2 {arch} ' + ('classifier' if classifier else 'backbone')


def task_of(wrapper: nn.Module) -> str:
    """'detection', 'segmentation', 'classification' or 'backbone': what an export
    wrapper's outputs are."""
    if isinstance(wrapper, (DenseDetectorExport, TwoStageDetectorExport)):
        return 'detection'
    if isinstance(wrapper, SegmentorExport):
        return 'segmentation'
    return 'classification' if isinstance(wrapper, ClassifierExport) else 'backbone'
