"""`type='GhostNetV2'` resolves from every OpenMMLab toolkit's registry."""
import importlib

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope


@pytest.mark.parametrize('scope,module', [
    ('mmdet', 'mmdet.registry'),
    ('mmseg', 'mmseg.registry'),
    ('mmpretrain', 'mmpretrain.registry'),
])
def test_backbone_builds_from_each_toolkit_registry(scope, module):
    registry = importlib.import_module(module).MODELS
    cfg = Config(dict(custom_imports=dict(imports=['ghostnetv2_mm'], allow_failed_imports=False),
                      backbone=dict(type='GhostNetV2', arch='1.3x', out_indices=(9,))))
    importlib.import_module(cfg.custom_imports['imports'][0])
    with DefaultScope.overwrite_default_scope(scope):
        backbone = registry.build(cfg.backbone)
    assert type(backbone).__name__ == 'GhostNetV2'
    assert backbone.out_channels == (208,)


def test_mmpretrain_image_classifier_has_exactly_the_reference_parameter_count():
    from ghostnetv2_mm.models import classifier_cfg
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    expected = {'1.0x': 6_156_908, '1.3x': 8_960_404, '1.6x': 12_392_698}
    for arch, count in expected.items():
        model = MODELS.build(classifier_cfg(arch))
        assert sum(p.numel() for p in model.parameters()) == count, arch
        model.eval()
        scores = model(torch.rand(1, 3, 64, 64), mode='tensor')
        assert scores.shape == (1, 1000)
