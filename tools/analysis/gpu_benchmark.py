#!/usr/bin/env python
"""GPU figures for docs/benchmarks.md (needs CUDA; prints Markdown tables).

    python tools/analysis/gpu_benchmark.py --out work_dirs/gpu_benchmark.md

1. Training throughput (images/s; forward + backward + SGD step; AMP float16; batch
   ``--train-batch``, default 16) of RetinaNet-GhostNetV2-1.0x (configs/
   retinanet_ghostnetv2_coco.py) against mmdet's RetinaNet-R18
   (mmdet::retinanet/retinanet_r18_fpn_1x_coco.py), on synthetic 800x1216 images with
   3 random boxes each, random weights, ``--iters`` timed iterations after 5 warm-ups.
2. Backbone inference throughput (AMP float16, channels-last, batch 64 and 256, 224x224)
   of this project's GhostNetV2-1.0x (eager and deploy) against timm's ghostnetv2_100.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--train-batch', type=int, default=16)
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--size', type=int, nargs=2, default=[800, 1216])
    parser.add_argument('--out', help='also write the tables to this file')
    return parser.parse_args(argv)


def synthetic_batch(n, size, device):
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    h, w = size
    samples = []
    for _ in range(n):
        xy = torch.rand(3, 2, device=device) * torch.tensor([w / 2, h / 2], device=device)
        wh = torch.rand(3, 2, device=device) * 200 + 32
        inst = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                            labels=torch.randint(0, 80, (3,), device=device))
        samples.append(DetDataSample(gt_instances=inst, metainfo=dict(
            img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w),
            scale_factor=(1.0, 1.0), ori_shape=(h, w))))
    return torch.randn(n, 3, h, w, device=device), samples


def train_throughput(config, args, device):
    import torch
    from mmengine.config import Config

    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_model_from_config(cfg).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler('cuda')
    x, samples = synthetic_batch(args.train_batch, args.size, device)

    def step():
        with torch.autocast('cuda', dtype=torch.float16):
            losses = model.loss(x, samples)
            loss = sum(v.sum() for k, v in losses.items() if 'loss' in k)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    torch.cuda.synchronize()
    return args.iters * args.train_batch / (time.perf_counter() - start)


def inference_throughput(model, batch, device, iters=20):
    import torch
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast('cuda', dtype=torch.float16):
        for _ in range(5):
            model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        torch.cuda.synchronize()
    return iters * batch / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    import timm
    import torch
    if not torch.cuda.is_available():
        raise SystemExit('gpu_benchmark.py needs CUDA; this machine has none')
    from ghostnetv2_mm.models import GhostNetV2
    device = torch.device('cuda')
    name = torch.cuda.get_device_name(device)
    lines = [f'GPU: {name}; {time.strftime("%Y-%m-%d")}; torch {torch.__version__}', '',
             f'| training, AMP, batch {args.train_batch}, {args.size[0]}x{args.size[1]} '
             '| images/s |', '|---|---|']
    for label, cfg in [('RetinaNet GhostNetV2-1.0x',
                        os.path.join(ROOT, 'configs', 'retinanet_ghostnetv2_coco.py')),
                       ('RetinaNet R-18 (mmdet)',
                        'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')]:
        lines.append(f'| {label} | {train_throughput(cfg, args, device):.1f} |')
    lines += ['', '| backbone inference, AMP, channels-last, 224x224 | batch 64 img/s '
              '| batch 256 img/s |', '|---|---|---|']
    models = {'timm ghostnetv2_100 (forward_features)': None,
              'ours eager': GhostNetV2('1.0x', out_indices=(10,)),
              'ours deploy': GhostNetV2('1.0x', out_indices=(10,))}
    models['ours deploy'].eval().switch_to_deploy()

    class Features(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.forward_features(x)
    models['timm ghostnetv2_100 (forward_features)'] = Features(
        timm.create_model('ghostnetv2_100'))
    for label, model in models.items():
        rates = [inference_throughput(model, b, device) for b in (64, 256)]
        lines.append(f'| {label} | {rates[0]:.0f} | {rates[1]:.0f} |')
    text = '\n'.join(lines) + '\n'
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
