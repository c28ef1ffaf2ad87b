#!/usr/bin/env bash
# Testing on a Slurm cluster (job shape and interpreter: see slurm_run.sh).
#   GPUS=8 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
set -euo pipefail
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"
