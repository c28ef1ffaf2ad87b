"""Run the numerically sensitive tests (marker ``numerics``, see pytest.ini) under
every CPU kernel set and thread count, and print one table.

PyTorch picks its CPU kernels by the instructions the CPU has (``native``: AVX-512
where present); ``ATEN_CPU_CAPABILITY=default|avx2|avx512`` forces a set. Each set
and thread count sums floats in another order, so a test that hinges on which way
rounding breaks a tie passes on one machine and fails on the next. Every combination
of kernel set (default, avx2, avx512 where the CPU has it and native is not already
AVX-512, native) and threads (1, 2)
runs the subset in its own pytest process; the threads reach the tests through
``GHOSTNETV2_TEST_THREADS`` (read by tests/conftest.py) and ``OMP_NUM_THREADS`` (for
the tools the tests start).

    python tools/dev/test_cpus.py                     # ``make test-cpus``
    python tools/dev/test_cpus.py --kernels default --threads 1 -- -k onnx

Exit status 1 if any combination has a failing test.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 (from /proc/cpuinfo)."""
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
    except OSError:
        return 'unknown CPU'
    name = re.search(r'^model name\s*:\s*(.+)$', text, re.M)
    flags = re.search(r'^flags\s*:\s*(.+)$', text, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    extras = [f for f in ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16') if f in flags]
    return (f"{name.group(1).strip() if name else 'unknown CPU'}, {os.cpu_count()} "
            f"logical CPUs ({', '.join(extras) or 'no AVX2'})")


def capability(kernel: str) -> str:
    """The kernel set PyTorch picks under ``ATEN_CPU_CAPABILITY=kernel`` (unset for
    'native'), e.g. 'AVX512', 'AVX2', 'DEFAULT'."""
    env = dict(os.environ)
    env.pop('ATEN_CPU_CAPABILITY', None)
    if kernel != 'native':
        env['ATEN_CPU_CAPABILITY'] = kernel
    out = subprocess.run([sys.executable, '-c', 'import torch; '
                          'print(torch.backends.cpu.get_cpu_capability())'],
                         env=env, capture_output=True, text=True)
    return out.stdout.strip() or 'unknown'


def counts(output: str) -> dict:
    """passed / failed / skipped (errors count as failed) from pytest's last line."""
    found = {k: 0 for k in ('passed', 'failed', 'skipped')}
    for number, word in re.findall(r'(\d+) (passed|failed|skipped|errors?)', output):
        found['failed' if word.startswith('error') else word] += int(number)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--kernels', nargs='+',
                        choices=['default', 'avx2', 'avx512', 'native'],
                        help='kernel sets (default: default, avx2, avx512 where the CPU '
                        'has it, native)')
    parser.add_argument('--threads', nargs='+', type=int, default=[1, 2],
                        choices=[1, 2, 4, 8], help='thread counts (default: 1 2)')
    parser.add_argument('pytest_args', nargs='*',
                        help='more pytest arguments (after --), e.g. -k onnx')
    args = parser.parse_args(argv)
    native = capability('native')
    kernels = args.kernels
    if not kernels:
        # avx512 only where the CPU has it and the native run does not already use it
        kernels = ['default', 'avx2'] + (['avx512'] if native != 'AVX512'
                                         and capability('avx512') == 'AVX512' else [])
        kernels += ['native']
    print(f'CPU: {cpu_model()}; PyTorch native kernels: {native}', flush=True)
    rows, failed = [], False
    for kernel in kernels:
        for threads in args.threads:
            env = dict(os.environ, GHOSTNETV2_TEST_THREADS=str(threads),
                       OMP_NUM_THREADS=str(threads))
            env.pop('ATEN_CPU_CAPABILITY', None)
            if kernel != 'native':
                env['ATEN_CPU_CAPABILITY'] = kernel
            command = [sys.executable, '-m', 'pytest', '-q', '-m', 'numerics',
                       '-p', 'no:cacheprovider', *args.pytest_args]
            start = time.time()
            out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True,
                                 text=True)
            seconds = time.time() - start
            found = counts(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else '')
            bad = out.returncode != 0
            failed |= bad
            rows.append((kernel, threads, found, seconds, bad))
            print(f'  {kernel:8} {threads} thread(s): {found["passed"]} passed, '
                  f'{found["failed"]} failed, {found["skipped"]} skipped, '
                  f'{seconds:.0f} s' + (' FAILED' if bad else ''), flush=True)
            if bad:
                failing = [line for line in out.stdout.splitlines()
                           if line.startswith(('FAILED', 'ERROR'))]
                print('\n'.join('    ' + line for line in failing[:20]
                                or out.stdout.splitlines()[-20:]), flush=True)
    print()
    print('| ATEN_CPU_CAPABILITY | threads | passed | failed | skipped | time (s) |')
    print('|---|---|---|---|---|---|')
    for kernel, threads, found, seconds, _ in rows:
        name = f'(unset: native, {native})' if kernel == 'native' else kernel
        print(f'| {name} | {threads} | {found["passed"]} | {found["failed"]} | '
              f'{found["skipped"]} | {seconds:.0f} |')
    print(f'\nCPU: {cpu_model()}; PyTorch native kernels: {native}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
