"""Official/timm weights convert, load strictly, and checkpoints are data only."""
import os
import pickle
import subprocess
import sys

import pytest
import torch

from ghostnetv2_mm.benchmarks.timm_reference import create_timm_model
from ghostnetv2_mm.checkpoint import (GHOSTNETV2, CheckpointError, adapt_state_dict,
                                      load_checkpoint_file, save_checkpoint_file)
from ghostnetv2_mm.models import GhostNetV2, build_classifier, convert_checkpoint_file

from helpers import ROOT, randomise_bn


def official_state_dict(arch='1.0x', with_profiler_counters=True):
    """A state dict in the exact layout of ck_ghostnetv2_*.pth.tar, including the
    thop counters that the official files carry on every module."""
    # timm (the test oracle: a required test dependency, requirements/tests.txt)
    model = randomise_bn(create_timm_model('GhostNetV2', arch))
    state = dict(model.state_dict())
    if with_profiler_counters:
        for name, _ in model.named_modules():
            prefix = f'{name}.' if name else ''
            state[f'{prefix}total_ops'] = torch.zeros(1, dtype=torch.float64)
            state[f'{prefix}total_params'] = torch.zeros(1, dtype=torch.float64)
    return model.eval(), state


@pytest.fixture(scope='module')
def official_file(tmp_path_factory):
    model, state = official_state_dict()
    path = tmp_path_factory.mktemp('official') / 'ck_ghostnetv2_10.pth.tar'
    torch.save({'state_dict': state}, path)
    return model, str(path)


def test_reference_layout_has_764_weight_entries_and_all_are_placed():
    _, state = official_state_dict(with_profiler_counters=False)
    assert len(state) == 764
    assert GHOSTNETV2.matches(state)
    classifier = build_classifier('1.0x')
    adapted, dropped = adapt_state_dict(classifier, state)
    assert dropped == []
    assert set(adapted) == set(classifier.state_dict())


def test_profiler_counters_are_recognised_and_dropped():
    _, state = official_state_dict()
    assert sum(k.endswith(('total_ops', 'total_params')) for k in state) > 300
    adapted, _ = adapt_state_dict(build_classifier('1.0x'), state)
    assert not any(k.endswith(('total_ops', 'total_params')) for k in adapted)
    assert len(adapted) == 764


@pytest.mark.parametrize('arch', ['1.0x', '1.3x', '1.6x'])
def test_converter_writes_a_classifier_that_reproduces_the_reference(arch, tmp_path):
    reference, state = official_state_dict(arch)
    src, dst = tmp_path / 'official.pth.tar', tmp_path / 'converted.pth'
    torch.save(state, src)  # a bare state dict, as some official files are
    report = convert_checkpoint_file(str(src), str(dst))
    assert report.arch == arch and report.problems == []
    model = build_classifier(arch).eval()
    model.load_state_dict(load_checkpoint_file(dst)['state_dict'], strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x, mode='tensor') - reference(x)).abs().max() < 1e-5


def test_converter_cli_writes_a_backbone_only_checkpoint(official_file, tmp_path):
    reference, src = official_file
    dst = tmp_path / 'backbone.pth'
    out = subprocess.run([sys.executable, 'tools/model_converters/ghostnetv2_to_mm.py',
                          src, str(dst), '--backbone-only'], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    assert 'arch 1.0x' in out and 'profiler counters' in out
    state = load_checkpoint_file(dst)['state_dict']
    GhostNetV2(out_indices=(10,)).load_state_dict(state, strict=True)


def test_converter_refuses_a_partial_checkpoint_and_writes_nothing(tmp_path):
    _, state = official_state_dict()
    del state['blocks.6.3.ghost1.short_conv.2.weight']
    state['blocks.6.3.mystery.weight'] = torch.zeros(3)
    src, dst = tmp_path / 'broken.pth.tar', tmp_path / 'out.pth'
    torch.save(state, src)
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint_file(str(src), str(dst))
    assert 'blocks.6.3.mystery.weight' in str(info.value)
    assert 'backbone.layer7.3.ghost1.dfc.horizontal.conv.weight' in str(info.value)
    assert not dst.exists()
    result = subprocess.run([sys.executable, 'tools/model_converters/ghostnetv2_to_mm.py',
                             str(src), str(dst)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and 'refusing to write a partial' in result.stderr
    assert not dst.exists()
    report = convert_checkpoint_file(str(src), str(dst), allow_partial=True)
    assert dst.exists() and report.problems


def test_init_cfg_pretrained_loads_an_official_file_directly(official_file):
    reference, path = official_file
    model = GhostNetV2(out_indices=(10,), init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert (model(x)[0] - reference.forward_features(x)).abs().max() < 1e-5


def test_init_cfg_pretrained_with_prefix_loads_a_classifier_checkpoint(official_file, tmp_path):
    reference, src = official_file
    dst = tmp_path / 'cls.pth'
    convert_checkpoint_file(src, str(dst))
    model = GhostNetV2(out_indices=(10,), init_cfg=dict(
        type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    model.init_weights()
    expected = load_checkpoint_file(dst)['state_dict']
    torch.testing.assert_close(model.layer10.conv.weight, expected['backbone.layer10.conv.weight'])


def test_pretrained_of_another_width_is_refused_and_nothing_is_loaded(official_file):
    _, path = official_file
    model = GhostNetV2('1.3x', init_cfg=dict(type='Pretrained', checkpoint=path))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match='with another shape'):
        model.init_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_pretrained_file_names_it_and_says_how_to_train_from_scratch(tmp_path):
    path = str(tmp_path / 'nope.pth')
    model = GhostNetV2(init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(FileNotFoundError) as info:
        model.init_weights()
    assert path in str(info.value) and 'init_cfg=None' in str(info.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned > "$GHOSTNETV2_MM_EVIL_MARK"',))


def test_checkpoint_with_a_pickled_callable_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    mark = tmp_path / 'ran'
    monkeypatch.setenv('GHOSTNETV2_MM_EVIL_MARK', str(mark))
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': _Evil()}, path)
    with pytest.raises(CheckpointError, match='not plain data'):
        load_checkpoint_file(path)
    assert not mark.exists()


def test_truncated_checkpoint_gives_an_error_naming_the_file(tmp_path):
    path = tmp_path / 'cut.pth'
    save_checkpoint_file({'w': torch.rand(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='cut.pth.*truncated or corrupted'):
        load_checkpoint_file(path)


def test_save_replaces_the_old_file_only_when_the_new_one_is_complete(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    save_checkpoint_file({'w': torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise pickle.PicklingError('boom')

    with pytest.raises(pickle.PicklingError, match='boom'):
        save_checkpoint_file({'w': Unpicklable()}, path)
    torch.testing.assert_close(load_checkpoint_file(path)['w'], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ['ckpt.pth']


def _tiny_imagenet_config(tmp_path, arch):
    from PIL import Image
    import numpy as np
    rng = np.random.RandomState(0)
    for name in ('cat', 'dog'):
        (tmp_path / 'data' / 'val' / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.randint(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            tmp_path / 'data' / 'val' / name / '0.png')
    config = tmp_path / f'tiny_in1k_{arch}.py'
    config.write_text(
        f"_base_ = [{os.path.join(ROOT, 'configs', f'ghostnetv2-{arch}_8xb128_in1k.py')!r}]\n"
        "test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,\n"
        f"    dataset=dict(_delete_=True, type='CustomDataset', data_root={str(tmp_path / 'data')!r},\n"
        "        data_prefix='val', with_label=True, pipeline=[dict(type='LoadImageFromFile'),\n"
        "        dict(type='Resize', scale=32), dict(type='PackInputs')]))\n"
        "test_evaluator = dict(type='Accuracy', topk=(1,))\n")
    return config


def test_tools_test_evaluates_an_official_checkpoint_file_directly(official_file, tmp_path):
    _, src = official_file
    config = _tiny_imagenet_config(tmp_path, '1.0x')
    result = subprocess.run([sys.executable, 'tools/test.py', str(config), src,
                             '--work-dir', str(tmp_path / 'work')],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'metrics: accuracy/top1=' in result.stdout


def test_tools_test_refuses_a_checkpoint_that_does_not_fit_the_model(official_file, tmp_path):
    _, src = official_file  # a 1.0x file given to a 1.3x config
    config = _tiny_imagenet_config(tmp_path, '1.3x')
    result = subprocess.run([sys.executable, 'tools/test.py', str(config), src,
                             '--work-dir', str(tmp_path / 'work')],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'does not fit' in result.stderr and 'with another shape' in result.stderr


def test_a_timm_safetensors_file_loads_as_it_is(tmp_path):
    """timm's hub serves model.safetensors; torch.load (2.14) reads that format as
    data, so the file loads like a torch-saved state dict, with the reference's
    numerics."""
    from safetensors.torch import save_file
    reference, _ = official_state_dict(with_profiler_counters=False)
    path = tmp_path / 'model.safetensors'
    save_file(reference.state_dict(), str(path))
    model = GhostNetV2(out_indices=(10,),
                       init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x)[0], reference.forward_features(x),
                                   rtol=0, atol=1e-5)
