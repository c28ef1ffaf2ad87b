"""Timing, written once for every measuring tool.

Models compared in one run are timed in interleaved ROUNDS: each runs its warm-up
calls first, then in every round each runs once, one after the other. Background
load then hits all of them alike, so per-round ratios stay meaningful on a busy
machine. A round may time a block of ``calls`` back-to-back calls (throughput of
an asynchronous device: synchronised only at the block's ends).
"""
import math
import statistics
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import torch

Sync = Optional[Callable[[], None]]


def device_sync(device) -> Sync:
    """What waits for ``device``'s queued work (None on the CPU, which runs in order)."""
    device = torch.device(device)
    if device.type == 'cuda':
        return lambda: torch.cuda.synchronize(device)
    return None


def time_block(fn: Callable[[], object], calls: int = 1, sync: Sync = None) -> float:
    """Seconds taken by ``calls`` back-to-back calls of ``fn()``, synchronised before
    and after the block when ``sync`` is given."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def interleaved(runs: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 0,
                calls: int = 1, sync: Sync = None,
                on_round: Optional[Callable[[int], None]] = None) -> Dict[str, List[float]]:
    """Time every callable of ``runs`` in interleaved rounds.

    Args:
        runs (Mapping[str, Callable]): name -> a callable without arguments.
        rounds (int): timed rounds; each callable is timed once per round.
        warmup (int): untimed calls of each callable before the first round.
        calls (int): back-to-back calls timed together in a round.
        sync (Callable, optional): waits for the device (see :func:`device_sync`).
        on_round (Callable, optional): called with the number of rounds done.

    Returns:
        dict: name -> the seconds of each round, in round order.
    """
    if rounds < 1 or warmup < 0 or calls < 1:
        raise ValueError(f'interleaved: rounds={rounds} must be >= 1, warmup={warmup} '
                         f'>= 0 and calls={calls} >= 1')
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name, fn in runs.items():
            times[name].append(time_block(fn, calls, sync))
        if on_round is not None:
            on_round(r + 1)
    return times


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, linearly interpolated."""
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def median_ratio(times: Sequence[float], baseline: Sequence[float]) -> float:
    """Median over rounds of time / baseline time in the same round."""
    return statistics.median(a / b for a, b in zip(times, baseline))


def peak_memory(fn: Callable[[], object], device) -> float:
    """Peak bytes held by one call of ``fn()`` on top of what was allocated before.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: replayed from the allocation and
    free events that ``torch.profiler`` records with ``profile_memory=True`` (there is
    no allocator statistic to read).
    """
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    timeline = []
    for event in prof.events():
        if event.name == '[memory]':  # frees (and a few allocations) outside any op
            timeline.append((event.time_range.start, event.cpu_memory_usage))
        elif event.self_cpu_memory_usage:
            timeline.append((event.time_range.start, event.self_cpu_memory_usage))
    current = peak = 0
    for _, nbytes in sorted(timeline, key=lambda item: item[0]):
        current += nbytes
        peak = max(peak, current)
    return float(peak)
