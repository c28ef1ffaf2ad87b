#!/usr/bin/env bash
# Distributed testing with PyTorch's torchrun (several machines, interpreter, CPU:
# see dist_run.sh).
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$3" test.py "$1" "$2" "${@:4}"
