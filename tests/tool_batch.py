"""Run many command lines of the tools in ONE Python process (tests only).

    python tests/tool_batch.py CASES.json RESULTS.json

CASES.json: a list of {"id", "tool" (path of a tools/ script), "argv"}. Each tool's
``main(argv)`` runs as from its command line (the shared error path of
``ghostnetv2_mm.utils.cli`` included) with stdout and stderr captured; RESULTS.json
gets {"id": {"status", "stdout", "stderr"}}. One interpreter start and one import of
torch/mmdet for a whole table of cases keeps tests/test_tool_safety.py fast.
"""
import contextlib
import importlib.util
import io
import json
import os
import sys

import torch


def load(path, cache={}):
    if path not in cache:
        spec = importlib.util.spec_from_file_location(
            f'_tool_{len(cache)}_{os.path.splitext(os.path.basename(path))[0]}', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cache[path] = module
    return cache[path]


def run(case):
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = load(case['tool']).main(case['argv'])
            if not isinstance(status, int):  # the rows of a benchmark: the script exits 0
                status = 0
        except SystemExit as exc:
            status = exc.code
        if isinstance(status, str):  # as the interpreter does for SystemExit('...')
            print(status, file=sys.stderr)
            status = 1
    torch.set_num_threads(threads)
    return dict(status=status or 0, stdout=out.getvalue(), stderr=err.getvalue())


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = {case['id']: run(case) for case in cases}
    with open(sys.argv[2], 'w') as f:
        json.dump(results, f)


if __name__ == '__main__':
    main()
