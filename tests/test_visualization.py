"""The picture tools write real PNGs, and the attention tool shows the real gates."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ghostnetv2_mm.datasets import make_toy_shapes
from ghostnetv2_mm.models import GhostNetV2
from ghostnetv2_mm.models.gates import collect_gates

from helpers import ROOT


def run_tool(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def assert_png(path, size=None):
    assert os.path.getsize(path) > 1000
    with Image.open(path) as image:
        assert image.format == 'PNG'
        if size is not None:
            assert image.size == size
        assert np.asarray(image).std() > 0  # not a blank canvas


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    make_toy_shapes(str(root), num_train=2, num_val=2, size=(96, 128))
    return root


def test_gates_are_what_the_model_multiplies_its_features_by():
    model = GhostNetV2().eval()
    block = model.layer7[2]
    recorded = {}

    def ghost1_hook(module, args, output):
        x = args[0]
        intrinsic = module.primary_conv(x)
        ungated = torch.cat([intrinsic, module.cheap_operation(intrinsic)], 1)
        recorded['ungated'] = ungated[:, :module.out_channels]
        recorded['output'] = output.clone()  # later layers may work in place

    handle = block.ghost1.register_forward_hook(ghost1_hook)
    gates = collect_gates(model, torch.rand(1, 3, 96, 128))
    handle.remove()
    gate = gates[(6, 2)]
    assert gate.shape == recorded['output'].shape
    torch.testing.assert_close(recorded['ungated'] * gate, recorded['output'])
    assert len(gates) == 14 and ((gate > 0) & (gate < 1)).all()


def test_dfc_attention_tool_writes_one_labelled_panel_per_stage(toy, tmp_path):
    out = tmp_path / 'dfc.png'
    stdout = run_tool('tools/visualization/dfc_attention.py',
                      str(toy / 'images' / 'training' / 'training_00000.jpg'),
                      '--size', '96', '--out', str(out))
    assert 'saved 7 panels' in stdout and str(out) in stdout
    assert_png(out)


def test_dfc_attention_tool_rejects_blocks_without_dfc(toy, tmp_path):
    result = subprocess.run([sys.executable, 'tools/visualization/dfc_attention.py',
                             str(toy / 'images' / 'training' / 'training_00000.jpg'),
                             '--blocks', '0,1', '--out', str(tmp_path / 'x.png')],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and 'have no DFC attention' in result.stderr


def test_plot_curves_draws_several_runs_into_one_png(tmp_path):
    runs = []
    for name, scale in (('a', 1.0), ('b', 0.5)):
        log = tmp_path / name / '20260101_000000' / 'vis_data' / 'scalars.json'
        log.parent.mkdir(parents=True)
        lines = [dict(step=i, loss=scale / (i + 1), lr=0.01) for i in range(1, 20)]
        lines += [dict(step=10, **{'coco/bbox_mAP': 0.1 * scale}),
                  dict(step=20, **{'coco/bbox_mAP': 0.3 * scale})]
        log.write_text('\n'.join(json.dumps(line) for line in lines))
        runs.append(str(tmp_path / name))
    out = tmp_path / 'curves.png'
    stdout = run_tool('tools/analysis/plot_curves.py', *runs, '--out', str(out))
    assert 'loss, coco/bbox_mAP' in stdout
    assert_png(out, size=(900, 360))


def test_demo_tool_draws_detections_with_the_toolkit_visualizer(toy, tmp_path):
    from mmengine.config import Config
    from ghostnetv2_mm.checkpoint import save_checkpoint_file
    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    config = os.path.join(ROOT, 'configs', 'demo', 'mask-rcnn_ghostnetv2_toyshapes.py')
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_model_from_config(cfg)
    checkpoint = tmp_path / 'random.pth'
    save_checkpoint_file({'state_dict': model.state_dict(),
                          'meta': {'dataset_meta': {'classes': ('circle', 'square', 'triangle')}}},
                         checkpoint)
    out_dir = tmp_path / 'vis'
    stdout = run_tool('tools/demo.py', str(toy / 'images' / 'validation'), config,
                      str(checkpoint), '--out-dir', str(out_dir), '--score-thr', '0')
    assert f'saved 2 picture(s) with predictions to {out_dir}' in stdout
    for name in ('validation_00000.png', 'validation_00001.png'):
        assert_png(out_dir / name, size=(128, 96))


def test_run_demo_trains_evaluates_and_draws_every_picture(tmp_path):
    """The README's main command, shortened to 2 iterations per model: both demo models
    train and evaluate through the tools, and every kind of picture is written."""
    data_root = tmp_path / 'toy'
    make_toy_shapes(str(data_root), num_train=4, num_val=2)
    work_dir = tmp_path / 'demo'
    out = run_tool(os.path.join(ROOT, 'tools', 'run_demo.py'), '--work-dir', str(work_dir),
                   '--data-root', str(data_root), '--max-iters', '2')
    assert 'Mask R-CNN + GhostNetV2-1.0x: box AP' in out
    assert 'DeepLabV3 + GhostNetV2-1.0x:  mIoU' in out
    pictures = work_dir / 'pictures'
    for name in ('mask-rcnn', 'deeplabv3'):
        drawn = sorted((pictures / name).iterdir())
        assert len(drawn) == 2, drawn  # one per validation image
        with Image.open(drawn[0]) as image:  # the toolkits keep the image's format
            assert image.size[0] >= 128 and np.asarray(image).std() > 0
    assert_png(pictures / 'dfc_attention.png')
    assert_png(pictures / 'curves.png')
    assert f'DFC attention gates: {pictures / "dfc_attention.png"}' in out
