"""GPU throughput: detector training (AMP) and backbone inference (AMP, channels-last),
against mmdet's RetinaNet-R18 and timm. The figures are described in
tools/analysis/gpu_benchmark.py."""
import time
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn

from .timing import device_sync, interleaved


def synthetic_batch(n: int, size: Tuple[int, int], device):
    """``n`` random images of ``size`` with 3 random boxes each, as mmdet's
    ``(inputs, data_samples)``."""
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


def train_throughput(config: str, *, batch: int, iters: int, size: Tuple[int, int],
                     device) -> float:
    """Images/s of forward + backward + SGD step (AMP float16) of ``config``'s
    detector on synthetic data; ``iters`` timed steps after 5 warm-up steps."""
    from mmengine.config import Config

    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_model_from_config(cfg).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler('cuda')
    x, samples = synthetic_batch(batch, size, device)

    def step():
        with torch.autocast('cuda', dtype=torch.float16):
            losses = model.loss(x, samples)
            loss = sum(v.sum() for k, v in losses.items() if 'loss' in k)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    seconds = interleaved({'train': step}, rounds=1, warmup=5, calls=iters,
                          sync=device_sync(device))['train'][0]
    return iters * batch / seconds


def inference_throughput(model: nn.Module, *, batch: int, device, iters: int = 20) -> float:
    """Images/s of ``model`` at 224x224 (AMP float16, channels-last); ``iters`` timed
    forwards after 5 warm-up forwards."""
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast('cuda', dtype=torch.float16):
        seconds = interleaved({'infer': lambda: model(x)}, rounds=1, warmup=5,
                              calls=iters, sync=device_sync(device))['infer'][0]
    return iters * batch / seconds


def run_gpu_benchmark(*, detectors: Dict[str, str], train_batch: int = 16,
                      iters: int = 20, size: Sequence[int] = (800, 1216)) -> str:
    """Training throughput of each detector config and backbone inference throughput
    (batch 64 and 256) of GhostNetV2-1.0x eager and deploy against timm's
    ghostnetv2_100; returns Markdown tables.

    Args:
        detectors (dict): table label -> detector config (path or ``mmdet::`` name).
        train_batch (int): training batch.
        iters (int): timed training steps.
        size (Sequence[int]): training image (H, W).
    """
    from ghostnetv2_mm.models import GhostNetV2

    from .timm_reference import TimmFeatures, create_timm_model
    if not torch.cuda.is_available():
        raise SystemExit('gpu_benchmark.py needs CUDA; this machine has none')
    device = torch.device('cuda')
    size = tuple(size)
    name = torch.cuda.get_device_name(device)
    lines = [f'GPU: {name}; {time.strftime("%Y-%m-%d")}; torch {torch.__version__}', '',
             f'| training, AMP, batch {train_batch}, {size[0]}x{size[1]} '
             '| images/s |', '|---|---|']
    for label, cfg in detectors.items():
        rate = train_throughput(cfg, batch=train_batch, iters=iters, size=size,
                                device=device)
        lines.append(f'| {label} | {rate:.1f} |')
    lines += ['', '| backbone inference, AMP, channels-last, 224x224 | batch 64 img/s '
              '| batch 256 img/s |', '|---|---|---|']
    models = {'timm ghostnetv2_100 (forward_features)':
              TimmFeatures(create_timm_model('GhostNetV2', '1.0x')),
              'ours eager': GhostNetV2('1.0x', out_indices=(10,)),
              'ours deploy': GhostNetV2('1.0x', out_indices=(10,))}
    models['ours deploy'].eval().switch_to_deploy()
    for label, model in models.items():
        rates = [inference_throughput(model, batch=b, device=device) for b in (64, 256)]
        lines.append(f'| {label} | {rates[0]:.0f} | {rates[1]:.0f} |')
    return '\n'.join(lines) + '\n'
