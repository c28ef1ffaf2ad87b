"""The transfer benchmark's model: a backbone (GhostNetV2 or an mmpretrain baseline),
global average pooling and one linear layer; its parameters, MACs and CPU latency."""
import os.path as osp
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..timing import interleaved

# name -> the backbone's config for mmpretrain's registry
BACKBONES: Dict[str, dict] = {
    'ghostnetv2_1.0x': dict(type='GhostNetV2', arch='1.0x', out_indices=(10,)),
    'ghostnetv2_1.3x': dict(type='GhostNetV2', arch='1.3x', out_indices=(10,)),
    'ghostnetv2_1.6x': dict(type='GhostNetV2', arch='1.6x', out_indices=(10,)),
    'mobilenet_v2': dict(type='MobileNetV2', widen_factor=1.0),
    'mobilenet_v3_large': dict(type='MobileNetV3', arch='large'),
    'resnet18': dict(type='ResNet', depth=18),
    'efficientnet_b0': dict(type='EfficientNet', arch='b0'),
}


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
    """Load ImageNet weights into ``backbone``; every backbone weight must be found."""
    if not osp.isfile(path):
        raise SystemExit(f'error: --weights {name}={path}: file not found')
    if name.startswith('ghostnetv2'):
        from ghostnetv2_mm.checkpoint import load_model_weights
        load_model_weights(backbone, path)  # official, timm or mm layouts, strict
        return f'imagenet ({osp.basename(path)})'
    from ghostnetv2_mm.checkpoint import load_checkpoint_file
    state = load_checkpoint_file(path)
    state = state.get('state_dict', state) if isinstance(state, dict) else state
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')}
    missing, _ = backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing:
        raise SystemExit(f'error: --weights {name}={path}: {len(missing)} backbone weights '
                         f'missing, e.g. {missing[:3]} (expected an mmpretrain checkpoint '
                         'of this architecture)')
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
