"""Parameter and MAC counts match the paper (conv + linear MACs, BN excluded)."""
import subprocess
import sys

import pytest
import torch

from ghostnetv2_mm.deployment.wrappers import ClassifierExport
from ghostnetv2_mm.models import build_classifier
from ghostnetv2_mm.utils import count_macs, count_parameters

from helpers import ROOT


@pytest.mark.parametrize('arch,params,mmacs', [
    ('1.0x', 6_156_908, 167.0), ('1.3x', 8_960_404, 269.3), ('1.6x', 12_392_698, 398.6)])
def test_classifier_params_and_macs_match_the_paper(arch, params, mmacs):
    model = ClassifierExport(build_classifier(arch))  # backbone, pool, head
    assert count_parameters(model) == params
    macs, per_type = count_macs(model, torch.rand(1, 3, 224, 224))
    assert round(macs / 1e6, 1) == mmacs
    assert set(per_type) == {'Conv2d', 'Linear'}


def test_get_flops_tool_prints_the_counting_and_the_figures():
    out = subprocess.run([sys.executable, 'tools/analysis/get_flops.py', '--arch', '1.0x',
                          '--classifier', '--shape', '224'], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert '6,156,908' in out
    assert '167.0 M' in out
    assert 'BatchNorm' in out and 'excluded' in out
