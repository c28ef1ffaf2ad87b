"""One load hook, one renaming: an official/timm file is renamed by
``adapt_state_dict`` exactly once, whoever loads it."""
import torch

from ghostnetv2_mm.checkpoint import adapter, load_model_weights
from ghostnetv2_mm.models import GhostNetV2

from helpers import official_state_dict


def _counting(monkeypatch):
    calls = []
    real = adapter.adapt_state_dict

    def counted(model, state_dict):
        adapted, dropped = real(model, state_dict)
        calls.append(set(adapted) != set(state_dict))  # did it rename anything?
        return adapted, dropped

    monkeypatch.setattr(adapter, 'adapt_state_dict', counted)
    return calls


def test_load_model_weights_renames_once_and_the_hook_leaves_it(monkeypatch):
    reference, state = official_state_dict()
    calls = _counting(monkeypatch)
    backbone = GhostNetV2(out_indices=(10,)).eval()
    load_model_weights(backbone, state, logger='silent')
    assert calls == [True]  # the explicit renaming only; the hook was told
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[0], reference.forward_features(x))


def test_a_plain_torch_load_is_renamed_by_the_hook(monkeypatch):
    reference, state = official_state_dict()
    calls = _counting(monkeypatch)
    backbone = GhostNetV2(out_indices=(10,)).eval()
    backbone.load_state_dict(state, strict=False)
    assert calls == [True]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[0], reference.forward_features(x))
