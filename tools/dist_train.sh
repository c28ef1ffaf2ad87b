#!/usr/bin/env bash
# Distributed training with PyTorch's torchrun (several machines, interpreter, CPU:
# see dist_run.sh).
#   bash tools/dist_train.sh CONFIG GPUS [train.py options]
set -euo pipefail
exec bash "$(dirname "$0")/dist_run.sh" "$2" train.py "$1" "${@:3}"
