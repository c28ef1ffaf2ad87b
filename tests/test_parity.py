"""Numerical parity with the reference GhostNetV2 (timm's implementation, which uses
the reference's module names and is numerically identical to it, is the oracle)."""
import pytest
import torch

from ghostnetv2_mm.benchmarks.timm_reference import create_timm_model, timm_layers
from ghostnetv2_mm.checkpoint import load_model_weights
from ghostnetv2_mm.models import GhostNetV2, build_classifier

from helpers import randomise_bn


# float parity with timm: make test-cpus runs it under every CPU kernel set
pytestmark = pytest.mark.numerics


def make_pair(arch):
    """timm's model with non-trivial BatchNorm statistics; our backbone (every layer
    as an output) and our mmpretrain classifier, both loaded with its state dict."""
    reference = create_timm_model('GhostNetV2', arch)
    randomise_bn(reference).eval()
    ours = GhostNetV2(arch, out_indices=tuple(range(11))).eval()
    load_model_weights(ours, reference.state_dict())
    classifier = build_classifier(arch).eval()
    load_model_weights(classifier, reference.state_dict())
    return reference, ours, classifier


@pytest.mark.parametrize('arch', ['1.0x', '1.3x', '1.6x'])
@pytest.mark.parametrize('size', [(224, 224), (256, 320)])
def test_every_stage_and_the_logits_match_the_reference(arch, size):
    reference, ours, classifier = make_pair(arch)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected = timm_layers(reference, x)
        got = ours(x)
        for i, (a, b) in enumerate(zip(got, expected)):
            assert a.shape == b.shape, i
            assert (a - b).abs().max() < 1e-5, f'layer{i}: {(a - b).abs().max()}'
        logits = classifier(x, mode='tensor')
        ref_logits = reference(x)
    assert (logits - ref_logits).abs().max() < 1e-5


@pytest.mark.parametrize('arch', ['1.0x', '1.3x', '1.6x'])
def test_detection_sized_input_matches_the_reference(arch):
    reference, ours, _ = make_pair(arch)
    x = torch.randn(1, 3, 800, 1216)
    with torch.no_grad():
        expected = reference.forward_features(x)
        got = ours(x)[-1]
    assert (got - expected).abs().max() < 1e-5
