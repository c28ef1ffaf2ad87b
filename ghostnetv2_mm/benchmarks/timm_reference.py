"""timm's GhostNet family, the reference this project is measured and tested against.

timm names the stem ``conv_stem``/``bn1``/``act1`` and its ten stages ``blocks.0`` -
``blocks.9``; this project's backbone calls them ``layer0`` (stem) to ``layer10``.
timm is a test and benchmark dependency only, so it is imported when first needed.
"""
from typing import Iterable, List

import torch.nn as nn
from torch import Tensor

# backbone type -> arch -> timm model name (timm has no GhostNet V1 at 1.6x)
TIMM_NAMES = {
    'GhostNet': {'1.0x': 'ghostnet_100', '1.3x': 'ghostnet_130'},
    'GhostNetV2': {'1.0x': 'ghostnetv2_100', '1.3x': 'ghostnetv2_130',
                   '1.6x': 'ghostnetv2_160'},
    'GhostNetV3': {'1.0x': 'ghostnetv3_100', '1.3x': 'ghostnetv3_130',
                   '1.6x': 'ghostnetv3_160'},
}


def timm_name(type_name: str = 'GhostNetV2', arch: str = '1.0x') -> str:
    """timm's model name for this project's ``type_name`` at width ``arch``.

    Args:
        type_name (str): 'GhostNet', 'GhostNetV2' or 'GhostNetV3'.
        arch (str): the width, e.g. '1.0x'.
    """
    if type_name not in TIMM_NAMES:
        raise ValueError(f'timm_name: invalid type_name={type_name!r}; allowed: '
                         f'{", ".join(TIMM_NAMES)}')
    names = TIMM_NAMES[type_name]
    if arch not in names:
        raise ValueError(f'timm_name: invalid arch={arch!r} for {type_name}; timm has '
                         f'{", ".join(names)}')
    return names[arch]


def create_timm_model(type_name: str = 'GhostNetV2', arch: str = '1.0x',
                      **kwargs) -> nn.Module:
    """timm's model (random weights: ``pretrained=False`` unless given) for
    ``type_name`` at ``arch``; ``kwargs`` go to ``timm.create_model``."""
    import timm
    kwargs.setdefault('pretrained', False)
    return timm.create_model(timm_name(type_name, arch), **kwargs)


class TimmTrunk(nn.Module):
    """timm's stem and stages, tapped where this project's backbone is tapped
    (``layer0`` = stem, ``layer{i}`` = ``blocks[i - 1]``), so that a detector or a
    test can run timm's implementation of the same network.

    Args:
        timm_model (nn.Module): a timm GhostNet, GhostNetV2 or GhostNetV3 (its modules
            are shared, not copied).
        out_indices (Iterable[int]): the layers to output, ascending.
    """

    def __init__(self, timm_model: nn.Module, out_indices: Iterable[int]):
        super().__init__()
        self.stem = nn.Sequential(timm_model.conv_stem, timm_model.bn1, timm_model.act1)
        self.blocks = timm_model.blocks
        self.out_indices = tuple(out_indices)

    def forward(self, x: Tensor) -> tuple:
        x = self.stem(x)
        outs = [x] if 0 in self.out_indices else []
        for i, block in enumerate(self.blocks, start=1):
            if i > self.out_indices[-1]:
                break
            x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


def timm_layers(timm_model: nn.Module, x: Tensor) -> List[Tensor]:
    """timm's stem output and the output of each of its stages: this project's
    layers 0-10 in order."""
    return list(TimmTrunk(timm_model, range(len(timm_model.blocks) + 1))(x))


class TimmFeatures(nn.Module):
    """A timm model's ``forward_features``: the whole trunk, ending with the same
    960-channel conv as this project's ``layer10``."""

    def __init__(self, timm_model: nn.Module):
        super().__init__()
        self.model = timm_model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)
