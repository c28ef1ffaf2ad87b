"""A good OpenMMLab citizen: weights by URL through one checkpoint path, and no side
effects on models that are not this project's.

* a config whose backbone ``init_cfg`` names a URL trains with those weights; a second
  run reads them from torch hub's cache; broken downloads leave nothing behind;
* with ``ghostnetv2_mm`` imported, other models' checkpoints load through mmengine
  exactly as without it;
* ``--resume`` works through mmdet's own ``tools/train.py`` with safe loading on;
* official and timm files load through every entry point; other models' files are
  refused by GhostNetV2 with a message naming what did not fit.

The HTTP servers here listen on 127.0.0.1 only and are started and stopped by the tests.
"""
import contextlib
import http.server
import json
import os
import sys
import threading

import pytest
import timm
import torch

from ghostnetv2_mm.checkpoint import (CheckpointError, CheckpointMismatch,
                                      load_checkpoint_file, load_model_weights,
                                      read_checkpoint, url_cache_path)
from ghostnetv2_mm.models import GhostNetV2, build_classifier

from helpers import (IMAGENET_CONFIGS, ROOT, load_config, make_image_folder,
                     official_state_dict, randomise_bn, run, tiny_runner_config)

CONFIG = os.path.join(ROOT, 'tests', 'configs', 'retinanet_ghostnetv2_toyshapes_tiny.py')
OFFICIAL_NAME = 'ck_ghostnetv2_10.pth.tar'


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    """(timm model, path of an official-layout file, its bytes)."""
    model, state = official_state_dict()
    path = tmp_path_factory.mktemp('official') / OFFICIAL_NAME
    torch.save({'state_dict': state}, path)
    return model, str(path), path.read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.payload`` at any path; ``server.mode`` breaks it on purpose:
    'ok', 'short' (promises the whole file, sends half) or 'short-unsized' (sends half
    without a Content-Length, so the client cannot tell)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        data, mode = self.server.payload, self.server.mode
        self.send_response(200)
        if mode != 'short-unsized':
            self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data if mode == 'ok' else data[:len(data) // 2])
        if mode != 'ok':
            self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(payload: bytes, mode: str = 'ok'):
    """An HTTP server on 127.0.0.1 (a free port) for the duration of the block."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    server.payload, server.mode, server.requests = payload, mode, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache for this test (in this process and its children)."""
    home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home


def tiny_train_options(root, work_dir, max_iters):
    return ['--work-dir', str(work_dir), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}/',
            f'test_dataloader.dataset.data_root={root}/',
            f'test_evaluator.ann_file={root}/annotations/instances_validation.json',
            f'train_cfg.max_iters={max_iters}']


# ------------------------------------------------------------------ weights by URL
def test_a_config_with_a_url_trains_with_those_weights_then_reads_the_cache(
        official, toy_root, torch_home, tmp_path):
    reference, _, payload = official
    with serve(payload) as (server, base):
        url = f'{base}/releases/{OFFICIAL_NAME}'
        config = tmp_path / 'url_weights.py'
        config.write_text(f'_base_ = [{CONFIG!r}]\n'
                          'model = dict(backbone=dict(init_cfg=dict(_delete_=True,\n'
                          f'    type="Pretrained", checkpoint={url!r})))\n')
        proc = run([sys.executable, 'tools/train.py', str(config),
                    *tiny_train_options(toy_root, tmp_path / 'run', 1),
                    'optim_wrapper.optimizer.lr=0.0', 'default_hooks.checkpoint.interval=1'])
        assert proc.returncode == 0, proc.output[-3000:]
        assert server.requests == [f'/releases/{OFFICIAL_NAME}']
    cached = url_cache_path(url)
    assert cached.startswith(str(torch_home)) and os.path.isfile(cached)
    # lr 0: the trained checkpoint still holds exactly the served weights.
    trained = load_checkpoint_file(str(tmp_path / 'run' / 'iter_1.pth'))['state_dict']
    served = reference.state_dict()
    for ours, theirs in (('backbone.layer0.conv.weight', 'conv_stem.weight'),
                         ('backbone.layer7.3.ghost1.dfc.horizontal.conv.weight',
                          'blocks.6.3.ghost1.short_conv.2.weight')):
        assert torch.equal(trained[ours], served[theirs])

    # The server is gone: the second use reads the cached copy.
    backbone = GhostNetV2(out_indices=(10,), init_cfg=dict(type='Pretrained', checkpoint=url))
    backbone.init_weights()
    assert torch.equal(backbone.layer0.conv.weight, served['conv_stem.weight'])


@pytest.mark.parametrize('mode', ['short', 'short-unsized'])
def test_a_truncated_download_is_refused_and_leaves_nothing_in_the_cache(
        official, torch_home, mode):
    _, _, payload = official
    with serve(payload, mode) as (_, base):
        url = f'{base}/{OFFICIAL_NAME}'
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(url)
    assert url in str(info.value)
    cache = os.path.dirname(url_cache_path(url))
    assert not os.path.isdir(cache) or os.listdir(cache) == []
    # A later run does not trust anything: it downloads again (and succeeds).
    with serve(payload) as (server, base2):
        url2 = f'{base2}/{OFFICIAL_NAME}'
        assert 'state_dict' in read_checkpoint(url2)
        assert len(server.requests) == 1


def test_offline_the_error_names_the_url_the_cache_path_and_the_way_out(torch_home):
    with serve(b'') as (_, base):
        pass  # the port is closed again: nothing listens there
    url = f'{base}/{OFFICIAL_NAME}'
    with pytest.raises(CheckpointError) as info:
        GhostNetV2(init_cfg=dict(type='Pretrained', checkpoint=url)).init_weights()
    message = str(info.value)
    assert url in message and url_cache_path(url) in message
    assert 'init_cfg=None' in message  # how to train from scratch


def test_a_file_placed_in_the_cache_by_hand_is_used_without_any_download(
        official, torch_home):
    reference, path, payload = official
    url = 'http://127.0.0.1:9/never/contacted/' + OFFICIAL_NAME  # port 9: discard
    os.makedirs(os.path.dirname(url_cache_path(url)))
    with open(url_cache_path(url), 'wb') as f:
        f.write(payload)
    backbone = GhostNetV2(init_cfg=dict(type='Pretrained', checkpoint=url))
    backbone.init_weights()
    assert torch.equal(backbone.layer0.conv.weight, reference.conv_stem.weight)


# ------------------------------------------------------------ no side effects
SIDE_EFFECT_SCRIPT = r'''
import hashlib, json, sys
import torch
if sys.argv[2] == 'with-plugin':
    import ghostnetv2_mm  # noqa: F401
import timm
from mmengine.runner import load_checkpoint
from mmpretrain.models import ResNet

builders = {
    'efficientnet_b0': lambda: timm.create_model('efficientnet_b0'),
    'mobilenetv3_large_100': lambda: timm.create_model('mobilenetv3_large_100'),
    'ghostnet_100': lambda: timm.create_model('ghostnet_100'),
    'mmpretrain_resnet18': lambda: ResNet(depth=18),
}
digests = {}
for name, build in builders.items():
    torch.manual_seed(1)  # the model's own init differs from the file's weights
    model = build()
    load_checkpoint(model, f'{sys.argv[1]}/{name}.pth', map_location='cpu', strict=True)
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode()); h.update(value.detach().contiguous().numpy().tobytes())
    digests[name] = h.hexdigest()
print('DIGESTS ' + json.dumps(digests))
'''


def test_other_models_load_exactly_as_without_the_plugin(tmp_path):
    from mmpretrain.models import ResNet
    files = {'efficientnet_b0': timm.create_model('efficientnet_b0'),
             'mobilenetv3_large_100': timm.create_model('mobilenetv3_large_100'),
             'ghostnet_100': timm.create_model('ghostnet_100'),
             'mmpretrain_resnet18': ResNet(depth=18)}
    for name, model in files.items():
        randomise_bn(model, seed=3)
        torch.save({'state_dict': model.state_dict()}, tmp_path / f'{name}.pth')
    digests = {}
    for mode in ('without-plugin', 'with-plugin'):
        proc = run([sys.executable, '-c', SIDE_EFFECT_SCRIPT, str(tmp_path), mode])
        assert proc.returncode == 0, proc.output[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith('DIGESTS '))
        digests[mode] = json.loads(line[len('DIGESTS '):])
    assert digests['with-plugin'] == digests['without-plugin']
    assert len(digests['with-plugin']) == 4


def test_importing_the_plugin_replaces_no_mmengine_function():
    script = ('import mmengine.runner.checkpoint as c, mmengine.fileio.backends as b\n'
              'before = (dict(c.CheckpointLoader._schemes), b.LocalBackend.put,'
              ' b.LocalBackend.put_text, c.load_checkpoint, c._load_checkpoint)\n'
              'import ghostnetv2_mm\n'
              'after = (dict(c.CheckpointLoader._schemes), b.LocalBackend.put,'
              ' b.LocalBackend.put_text, c.load_checkpoint, c._load_checkpoint)\n'
              # added, none replaced: a loader for exactly the five official weight
              # URLs of the model hub's classifiers (ghostnetv2_mm/model_hub.py)
              'added = {k: v for k, v in after[0].items() if k not in before[0]}\n'
              'assert list(added.values()) == [ghostnetv2_mm.model_hub.'
              'load_from_official_release] * 5, added\n'
              'after = ({k: after[0][k] for k in before[0]},) + after[1:]\n'
              'assert before == after, [x for x, y in zip(before, after) if x != y]\n'
              'print("UNCHANGED")')
    proc = run([sys.executable, '-c', script])
    assert proc.returncode == 0 and 'UNCHANGED' in proc.stdout, proc.output[-2000:]


# --------------------------------------------------- resume through mmdet's own tool
def test_resume_through_mmdets_own_train_tool_with_safe_loading(toy_root, tmp_path):
    import mmdet
    mmdet_train = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    assert os.path.isfile(mmdet_train), mmdet_train
    work_dir = tmp_path / 'run'
    env = {'PYTHONPATH': ROOT}
    first = run([sys.executable, mmdet_train, CONFIG,
                 *tiny_train_options(toy_root, work_dir, 2)], env=env)
    assert first.returncode == 0, first.output[-3000:]
    # The interruption: the run ended at iteration 2; continue it to 4.
    second = run([sys.executable, mmdet_train, CONFIG, '--resume',
                  *tiny_train_options(toy_root, work_dir, 4)], env=env)
    assert second.returncode == 0, second.output[-3000:]
    assert 'resumed epoch: 0, iter: 2' in second.output
    final = load_checkpoint_file(str(work_dir / 'iter_4.pth'))
    assert final['meta']['iter'] == 4


# -------------------------------------------------------- every entry point reads them
@pytest.mark.parametrize('layout', ['official', 'timm'])
def test_a_classifier_loads_reference_files_whole(layout, tmp_path):
    reference, state = official_state_dict()
    if layout == 'timm':
        state = reference.state_dict()
    path = tmp_path / 'weights.pth'
    torch.save(state if layout == 'timm' else {'state_dict': state}, path)
    classifier = build_classifier('1.0x').eval()
    load_model_weights(classifier, str(path))
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert (classifier(x, mode='tensor') - reference(x)).abs().max() < 1e-5


def test_mmengine_load_checkpoint_renames_reference_keys_through_the_backbone_hook(official):
    from mmengine.runner import load_checkpoint
    reference, path, _ = official
    backbone = GhostNetV2(out_indices=(10,)).eval()
    load_checkpoint(backbone, path, map_location='cpu', strict=True)
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert (backbone(x)[0] - reference.forward_features(x)).abs().max() < 1e-5


def test_an_official_file_given_to_a_whole_detector_fills_its_backbone_only(
        official, tmp_path):
    """A whole model gets the official backbone keys relocated under ``backbone.``;
    the neck and head it lacks make the strict loader refuse, naming only them."""
    from mmengine.config import Config
    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    _, path, _ = official
    detector = build_model_from_config(Config.fromfile(CONFIG))
    with pytest.raises(CheckpointMismatch) as info:
        load_model_weights(detector, path)
    assert info.value.missing and info.value.unexpected == []
    assert all(k.startswith(('neck.', 'bbox_head.')) for k in info.value.missing)


@pytest.mark.parametrize('other', ['ghostnet_100', 'efficientnet_b0'])
def test_ghostnetv2_refuses_another_models_file_and_names_what_did_not_fit(other, tmp_path):
    path = tmp_path / f'{other}.pth'
    torch.save(timm.create_model(other).state_dict(), path)
    backbone = GhostNetV2(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(CheckpointMismatch) as info:
        backbone.init_weights()
    message = str(info.value)
    assert str(path) in message and 'nothing was loaded' in message
    assert 'layer0.conv.weight' in message  # what is missing, by name
    assert info.value.missing and info.value.unexpected
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())


def test_load_from_an_official_file_starts_a_classifier_from_its_weights(official, tmp_path):
    """tools/train.py with ``load_from`` = an official file: mmengine hands the file to
    the whole classifier; the keys reach the backbone and the head (lr 0: one training
    iteration leaves exactly the file's weights in the checkpoint)."""
    import tools.train as train_tool
    reference, path, _ = official
    cfg = tiny_runner_config(load_config(IMAGENET_CONFIGS['1.0x'][0]),
                             make_image_folder(str(tmp_path / 'data')),
                             str(tmp_path / 'work'), num_classes=1000)
    cfg.load_from = path
    cfg.optim_wrapper.optimizer.lr = 0.0
    cfg.dump(str(tmp_path / 'config.py'))
    train_tool.main([str(tmp_path / 'config.py')])
    trained = load_checkpoint_file(str(tmp_path / 'work' / 'epoch_1.pth'))['state_dict']
    served = reference.state_dict()
    assert torch.equal(trained['backbone.layer0.conv.weight'], served['conv_stem.weight'])
    assert torch.equal(trained['head.layers.0.fc.weight'], served['conv_head.weight'].flatten(1))
    assert torch.equal(trained['head.layers.1.fc.weight'], served['classifier.weight'])
