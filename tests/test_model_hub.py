"""The GhostNet classifiers by name in mmpretrain's model hub, the metafiles, and the
configs shipped in the installed package.

Nothing is downloaded: the "official" file is timm's ghostnetv2_100 state dict (random
weights, randomised BatchNorm statistics, plus the thop counters the real files carry),
placed in a temporary TORCH_HOME's hub cache under the release file name, which is
where get_model looks for it.
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
from urllib.error import URLError

import numpy as np
import pytest
import torch

from helpers import ROOT, once
from ghostnetv2_mm.checkpoint import CheckpointError, adapt_state_dict, official_url
from ghostnetv2_mm.model_hub import HUB_METAFILE, hub_models, register_model_hub
from ghostnetv2_mm.utils.random_bn import randomise_bn

V2_NAME = 'ghostnetv2-1.0x_8xb128_in1k'
NAMES = ['ghostnet-1.0x_8xb128_in1k', 'ghostnetv2-1.0x_8xb128_in1k',
         'ghostnetv2-1.3x_8xb128_in1k', 'ghostnetv2-1.6x_8xb128_in1k',
         'ghostnetv3-1.0x_8xb128_in1k']
V2_URL = official_url('GhostNetV2', '1.0x')
# thop's profiler counters, as the official files carry them (not weights)
COUNTERS = {'total_ops': torch.zeros(1, dtype=torch.float64),
            'total_params': torch.zeros(1, dtype=torch.float64),
            'blocks.0.0.ghost1.primary_conv.0.total_ops': torch.zeros(1, dtype=torch.float64)}
_CACHE = {}


def _timm_file(model_name: str):
    """(timm model in eval mode, its state dict with thop counters): an official file."""
    def make():
        import timm
        model = randomise_bn(timm.create_model(model_name, pretrained=False), seed=1).eval()
        return model, {**model.state_dict(), **COUNTERS}
    return once(_CACHE, model_name, make)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache; returns its checkpoints folder."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    folder = tmp_path / 'torch' / 'hub' / 'checkpoints'
    folder.mkdir(parents=True)
    assert torch.hub.get_dir() == str(tmp_path / 'torch' / 'hub')
    return folder


@pytest.fixture
def cached_v2(torch_home):
    """The official-layout GhostNetV2 1.0x file in the hub cache; returns (timm model,
    state dict)."""
    timm_model, state_dict = _timm_file('ghostnetv2_100')
    torch.save(state_dict, torch_home / osp.basename(V2_URL))
    return timm_model, state_dict


def _image():
    return np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)


# ------------------------------------------------------------------ by name
def test_the_import_registered_the_five_classifiers():
    from mmpretrain import list_models
    assert list_models('*ghost*') == NAMES
    assert sorted(m.name for m in hub_models()) == NAMES


def test_get_model_by_name_gives_the_official_logits(cached_v2):
    from mmpretrain import get_model
    timm_model, _ = cached_v2
    model = get_model(V2_NAME, pretrained=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model(x, mode='tensor'), timm_model(x)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_what_the_classifier_holds_equals_the_file(cached_v2):
    """Every tensor of the file, at its place in the model, and nothing else."""
    from mmpretrain import get_model
    _, state_dict = cached_v2
    model = get_model(V2_NAME, pretrained=True)
    expected, _ = adapt_state_dict(model, state_dict)
    held = model.state_dict()
    assert set(held) == set(expected)
    different = [k for k, v in expected.items() if not torch.equal(held[k], v)]
    assert different == []


def test_inferencer_feature_extractor_and_inference_model_run_by_name(cached_v2):
    from mmengine.registry import DefaultScope
    from mmpretrain import (FeatureExtractor, ImageClassificationInferencer,
                            inference_model)
    _, state_dict = cached_v2
    # mmpretrain's inferencers build their pipelines in the current default scope;
    # earlier tests of this process leave mmdet's current, which a user's fresh
    # process does not have
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        _run_by_name(state_dict, ImageClassificationInferencer, FeatureExtractor,
                     inference_model)


def _run_by_name(state_dict, ImageClassificationInferencer, FeatureExtractor,
                 inference_model):
    inferencer = ImageClassificationInferencer(V2_NAME)
    # the inferencer's model holds the file too (its default is pretrained=True)
    assert torch.equal(inferencer.model.backbone.layer0.conv.weight,
                       state_dict['conv_stem.weight'])
    result = inferencer(_image())[0]
    assert result['pred_scores'].shape == (1000,)
    assert abs(float(result['pred_scores'].sum()) - 1) < 1e-4
    assert 0 <= result['pred_label'] < 1000 and isinstance(result['pred_class'], str)

    features = FeatureExtractor(V2_NAME)(_image())[0]
    assert [tuple(f.shape) for f in features] == [(960,)]

    result = inference_model(V2_NAME, _image())
    assert result['pred_scores'].shape == (1000,)


def test_offline_without_the_cached_file_fails_naming_the_url(torch_home, monkeypatch):
    """Every registered name's weights are read by this project's reader: offline, an
    error naming the URL and where to put the file; never a random model."""
    from mmpretrain import get_model

    def offline(url, *args, **kwargs):
        raise URLError('no network')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    for model in hub_models():
        with pytest.raises(CheckpointError) as info:
            get_model(model.name, pretrained=True)
        assert model.weights in str(info.value), model.name
        assert str(torch_home / osp.basename(model.weights)) in str(info.value)


# ------------------------------------------------------ loaded means loaded
def _unfit_files():
    _, v2 = _timm_file('ghostnetv2_100')
    _, v1 = _timm_file('ghostnet_100')
    one_short = dict(v2)
    del one_short['blocks.3.0.ghost1.short_conv.2.weight']
    extra = {**v2, 'blocks.3.0.extra.weight': torch.zeros(3)}
    return {'one tensor missing': one_short, 'one tensor more': extra,
            'GhostNet V1 file': v1, 'unrelated file': {'fc.weight': torch.zeros(2, 2)}}


@pytest.mark.parametrize('case', sorted(_unfit_files()))
@pytest.mark.parametrize('loader', ['mmengine', 'torch-non-strict'])
def test_a_file_that_does_not_fit_is_refused_and_nothing_loads(case, loader, tmp_path):
    from mmengine.runner import load_checkpoint
    from mmpretrain import get_model
    from ghostnetv2_mm.checkpoint import CheckpointMismatch
    state_dict = _unfit_files()[case]
    model = get_model(V2_NAME)  # random weights
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatch, match='nothing was loaded|refused'):
        if loader == 'mmengine':  # what get_model(name, pretrained=path) calls
            path = tmp_path / 'file.pth'
            torch.save(state_dict, path)
            load_checkpoint(model, str(path), map_location='cpu')
        else:
            model.load_state_dict(state_dict, strict=False)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_torch_strict_loading_takes_the_official_file(cached_v2):
    """The same hook serves torch's strict loader: no unexpected root-level keys."""
    from mmpretrain import get_model
    timm_model, state_dict = cached_v2
    model = get_model(V2_NAME)
    model.load_state_dict(state_dict, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x, mode='tensor') - timm_model(x)).abs().max().item() < 1e-4


# -------------------------------------------- nothing else of mmpretrain changes
HUB_SCRIPT = textwrap.dedent('''
    import json, sys
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmpretrain import list_models
    from mmpretrain.apis import ModelHub
    before = list_models()
    other = ModelHub.get('resnet18_8xb32_in1k')
    other_url = 'https://download.openmmlab.com/mmclassification/v0/resnet/x.pth'
    loader_before = CheckpointLoader._get_checkpoint_loader(other_url)
    import ghostnetv2_mm
    after = list_models()
    # importing again, by custom_imports, or registering again changes nothing
    from mmengine.config import Config
    Config.fromfile(sys.argv[1])
    again = ghostnetv2_mm.model_hub.register_model_hub()
    after_again = list_models()
    other_after = ModelHub.get('resnet18_8xb32_in1k')
    print(json.dumps(dict(
        added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)),
        again=sorted(again), same_again=after_again == after,
        other_same=(other.config.filename, other.weights)
        == (other_after.config.filename, other_after.weights),
        other_loader_same=CheckpointLoader._get_checkpoint_loader(other_url)
        is loader_before)))
''')
NO_MMPRETRAIN_SCRIPT = textwrap.dedent('''
    import sys, warnings
    sys.modules['mmpretrain'] = None  # as if not installed: importing it fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        import ghostnetv2_mm
    ours = [str(w.message) for w in caught if 'ghostnetv2_mm' in str(w.message)]
    print(ghostnetv2_mm.model_hub.register_model_hub(), ours)
''')


def _python(script, *args, cwd=ROOT, pythonpath=ROOT):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    out = subprocess.run([sys.executable, '-c', script, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_the_import_adds_exactly_the_names_and_changes_nothing_else():
    result = json.loads(_python(HUB_SCRIPT, osp.join(ROOT, 'configs', V2_NAME + '.py')))
    assert result == dict(added=NAMES, removed=[], again=NAMES, same_again=True,
                          other_same=True, other_loader_same=True)


def test_without_mmpretrain_the_import_works_and_registers_nothing():
    assert _python(NO_MMPRETRAIN_SCRIPT) == '[] []'  # no names, no warning


# ----------------------------------------------------------------- metafiles
def _model_index():
    from modelindex.load_model_index import load
    index = load(osp.join(ROOT, 'model-index.yml'))
    index.build_models_with_collections()
    return index


def _config_files():
    """Every config of configs/; a ``_base_/`` folder holds shared parts, not models."""
    paths = glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ROOT) for p in paths
                  if '_base_' not in osp.relpath(p, ROOT).split(os.sep))


def test_model_index_lists_every_config_once_and_only_existing_ones():
    index = _model_index()
    assert index.check(silent=True) == []
    listed = [m.config for m in index.models]
    assert sorted(listed) == _config_files()  # each config once, nothing else
    assert all(osp.isfile(osp.join(ROOT, c)) for c in listed)
    # OpenMMLab names a model after its config
    assert [m.name for m in index.models] == [osp.basename(c)[:-3] for c in listed]


def test_classifiers_carry_weights_and_top1_and_the_rest_carries_neither():
    index = _model_index()
    hub = {m.name for m in hub_models()}
    assert hub == set(NAMES)
    for model in index.models:
        if model.name in hub:
            assert model.filepath.endswith(HUB_METAFILE)
            assert model.weights.startswith('https://github.com/huawei-noah/')
            assert model.weights.endswith(('.pth', '.pth.tar'))
            (result,) = model.results
            assert result.task == 'Image Classification' and result.dataset == 'ImageNet-1k'
            assert 70 < result.metrics['Top 1 Accuracy'] < 80
        else:
            assert model.weights is None and not model.results, model.name
        assert model.metadata.training_data, model.name


def _get_flops_tool():
    spec = importlib.util.spec_from_file_location(
        'get_flops', osp.join(ROOT, 'tools', 'analysis', 'get_flops.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.mark.parametrize('config', _config_files())
def test_flops_and_parameters_are_what_get_flops_measures(config, monkeypatch):
    """`get_flops.py CONFIG --shape H W` runs as it is; its counters are recorded."""
    from ghostnetv2_mm.utils import count_parameters, toolkit
    (entry,) = [m for m in _model_index().models if m.config == config]
    meta = entry.metadata.data
    tool = _get_flops_tool()
    seen = {}
    build, count_macs = toolkit.build_model_from_config, tool.count_macs

    def recording_build(*args, **kwargs):
        seen['model'] = build(*args, **kwargs)
        return seen['model']

    def recording_macs(*args, **kwargs):
        seen['macs'], per_type = count_macs(*args, **kwargs)
        return seen['macs'], per_type

    monkeypatch.setattr(toolkit, 'build_model_from_config', recording_build)
    monkeypatch.setattr(tool, 'count_macs', recording_macs)
    height, width = meta['Input Size']
    argv = [osp.join(ROOT, config), '--shape', str(height), str(width)]
    tool.main(argv)
    assert meta['FLOPs'] == seen['macs']
    assert meta['Parameters'] == count_parameters(seen['model'])


# --------------------------------------------------- the installed package
INSTALLED_SCRIPT = textwrap.dedent('''
    import json, os, sys
    import ghostnetv2_mm
    from mmpretrain import get_model, list_models
    model = get_model(sys.argv[1])
    print(json.dumps(dict(package=ghostnetv2_mm.__file__, names=list_models('*ghost*'),
                          config=model._config.filename,
                          params=sum(p.numel() for p in model.parameters()))))
''')


def test_a_non_editable_install_ships_the_configs_and_finds_models_by_name(tmp_path):
    """pip install (not editable) into a folder, then get_model(name) from elsewhere."""
    source = tmp_path / 'source'
    source.mkdir()
    for name in ('setup.py', 'README.md', 'MANIFEST.in', 'model-index.yml'):
        shutil.copy2(osp.join(ROOT, name), source / name)
    for folder in ('configs', 'ghostnetv2_mm'):
        shutil.copytree(osp.join(ROOT, folder), source / folder,
                        ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    target = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps',
                    '--no-build-isolation', '--no-index', '--quiet', '--target',
                    str(target), str(source)], check=True, cwd=tmp_path, timeout=600)
    shipped = target / 'ghostnetv2_mm' / '.mim'
    in_repo = sorted(osp.relpath(p, ROOT) for pattern in ('*.py', '*.yml') for p in
                     glob.glob(osp.join(ROOT, 'configs', '**', pattern), recursive=True))
    assert sorted(str(p.relative_to(shipped)) for pattern in ('*.py', '*.yml')
                  for p in shipped.rglob(pattern)) == sorted(in_repo + ['model-index.yml'])
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    result = json.loads(_python(INSTALLED_SCRIPT, V2_NAME, cwd=elsewhere,
                                pythonpath=str(target)))
    assert result['package'] == str(target / 'ghostnetv2_mm' / '__init__.py')
    assert result['names'] == NAMES
    assert result['config'] == str(shipped / 'configs' / (V2_NAME + '.py'))
    assert result['params'] == 6_156_908
