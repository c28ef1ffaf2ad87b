"""Classification configs (ImageNet + transfer) and the transfer benchmark tool.

Everything runs on CPU on tiny data made here; nothing is downloaded.
"""
import csv
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ghostnetv2_mm.benchmarks import transfer
from ghostnetv2_mm.benchmarks.transfer.data import TensorDataset, make_loader
from ghostnetv2_mm.checkpoint import official_url

from helpers import (IMAGENET_CONFIGS, ROOT, load_config, make_image_folder,
                     tiny_runner_config)


TRANSFER_CONFIGS = {
    'configs/transfer/ghostnetv2-1.0x_cifar10.py': 10,
    'configs/transfer/ghostnetv2-1.0x_cifar10-224px.py': 10,
    'configs/transfer/ghostnetv2-1.0x_imagefolder.py': 5,
}


def build_model(cfg):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('arch', sorted(IMAGENET_CONFIGS))
def test_imagenet_config_builds_with_the_published_parameter_count(arch):
    path, params = IMAGENET_CONFIGS[arch]
    cfg = load_config(path)
    assert cfg.model.backbone.arch == arch
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == params


def test_imagenet_recipe_follows_the_reference():
    cfg = load_config(IMAGENET_CONFIGS['1.0x'][0])
    # timm step scheduler: lr(t) = 0.064 * 0.973 ** (t // 2.4) per epoch, 3 warm-up epochs
    warmup, step = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.by_epoch
    assert step.type == 'MultiStepLR' and step.gamma == 0.973 and step.by_epoch
    assert step.milestones[:6] == [3, 5, 8, 10, 12, 15] and len(step.milestones) == 187
    # the schedule mmengine builds from the config equals timm's, epoch by epoch
    from mmengine.optim import LinearLR, MultiStepLR
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [cls(optimizer, **{k: v for k, v in c.items() if k != 'type'})
                  for cls, c in ((LinearLR, warmup), (MultiStepLR, step))]
    for t in range(40):
        expected = (1e-6 + t * (0.064 - 1e-6) / 3 if t < 3
                    else 0.064 * 0.973 ** (t // 2.4))
        assert optimizer.param_groups[0]['lr'] == pytest.approx(expected, rel=1e-9), t
        for scheduler in schedulers:
            scheduler.step()
    assert cfg.optim_wrapper.optimizer.lr == 0.064 and cfg.auto_scale_lr.base_batch_size \
        == 8 * cfg.train_dataloader.batch_size
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
    assert cfg.train_cfg.max_epochs == 450
    randaug = next(t for t in cfg.train_pipeline if t.type == 'RandAugment')
    assert randaug.magnitude_level == 9 and randaug.magnitude_std == 0.5
    assert len(randaug.policies) == 15  # timm's original (non-increasing) op set
    crop = next(t for t in cfg.test_pipeline if t.type == 'CenterCrop')
    resize = next(t for t in cfg.test_pipeline if t.type == 'ResizeEdge')
    assert (crop.crop_size, resize.scale, resize.interpolation) == (224, 256, 'bicubic')


@pytest.mark.parametrize('path', sorted(TRANSFER_CONFIGS))
def test_transfer_configs_build_and_take_32x32_inputs(path):
    cfg = load_config(path)
    assert cfg.model.backbone.init_cfg.checkpoint == official_url('GhostNetV2', '1.0x')
    model = build_model(cfg)
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, TRANSFER_CONFIGS[path])


def test_imagenet_classifier_takes_32x32_and_non_square_inputs():
    model = build_model(load_config(IMAGENET_CONFIGS['1.0x'][0]))
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32), mode='tensor').shape == (1, 1000)
        assert model(torch.randn(1, 3, 48, 80), mode='tensor').shape == (1, 1000)


def direct_top1(runner):
    """Top-1 (%) of the model's own logits on the validation loader, computed here:
    the baseline the evaluator's figure must equal."""
    model = runner.model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in runner.val_dataloader:
            data = model.data_preprocessor(batch, False)
            logits = model(data['inputs'], mode='tensor')
            labels = torch.cat([s.gt_label for s in data['data_samples']])
            correct += int((logits.argmax(1) == labels).sum())
            total += len(labels)
    return 100.0 * correct / total


def run_one_iteration(cfg):
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    metrics = runner.val_loop.run()
    assert metrics['accuracy/top1'] == pytest.approx(direct_top1(runner))
    return runner


def test_imagenet_config_trains_one_iteration_and_evaluates(tmp_path):
    data_root = make_image_folder(str(tmp_path / 'data'))
    cfg = tiny_runner_config(load_config(IMAGENET_CONFIGS['1.0x'][0]), data_root,
                             str(tmp_path / 'work'))
    runner = run_one_iteration(cfg)
    # after epoch 0 the per-epoch warm-up moves to epoch 1: 1e-6 + (0.064 - 1e-6) / 3
    lr = runner.optim_wrapper.get_lr()['lr'][0]
    assert lr == pytest.approx(0.064 * (1e-6 / 0.064 + (1 - 1e-6 / 0.064) / 3), rel=1e-6)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))


def test_imagefolder_transfer_config_trains_at_32x32_and_evaluates(tmp_path):
    data_root = make_image_folder(str(tmp_path / 'data'))
    cfg = load_config('configs/transfer/ghostnetv2-1.0x_imagefolder.py')
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=32, backend='pillow'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')]
    cfg.val_dataloader.dataset.pipeline = cfg.test_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    cfg = tiny_runner_config(cfg, data_root, str(tmp_path / 'work'))
    run_one_iteration(cfg)


# ------------------------------------------------------------- transfer benchmark
def test_digits_dataset_is_a_fixed_split_of_upsampled_rgb_images():
    train, test = transfer.load_digits_splits()
    assert (len(train), len(test), train.num_classes) == (1347, 450, 10)
    img = train.load(0)
    assert img.mode == 'RGB' and img.size == (8, 8)
    x, y = TensorDataset(train, 32, augment=True, flip=False)[0]
    assert x.shape == (3, 32, 32) and y == train.labels[0]
    again, _ = transfer.load_digits_splits()
    assert again.labels == train.labels


def test_benchmark_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = str(tmp_path / 'transfer')
    settings = dict(datasets=['digits'], backbones=['ghostnetv2-1.0x', 'mobilenetv2'],
                    protocols=['linear', 'finetune'], epochs=1, max_train=200,
                    max_test=50, latency_runs=2, threads=1, out=out)
    rows = transfer.run_benchmark(**settings)
    assert len(rows) == 4
    assert {(r['backbone'], r['protocol']) for r in rows} == {
        (b, p) for b in ('ghostnetv2-1.0x', 'mobilenetv2') for p in ('linear', 'finetune')}
    # The baseline: always answering the most frequent class of the 50 test images.
    # A linear probe on the backbones' (random) features must score at least twice
    # that (with 40/20 images it did not reliably: MobileNetV2 0.25 against 0.20; with
    # 200/50 both pass). The 4 fine-tuning steps here cannot, so those rows are only
    # checked to count whole test images.
    _, test = transfer.load_digits_splits()
    labels = test.subset(50, 0).labels
    majority = max(labels.count(c) for c in set(labels)) / len(labels)
    for r in rows:
        top1 = float(r['top1'])
        if r['protocol'] == 'linear':
            assert top1 >= 2 * majority, (r['backbone'], top1, majority)
        else:
            assert round(top1 * 50) == pytest.approx(top1 * 50, abs=1e-6)
        assert r['init'] == 'random' and r['img_size'] == '32'
        assert int(r['macs']) > 0 and int(r['params']) > 0 and float(r['latency_ms']) > 0
        assert (r['n_train'], r['n_test']) == ('200', '50')
    ghost = next(r for r in rows if r['backbone'] == 'ghostnetv2-1.0x')
    from ghostnetv2_mm.models import GhostNetV2
    backbone_params = sum(p.numel() for p in GhostNetV2(out_indices=(10,)).parameters())
    assert int(ghost['params']) == backbone_params + 960 * 10 + 10
    for name in ('results.csv', 'results.md', 'accuracy_vs_macs.png'):
        assert osp.getsize(osp.join(out, name)) > 0
    markdown = open(osp.join(out, 'results.md')).read()
    assert '| digits | linear | ghostnetv2-1.0x | random |' in markdown
    with open(osp.join(out, 'accuracy_vs_macs.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    # A second invocation finds every row done and runs nothing.
    before = open(osp.join(out, 'results.csv')).read()
    capsys.readouterr()
    rows_again = transfer.run_benchmark(**settings)
    assert '4 already in' in capsys.readouterr().out
    assert open(osp.join(out, 'results.csv')).read() == before
    assert len(rows_again) == 4

    # A partly finished benchmark: drop the last row, rerun, only that one is redone.
    with open(osp.join(out, 'results.csv'), newline='') as f:
        kept = list(csv.DictReader(f))[:-1]
    with open(osp.join(out, 'results.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=transfer.CSV_FIELDS)
        writer.writeheader()
        writer.writerows(kept)
    rows_resumed = transfer.run_benchmark(**settings)
    assert '3 already in' in capsys.readouterr().out
    assert len(rows_resumed) == 4
    assert [r['finished'] for r in rows_resumed[:3]] == [r['finished'] for r in kept]

    # Other settings are refused rather than mixed into the same table.
    with pytest.raises(SystemExit, match='other settings'):
        transfer.run_benchmark(**dict(settings, seed=1))


def test_benchmark_command_line_passes_its_options(tmp_path):
    """tools/transfer_benchmark.py as docs/transfer.md runs it (comma-separated
    protocols, several backbones after one option) writes the rows it was asked for."""
    out = tmp_path / 'transfer'
    subprocess.run([sys.executable, 'tools/transfer_benchmark.py', '--datasets', 'digits',
                    '--backbones', 'ghostnetv2-1.0x', 'resnet18', '--protocols',
                    'linear,finetune', '--epochs', '1', '--max-train', '30', '--max-test', '10', '--latency-runs', '1',
                    '--threads', '1', '--seed', '3', '--out', str(out)],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    rows = transfer.read_rows(str(out / 'results.csv'))
    assert [(r['backbone'], r['protocol']) for r in rows] == [
        (b, p) for b in ('ghostnetv2-1.0x', 'resnet18') for p in ('linear', 'finetune')]
    assert {(r['n_train'], r['n_test'], r['seed']) for r in rows} == {('30', '10', '3')}
    assert {r['epochs'] for r in rows if r['protocol'] == 'finetune'} == {'1'}


def test_linear_probe_folded_into_the_head_gives_the_networks_own_logits():
    """``fold_head`` (the INT8 study exports the probed model) writes the fitted
    regression, standardisation included, into the linear layer: the network's own
    argmax then scores what the probe scored."""
    train, test = transfer.load_digits_splits()
    train, test = train.subset(200, 0), test.subset(50, 0)
    model, _ = transfer.build_model('ghostnetv2-1.0x', num_classes=10, img_size=32)
    top1 = transfer.linear_probe(model, train, test, img_size=32, fold_head=True)
    correct = 0
    with torch.no_grad():
        for x, y in make_loader(test, img_size=32):
            correct += int((model(x).argmax(1) == y).sum())
    assert top1 > 0.2  # a fitted probe, not chance (0.1)
    # float32 logits against scikit-learn's float64: one near-tie may flip
    assert abs(correct - round(top1 * len(test))) <= 1


def test_finetuning_from_random_weights_learns_digits(tmp_path):
    """The fine-tune protocol, gradient clipping included, trains a randomly initialised
    GhostNetV2 on digits in 5 epochs. Measured with these settings: 94.2% with the
    clipping, 54.0% with it turned off (GRAD_CLIP_NORM = inf); chance is 10%."""
    rows = transfer.run_benchmark(backbones=['ghostnetv2-1.0x'], protocols=['finetune'],
                                  epochs=5, latency_runs=1, threads=1,
                                  out=str(tmp_path / 'transfer'))
    assert float(rows[0]['top1']) > 0.8


def test_benchmark_stops_on_non_finite_features_and_records_nothing(tmp_path, monkeypatch):
    """A NaN feature (here: one NaN BatchNorm statistic in the final layer, as a
    diverged run leaves it) must stop the benchmark naming the run and the split,
    not be replaced by a number that yields a plausible accuracy."""
    from ghostnetv2_mm.benchmarks.transfer import model as transfer_model
    build_backbone = transfer_model.build_backbone

    def broken_backbone(name):
        backbone = build_backbone(name)
        backbone.layer10.bn.running_mean[7] = float('nan')
        return backbone

    monkeypatch.setattr(transfer_model, 'build_backbone', broken_backbone)
    out = tmp_path / 'transfer'
    with pytest.raises(SystemExit) as exc:
        transfer.run_benchmark(backbones=['ghostnetv2-1.0x'], protocols=['linear'],
                               max_train=20, max_test=10, latency_runs=1, threads=1,
                               out=str(out))
    message = str(exc.value.code)
    assert message.startswith('error: digits / ghostnetv2-1.0x / linear (init random): '
                              'features (train): 20 of 20 images give non-finite')
    assert transfer.read_rows(str(out / 'results.csv')) == []
