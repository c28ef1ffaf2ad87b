"""Where an ONNX graph spends its time on onnxruntime, and peers to compare it with.

* :func:`op_breakdown` runs a file with onnxruntime's own profiler
  (``SessionOptions.enable_profiling``) and sums the kernel time of every node by op
  type: convolutions against everything else (layout reorders, concatenations,
  shape arithmetic, ...), with node counts. The times are those of the graph
  onnxruntime actually runs, i.e. after its own optimisations (BatchNorm and
  activation fusion, the blocked "NCHWc" layout and the ``ReorderInput`` /
  ``ReorderOutput`` nodes that convert to and from it).
* :func:`export_timm_peer` writes a timm model's ``forward_features`` (the peers:
  the ``timm`` builds of the benchmarks' catalogue, :mod:`.catalogue`) as ONNX the
  plain way (TorchScript exporter, opset 17, dynamic N, H, W), for side-by-side
  timing with this project's export.
* :func:`time_interleaved` times several files in interleaved rounds (one run of
  each per round, the order rotating), so that load on a shared machine hits all of
  them alike; compare medians, or the median of per-round ratios. It runs them on
  onnxruntime, OpenVINO or ncnn (converted with pnnx, float32 / float16 / bfloat16
  storage): see :mod:`.runtimes`.
"""
import json
import os
import statistics
import tempfile
import warnings
from collections import Counter
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..utils.fileio import atomic_output
from .runtimes import make_runner, session  # noqa: F401 (session: re-exported)
from .timing import interleaved

#: Op types counted as convolution time (onnxruntime fuses Conv + activation into
#: ``FusedConv``; its blocked-layout convolution is ``Conv`` in the NCHWc domain).
CONV_OPS = frozenset({'Conv', 'FusedConv', 'NchwcConv'})
#: onnxruntime's conversions between NCHW and its blocked layout.
LAYOUT_OPS = frozenset({'ReorderInput', 'ReorderOutput'})

def random_input(size: Tuple[int, int], batch: int = 1, seed: int = 0) -> np.ndarray:
    """A (batch, 3, H, W) float32 array of standard normal values."""
    h, w = size
    return np.random.default_rng(seed).standard_normal((batch, 3, h, w), dtype=np.float32)


def _feed(sess, x: np.ndarray) -> Dict[str, np.ndarray]:
    return {sess.get_inputs()[0].name: x}


def kernel_times(onnx_path: str, x: np.ndarray, *, runs: int, warmup: int,
                 threads: int) -> List[Tuple[str, str, float]]:
    """onnxruntime's profiler on ``onnx_path`` fed ``x``: ``warmup`` runs, then
    ``runs`` counted ones; one ``(node name, op type, kernel microseconds)`` per node
    and counted run."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(onnx_path, threads, profile_prefix=os.path.join(tmp, 'profile'))
        feed = _feed(sess, x)
        for _ in range(warmup + runs):
            sess.run(None, feed)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    model_runs = sorted((e for e in events if e.get('cat') == 'Session'
                         and e.get('name') == 'model_run'), key=lambda e: e['ts'])
    if len(model_runs) < runs:
        raise RuntimeError(f'the profile of {onnx_path} has {len(model_runs)} runs, '
                           f'expected at least {runs}')
    start = model_runs[-runs]['ts']
    return [(e['name'], e.get('args', {}).get('op_name', '?'), e['dur']) for e in events
            if e.get('cat') == 'Node' and e.get('name', '').endswith('_kernel_time')
            and e['ts'] >= start]


def op_breakdown(onnx_path: str, *, size: Tuple[int, int] = (224, 224), batch: int = 1,
                 runs: int = 20, warmup: int = 5, threads: int = 1,
                 statistic: str = 'mean') -> Dict:
    """Kernel time per op type of ``onnx_path`` on onnxruntime, per run.

    Args:
        onnx_path (str): The ONNX file (one image input).
        size (tuple): Input (H, W). Default: (224, 224).
        batch (int): Input batch. Default: 1.
        runs (int): Profiled runs, after ``warmup`` runs that are not counted.
        warmup (int): Runs before the measured ones. Default: 5.
        threads (int): Intra-op threads. Default: 1.
        statistic (str): ``'mean'``: each node's kernel time averaged over the runs;
            ``'min'``: each node's shortest time over the runs (on a loaded machine
            the profiler's wall-clock durations include other processes' slices at
            random nodes; the minimum leaves most of them out). Default: ``'mean'``.

    Returns:
        dict: ``total_ms`` (sum of all kernel times per run), ``conv_ms``,
        ``other_ms``, ``other_fraction``, ``conv_nodes``, ``other_nodes`` and
        ``ops``: op type -> ``{'ms': per run, 'nodes': distinct nodes}``, slowest
        first.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f'runs={runs!r}, warmup={warmup!r}: allowed: runs >= 1, warmup >= 0')
    if statistic not in ('mean', 'min'):
        raise ValueError(f"statistic={statistic!r}: allowed: 'mean', 'min'")
    durations: Dict[str, List[float]] = {}
    kinds: Dict[str, str] = {}
    for name, op, dur in kernel_times(onnx_path, random_input(size, batch), runs=runs,
                                      warmup=warmup, threads=threads):
        durations.setdefault(name, []).append(dur)
        kinds[name] = op
    times: Dict[str, float] = Counter()
    nodes: Dict[str, set] = {}
    for name, values in durations.items():
        op = kinds[name]
        times[op] += sum(values) / runs if statistic == 'mean' else min(values)
        nodes.setdefault(op, set()).add(name)
    ops = {op: dict(ms=times[op] / 1e3, nodes=len(nodes[op]))
           for op in sorted(times, key=times.get, reverse=True)}
    total = sum(v['ms'] for v in ops.values())
    conv = sum(v['ms'] for op, v in ops.items() if op in CONV_OPS)
    return dict(total_ms=total, conv_ms=conv, other_ms=total - conv,
                other_fraction=(total - conv) / total if total else 0.0,
                conv_nodes=sum(v['nodes'] for op, v in ops.items() if op in CONV_OPS),
                other_nodes=sum(v['nodes'] for op, v in ops.items() if op not in CONV_OPS),
                ops=ops)


def format_breakdown(name: str, breakdown: Dict, top: int = 8) -> str:
    """One line: total, Conv, and the ``top`` slowest other op types."""
    b = breakdown
    others = [f"{op} {v['ms']:.2f} ({v['nodes']})" for op, v in b['ops'].items()
              if op not in CONV_OPS][:top]
    return (f"{name}: total {b['total_ms']:.2f} ms | Conv {b['conv_ms']:.2f} ms "
            f"({b['conv_nodes']} nodes) | other {b['other_ms']:.2f} ms "
            f"({100 * b['other_fraction']:.0f}%, {b['other_nodes']} nodes): "
            + ', '.join(others))


def node_counts(onnx_path: str) -> Counter:
    """Op type -> number of nodes in the file's graph (as written, before
    onnxruntime's optimisations)."""
    import onnx
    model = onnx.load(onnx_path, load_external_data=False)
    return Counter(node.op_type for node in model.graph.node)


def export_timm_peer(name: str, path: str, *, dynamic: bool = True, opset: int = 17,
                     size: Tuple[int, int] = (224, 224)) -> str:
    """Write timm's ``name`` (random weights, eval mode) up to ``forward_features``
    as ONNX, the plain way: ``torch.onnx.export(dynamo=False)``, constant folding
    (onnxruntime folds the BatchNorms itself), input ``input``.

    Args:
        name (str): A timm model name, e.g. ``'mobilenetv3_large_100'``.
        path (str): The .onnx file to write.
        dynamic (bool): Dynamic batch, height and width. Default: True.
        opset (int): ONNX opset. Default: 17.
        size (tuple): The (H, W) traced. Default: (224, 224).

    Returns:
        str: ``path``.
    """
    import timm
    import torch

    class Features(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.forward_features(x)

    if not timm.is_model(name):
        raise ValueError(f'name={name!r}: not a timm model')
    model = Features(timm.create_model(name, pretrained=False)).eval()
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    with torch.no_grad(), warnings.catch_warnings(), atomic_output(path) as out:
        # the TorchScript exporter on purpose: the one the peers were timed with
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript')
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        torch.onnx.export(model, (torch.randn(1, 3, *size),), out.path, dynamo=False,
                          opset_version=opset, input_names=['input'],
                          output_names=['features'], do_constant_folding=True,
                          dynamic_axes={'input': axes, 'features': axes} if dynamic else None)
    return path




def time_interleaved(paths: Dict[str, str], *, size: Tuple[int, int] = (224, 224),
                     batch: int = 1, rounds: int = 40, warmup: int = 5,
                     threads: int = 1, clock: str = 'wall', runtime: str = 'onnxruntime',
                     precision: str = 'fp32',
                     workdir: Optional[str] = None) -> Dict[str, List[float]]:
    """Milliseconds per run of each file, measured in interleaved rounds.

    Every round runs each model once, in an order that rotates from round to round.
    ``clock='thread'`` counts the CPU time of the calling thread instead of wall
    time: with one intra-op thread onnxruntime runs the whole graph on the caller's
    thread, so on a shared machine the time spent waiting for a core (other
    processes' slices) is left out.

    Args:
        paths (dict): Label -> ONNX file.
        size (tuple): Input (H, W). Default: (224, 224).
        batch (int): Input batch. Default: 1.
        rounds (int): Measured rounds. Default: 40.
        warmup (int): Unmeasured runs of each model first. Default: 5.
        threads (int): Intra-op threads of every session. Default: 1.
        clock (str): ``'wall'`` or ``'thread'`` (CPU time of this thread; only
            meaningful with ``threads=1``). Default: ``'wall'``.
        runtime (str): ``'onnxruntime'``, ``'openvino'`` or ``'ncnn'`` (see
            :mod:`.runtimes`; ncnn converts each file with pnnx for this size).
            Default: ``'onnxruntime'``.
        precision (str): ``'fp32'``; on ncnn also ``'fp16'`` or ``'bf16'`` storage.
            Default: ``'fp32'``.
        workdir (str, optional): Where ncnn conversions go (default: beside each
            ONNX file).

    Returns:
        dict: Label -> list of ``rounds`` times (ms), in round order.
    """
    if clock == 'thread' and threads != 1:
        raise ValueError(f"clock='thread' with threads={threads!r}: allowed only with "
                         'threads=1 (other threads would not be counted)')
    if clock == 'thread' and runtime == 'openvino':
        raise ValueError("clock='thread' with runtime='openvino': allowed only for "
                         'onnxruntime and ncnn (OpenVINO runs inference on its own threads)')
    x = random_input(size, batch)
    runs = {name: make_runner(runtime, p, x, threads=threads, precision=precision,
                              workdir=workdir) for name, p in paths.items()}
    # the project's one timing loop, each round started by the next model
    seconds = interleaved(runs, rounds, warmup, clock=clock, rotate=True)
    return {name: [t * 1e3 for t in values] for name, values in seconds.items()}


def ratio_to(times: Dict[str, List[float]], baseline: str) -> Dict[str, float]:
    """Median over rounds of each model's time divided by ``baseline``'s in the same
    round."""
    if baseline not in times:
        raise KeyError(f'baseline={baseline!r}: allowed: one of {sorted(times)}')
    base = times[baseline]
    return {n: statistics.median(a / b for a, b in zip(t, base)) for n, t in times.items()}
