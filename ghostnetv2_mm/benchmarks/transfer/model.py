"""The transfer benchmark's model: a backbone (a network of the benchmarks' catalogue),
global average pooling and one linear layer; its parameters, MACs and CPU latency."""
import os.path as osp
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..catalogue import NETWORKS
from ..timing import interleaved

# catalogue name -> the backbone's config for mmpretrain's registry (the GhostNet
# family up to its final 1x1 conv, layer 10; the others to their last stage)
BACKBONES: Dict[str, dict] = {
    name: dict(network.implementation, **(dict(out_indices=(10,)) if network.family else {}))
    for name, network in NETWORKS.items()}
# what a run compares when --backbones is not given
DEFAULT_BACKBONES = ('ghostnetv2-1.0x', 'ghostnetv2-1.3x', 'ghostnetv2-1.6x', 'mobilenetv2',
                     'mobilenetv3-large', 'resnet18', 'efficientnet-b0')


class Classifier(nn.Module):
    """backbone -> global average pooling of its last output -> linear."""

    output_names = ('logits',)  # the ONNX output (``deployment.export_onnx``)

    def __init__(self, backbone: nn.Module, feat_dim: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(feat_dim, num_classes)

    def features(self, x):
        out = self.backbone(x)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        return out.mean((2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


def build_backbone(name: str) -> nn.Module:
    import ghostnetv2_mm  # noqa: F401  (registers GhostNetV2)
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    backbone = MODELS.build(dict(BACKBONES[name]))
    if hasattr(backbone, 'init_weights'):
        # the backbone's own default initialisation, as mmengine's Runner applies it;
        # mmengine logs every parameter's initialiser at INFO level: keep that quiet
        import logging
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            backbone.init_weights()
        finally:
            logger.setLevel(level)
    return backbone


def load_pretrained(backbone: nn.Module, name: str, path: str) -> str:
    """Load ImageNet weights into ``backbone``, strictly (the project's one loader: the
    backbone part of a whole-model file, official/timm GhostNet layouts renamed)."""
    from ghostnetv2_mm.checkpoint import CheckpointError, load_model_weights
    if not osp.isfile(path):
        raise SystemExit(f'error: --weights {name}={path}: file not found')
    try:
        load_model_weights(backbone, path, logger='silent')
    except CheckpointError as exc:
        raise SystemExit(f'error: --weights {name}={path}: {exc}') from None
    return f'imagenet ({osp.basename(path)})'


def build_model(name: str, *, num_classes: int, img_size: int, seed: int = 0,
                weights: Optional[Dict[str, str]] = None) -> Tuple[Classifier, str]:
    """The benchmark model of backbone ``name`` and the 'init' it was given.

    Args:
        name (str): a key of ``BACKBONES``.
        num_classes (int): outputs of the linear layer.
        img_size (int): the input side (the feature width is read at this size).
        seed (int): seeds the backbone's initialisation, then the linear layer's.
        weights (dict, optional): backbone name -> ImageNet weights file; a backbone
            not in it keeps its random initialisation.
    """
    weights = weights or {}
    torch.manual_seed(seed)
    backbone = build_backbone(name)
    init = 'random'
    if name in weights:
        init = load_pretrained(backbone, name, weights[name])
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, img_size, img_size))
    feat_dim = (out[-1] if isinstance(out, (tuple, list)) else out).shape[1]
    torch.manual_seed(seed + 1)
    return Classifier(backbone, feat_dim, num_classes), init


def measure_cost(model: Classifier, *, img_size: int, threads: int,
                 runs: int) -> Tuple[int, int, float]:
    """(parameters, MACs, median CPU latency in ms) of ``model`` at batch 1.

    Args:
        model (Classifier): the model, on the CPU.
        img_size (int): the input side.
        threads (int): torch threads while timing (restored afterwards).
        runs (int): timed forwards, after 3 warm-up forwards.
    """
    import statistics

    from ghostnetv2_mm.utils import count_macs, count_parameters
    params = count_parameters(model)
    x = torch.zeros(1, 3, img_size, img_size)
    macs, _ = count_macs(model, x)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    model.eval()
    try:
        with torch.no_grad():
            times = interleaved({'model': lambda: model(x)}, rounds=runs, warmup=3)
    finally:
        torch.set_num_threads(old_threads)
    return params, macs, 1000 * statistics.median(times['model'])
