"""Build a config's model in deploy mode, wrap it and write it as ONNX."""
import os
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .wrappers import (BackboneExport, ClassifierExport, DenseDetectorExport,
                       SegmentorExport, TwoStageDetectorExport)

# The TorchScript exporter: its graph keeps every size symbolic (the wrappers read
# them from the input), and its custom-op symbolics give the NonMaxSuppression node.
# (torch >= 2.9 defaults to the torch.export-based exporter, which is what breaks
# mmdeploy 1.3.1; opset 17 is the last one the TorchScript exporter writes fully.)
DEFAULT_OPSET = 17


def load_weights(model: nn.Module, checkpoint: str) -> None:
    """Strict load of ``checkpoint`` (path or URL, any layout the project reads)."""
    from ghostnetv2_mm.checkpoint import load_model_weights
    load_model_weights(model, checkpoint)


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Eval mode with every BatchNorm of the GhostNet backbone folded, NCHW weights
    (ONNX has no memory layout, so the graph must not carry layout conversions)."""
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

    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # SyncBN (the segmentation configs') is plain BN outside distributed training
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(build_model_from_config(cfg))
    if checkpoint:
        load_weights(model, checkpoint)
    return switch_to_deploy(model)


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
                batch: int = 1, opset: int = DEFAULT_OPSET, dynamic: bool = True) -> None:
    """Trace ``wrapper`` on a random (batch, 3, *size) input and write ``path`` with
    dynamic batch, height and width, or (``dynamic=False``) for that one input shape
    only. The output names are ``wrapper.output_names``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
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
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is chosen on purpose (see DEFAULT_OPSET); its
        # tracer also warns about Python-level shape checks, which hold at every size
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript')
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        torch.onnx.export(wrapper, (example,), path, dynamo=False, opset_version=opset,
                          input_names=['input'], output_names=names,
                          dynamic_axes=dynamic_axes, do_constant_folding=True)


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
