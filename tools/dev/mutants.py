"""Mutation check: break the model on purpose, one small change at a time, and make
sure a test notices.

Each mutant (``tools/dev/mutant_list.py``) is a textual replacement ``old -> new`` in
one source file, plus the pytest selection that is expected to catch it. The run:

1. copies the repository's files (tracked and untracked-but-not-ignored, as they are
   on disk) into a temporary folder, so the working tree is never modified;
2. checks that every mutant's ``old`` text occurs exactly once in its file (a stale
   mutant is an error, never a silent "survivor");
3. runs the union of all selections on the unmutated copy: it must pass, or no
   result would mean anything;
4. for each mutant: applies it, runs its selection (``pytest -x`` with a timeout),
   restores the file (always, also on Ctrl-C), and records killed/survived.

It prints a table and exits 1 if any mutant survived (2 for a setup error).

    python tools/dev/mutants.py              # all mutants (``make mutants``)
    python tools/dev/mutants.py --list       # what would run
    python tools/dev/mutants.py --only dfc-sigmoid se-gate
"""
import argparse
import importlib.util
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))


def _load_mutants():
    # mutant_list.py sits beside this script; it is data, not part of the package
    spec = importlib.util.spec_from_file_location('mutant_list', osp.join(HERE, 'mutant_list.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MUTANTS


MUTANTS = _load_mutants()


class SetupError(RuntimeError):
    pass


def git(*args, cwd=ROOT):
    return subprocess.run(['git', *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def repository_files():
    """Tracked files plus untracked files git does not ignore (new tests count)."""
    out = git('ls-files', '--cached', '--others', '--exclude-standard', '-z')
    return [f for f in out.split('\0') if f and osp.isfile(osp.join(ROOT, f))]


def dirty_files(paths):
    out = git('status', '--porcelain', '--', *paths)
    return [line[3:] for line in out.splitlines()]


def copy_tree(dest):
    for rel in repository_files():
        target = osp.join(dest, rel)
        os.makedirs(osp.dirname(target), exist_ok=True)
        shutil.copy2(osp.join(ROOT, rel), target)


def check_mutants(mutants, tree):
    """Every mutant must apply exactly once, to the code as it is."""
    names = [m['name'] for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SetupError(f'duplicate mutant names: {duplicates}')
    problems = []
    for m in mutants:
        path = osp.join(tree, m['file'])
        if not osp.isfile(path):
            problems.append(f"{m['name']}: file {m['file']!r} does not exist")
            continue
        with open(path, encoding='utf-8') as f:
            count = f.read().count(m['old'])
        if count != 1:
            problems.append(f"{m['name']}: the text to replace occurs {count} times in "
                            f"{m['file']} (must be exactly once): {m['old']!r}")
        if m['old'] == m['new']:
            problems.append(f"{m['name']}: old and new are the same")
        if not m.get('tests') or any(t.startswith('-') for t in m['tests']):
            problems.append(f"{m['name']}: tests must be a non-empty list of pytest node "
                            'ids (no options: the baseline runs their union)')
    if problems:
        raise SetupError('stale or invalid mutants (update tools/dev/mutant_list.py):\n  '
                         + '\n  '.join(problems))


def check_import_location(tree, python):
    """The copy, not the editable install of the working tree, must be imported."""
    out = subprocess.run(
        [python, '-c', 'import ghostnetv2_mm; print(ghostnetv2_mm.__file__)'],
        cwd=tree, env=test_env(tree), capture_output=True, text=True)
    where = out.stdout.strip()
    if out.returncode != 0 or not osp.realpath(where).startswith(osp.realpath(tree) + os.sep):
        raise SetupError(f'ghostnetv2_mm is imported from {where or out.stderr!r}, not from '
                         f'the temporary copy {tree}')


def test_env(tree):
    env = dict(os.environ)
    env['PYTHONPATH'] = tree + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH')
                                else '')
    env.pop('PYTEST_ADDOPTS', None)
    return env


def run_pytest(tree, python, selection, timeout, stop_first=True, whole_limit=True):
    """Run pytest on ``selection`` in ``tree``: (passed, first failure, seconds, log).
    Each test gets ``timeout`` seconds; with ``whole_limit`` the whole run gets
    ``timeout`` + 60 (a mutant's selection), without it only the per-test limit
    holds (the baseline, the union of every mutant's selection)."""
    cmd = [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rf',
           '--timeout', str(timeout), *(['-x'] if stop_first else []), *selection]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tree, env=test_env(tree), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout + 60 if whole_limit else None)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        timed_out = True
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    seconds = time.monotonic() - start
    if timed_out:
        return False, f'timeout after {timeout + 60} s', seconds, log
    failed = re.findall(r'^(?:FAILED|ERROR) (\S+)', log, re.M)
    first = failed[0] if failed else (f'pytest exit {proc.returncode}'
                                     if proc.returncode else '')
    # exit 5: nothing was collected, which must not count as a pass
    passed = proc.returncode == 0
    if proc.returncode == 5:
        first = 'no tests collected'
    return passed, first, seconds, log


def apply(tree, mutant):
    path = osp.join(tree, mutant['file'])
    with open(path, encoding='utf-8') as f:
        original = f.read()
    if original.count(mutant['old']) != 1:
        raise SetupError(f"{mutant['name']}: text not found exactly once in {mutant['file']}")
    with open(path, 'w', encoding='utf-8') as f:
        f.write(original.replace(mutant['old'], mutant['new']))
    return path, original


def print_table(results, out=sys.stdout):
    width = max([len(r['name']) for r in results] + [6])
    print(f"\n{'mutant':<{width}}  {'result':<8}  {'time':>6}  caught by / note", file=out)
    print(f"{'-' * width}  {'-' * 8}  {'-' * 6}  {'-' * 40}", file=out)
    for r in results:
        print(f"{r['name']:<{width}}  {r['result']:<8}  {r['seconds']:5.0f}s  {r['note']}",
              file=out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--only', nargs='+', metavar='NAME', help='run only these mutants')
    parser.add_argument('--list', action='store_true', help='list the mutants and exit')
    parser.add_argument('--timeout', type=int, default=240,
                        help='per-test timeout in seconds (default 240); the whole '
                             'selection of a mutant gets this plus 60 s')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter that runs pytest (default: this one)')
    parser.add_argument('--allow-dirty', action='store_true',
                        help='mutate files that have uncommitted changes (the copy '
                             'then holds the working-tree version)')
    parser.add_argument('--skip-baseline', action='store_true',
                        help='do not check that the unmutated copy passes first')
    parser.add_argument('--keep', action='store_true', help='keep the temporary copy')
    parser.add_argument('--log-dir', help='write each pytest log here')
    return parser.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM cleans up like Ctrl-C (restores the copy's source, removes the copy)
    signal.signal(signal.SIGTERM, _interrupt)
    mutants = MUTANTS
    if args.only:
        unknown = sorted(set(args.only) - {m['name'] for m in MUTANTS})
        if unknown:
            print(f'error: --only: unknown mutants {unknown}; see --list', file=sys.stderr)
            return 2
        mutants = [m for m in MUTANTS if m['name'] in args.only]
    if args.list:
        for m in mutants:
            print(f"{m['name']:<28} {m['file']}\n    {m['why']}\n    tests: "
                  f"{' '.join(m['tests'])}")
        return 0

    files = sorted({m['file'] for m in mutants})
    dirty = dirty_files(files)
    if dirty and not args.allow_dirty:
        print(f'error: these files have uncommitted changes: {dirty}. Commit them, or '
              'pass --allow-dirty to mutate the working-tree version.', file=sys.stderr)
        return 2

    tree = tempfile.mkdtemp(prefix='ghostnetv2-mutants-')
    results = []
    start = time.monotonic()
    try:
        copy_tree(tree)
        check_mutants(mutants, tree)
        check_import_location(tree, args.python)
        print(f'{len(mutants)} mutants, working on a copy in {tree}', flush=True)
        if not args.skip_baseline:
            selection = []
            for m in mutants:
                selection += [t for t in m['tests'] if t not in selection]
            passed, first, seconds, log = run_pytest(tree, args.python, selection,
                                                     args.timeout, stop_first=False,
                                                     whole_limit=False)
            if args.log_dir:
                os.makedirs(args.log_dir, exist_ok=True)
                with open(osp.join(args.log_dir, 'baseline.log'), 'w') as f:
                    f.write(log)
            if not passed:
                print(log[-5000:], file=sys.stderr)
                raise SetupError(f'the unmutated code fails its own selection ({first}); '
                                 'no mutant result would mean anything')
            print(f'baseline: the selection passes on the unmutated code ({seconds:.0f} s)',
                  flush=True)
        for i, mutant in enumerate(mutants, 1):
            path, original = apply(tree, mutant)
            try:
                passed, first, seconds, log = run_pytest(tree, args.python,
                                                         mutant['tests'], args.timeout)
            finally:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(original)
            if args.log_dir:
                os.makedirs(args.log_dir, exist_ok=True)
                with open(osp.join(args.log_dir, f"{mutant['name']}.log"), 'w') as f:
                    f.write(log)
            result = dict(name=mutant['name'], seconds=seconds,
                          result='SURVIVED' if passed else 'killed',
                          note=mutant['why'] if passed else first)
            results.append(result)
            print(f"[{i}/{len(mutants)}] {mutant['name']}: {result['result']} "
                  f"({seconds:.0f} s) {result['note']}", flush=True)
    except SetupError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\ninterrupted: the source of the copy was restored; nothing in the '
              'working tree was changed', file=sys.stderr)
        if results:
            print_table(results)
        return 130
    finally:
        if args.keep:
            print(f'kept the copy in {tree}')
        else:
            shutil.rmtree(tree, ignore_errors=True)

    print_table(results)
    survived = [r['name'] for r in results if r['result'] == 'SURVIVED']
    total = time.monotonic() - start
    print(f'\n{len(results) - len(survived)} killed, {len(survived)} survived, '
          f'{total / 60:.1f} min in all')
    if survived:
        print(f'survivors (a test is missing): {", ".join(survived)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
