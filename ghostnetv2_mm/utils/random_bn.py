"""Non-trivial BatchNorm statistics, for comparing models on real numbers."""
import torch
import torch.nn as nn


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm of ``model`` random running statistics and affine
    parameters (in place; returns ``model``), so that parity checks compare real
    numbers rather than identity BatchNorms (which would hide a swapped mean/var or a
    misplaced layer)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
                m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model
