#!/usr/bin/env bash
# Training on a Slurm cluster (job shape and interpreter: see slurm_run.sh).
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
