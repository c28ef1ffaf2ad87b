"""Every invalid argument is rejected where it enters, with a message that names the
argument, the bad value and what is allowed."""
import re

import pytest
import torch

from ghostnetv2_mm.models import GhostNetV2, classifier_cfg

# (kwargs, exception type, words the message must contain)
BACKBONE_CASES = [
    (dict(arch='2.0x'), ValueError, ['arch', "'2.0x'", '1.0x']),
    (dict(arch=7), TypeError, ['arch', '7', 'list of stages']),
    (dict(arch=[]), TypeError, ['arch', '[]']),
    (dict(arch=[[[3, 16, 16, 0]]]), ValueError, ['arch[0][0]', 'se_ratio, stride']),
    (dict(arch=[[[4, 16, 16, 0, 1]]]), ValueError, ['kernel', '4', 'odd']),
    (dict(arch=[[[3, 0, 16, 0, 1]]]), ValueError, ['hidden width', '0', 'positive']),
    (dict(arch=[[[3, 16, -8, 0, 1]]]), ValueError, ['out width', '-8', 'positive']),
    (dict(arch=[[[3, 16, 16, 1.5, 1]]]), ValueError, ['se_ratio', '1.5', '[0, 1)']),
    (dict(arch=[[[3, 16, 16, 0, 3]]]), ValueError, ['stride', '3', '1 or 2']),
    (dict(arch='1.0x', widen_factor=1.3), ValueError, ['widen_factor', '1.3', "arch='1.0x'"]),
    (dict(arch=[[[3, 16, 16, 0, 1]]], widen_factor=0), ValueError, ['widen_factor', '0', 'positive']),
    (dict(arch=[[[3, 16, 16, 0, 1]]], widen_factor=-1.0), ValueError, ['widen_factor', '-1.0']),
    (dict(in_channels=0), ValueError, ['in_channels', '0', '>= 1']),
    (dict(out_indices=(3, 11)), ValueError, ['out_indices', '(3, 11)', '[-11, 10]']),
    (dict(out_indices=(3, -12)), ValueError, ['out_indices', '-12']),
    (dict(out_indices=()), ValueError, ['out_indices', '()', 'non-empty']),
    (dict(out_indices=(3, 3)), ValueError, ['out_indices', '(3, 3)', 'distinct']),
    (dict(out_indices=('3',)), ValueError, ['out_indices', "('3',)"]),
    (dict(frozen_stages=11), ValueError, ['frozen_stages', '11', '[-1, 10]']),
    (dict(frozen_stages=-2), ValueError, ['frozen_stages', '-2', '[-1, 10]']),
    (dict(strides=(1, 2, 1)), ValueError, ['strides', '(1, 2, 1)', '9 ints']),
    (dict(strides=(1, 2, 1, 2, 1, 2, 1, 2, 2)), ValueError, ['strides[8]', '2', '[1]']),
    (dict(strides=(1, 3, 1, 2, 1, 2, 1, 2, 1)), ValueError, ['strides[1]', '3', '[1, 2]']),
    (dict(dilations=(1,) * 8), ValueError, ['dilations', '9 ints']),
    (dict(dilations=(1, 1, 1, 1, 1, 0, 1, 1, 1)), ValueError, ['dilations', '0', '>= 1']),
    (dict(dfc_blocks=(16,)), ValueError, ['dfc_blocks', '(16,)', '[0, 15]']),
    (dict(dfc_blocks='all'), TypeError, ['dfc_blocks', "'all'"]),
    (dict(dfc_kernel_size=4), ValueError, ['dfc_kernel_size', '4', 'odd']),
    (dict(norm_cfg=dict(type='NoSuchNorm')), KeyError, ['norm_cfg', 'NoSuchNorm', 'BN, SyncBN, GN']),
    (dict(norm_cfg='BN'), TypeError, ['norm_cfg', "'BN'", "'type'"]),
    (dict(act_cfg=dict(type='NoSuchAct')), KeyError, ['act_cfg', 'NoSuchAct', 'ReLU']),
    (dict(norm_eval='yes'), TypeError, ['norm_eval', "'yes'", 'True or False']),
    (dict(with_cp=1), TypeError, ['with_cp', '1', 'True or False']),
    (dict(pretrained=123), TypeError, ['pretrained', '123', 'path']),
    (dict(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth')),
     ValueError, ['pretrained', 'init_cfg', 'not both']),
]


@pytest.mark.parametrize('kwargs,exc,words', BACKBONE_CASES,
                         ids=[repr(c[0])[:60] for c in BACKBONE_CASES])
def test_invalid_backbone_argument_is_rejected_clearly(kwargs, exc, words):
    with pytest.raises(exc) as info:
        GhostNetV2(**kwargs)
    message = str(info.value)
    for word in words:
        assert word in message, f'{word!r} not in {message!r}'


@pytest.mark.parametrize('shape', [(1, 1, 32, 32), (1, 4, 32, 32), (3, 32, 32)])
def test_input_with_wrong_channels_or_rank_is_rejected(shape):
    model = GhostNetV2().eval()
    with pytest.raises(ValueError, match=re.escape('in_channels=3')):
        model(torch.rand(*shape))


def test_classifier_cfg_rejects_an_unknown_arch_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=re.escape("arch='2.0x'") + ".*'1.0x', '1.3x', '1.6x'"):
        classifier_cfg('2.0x')


@pytest.mark.parametrize('config,key,bad,words', [
    ('configs/retinanet_ghostnetv2_coco.py', 'neck', [40, 112, 161],
     ['model.neck.in_channels=[40, 112, 161]', 'outputs [40, 112, 160] channels']),
    ('configs/deeplabv3_ghostnetv2_ade20k.py', 'decode_head', 320,
     ['model.decode_head.in_channels=320', 'set it to 160']),
])
def test_mismatched_neck_or_head_channels_are_caught_before_training(config, key, bad, words):
    import os
    from mmengine.config import Config
    from ghostnetv2_mm.preflight import check_feature_channels
    from helpers import ROOT
    cfg = Config.fromfile(os.path.join(ROOT, config))
    assert check_feature_channels(cfg) is None
    cfg.model[key].in_channels = bad
    message = check_feature_channels(cfg)
    for word in words:
        assert word in message, message


def test_image_size_argument_reads_h_or_hxw_and_names_bad_text():
    """The one size argument type of the tools (--sizes, --export-size, ...)."""
    import argparse

    from ghostnetv2_mm.utils.cli import image_size
    assert image_size('224') == (224, 224) and image_size('256x416') == (256, 416)
    for bad in ('0', '3x', 'x4', '2x3x4', '-1', 'a'):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            image_size(bad)
