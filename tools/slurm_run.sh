#!/usr/bin/env bash
# Runs one of the tools in this folder on a Slurm cluster with srun, one task per GPU,
# with --launcher slurm. slurm_train.sh and slurm_test.sh are its two common uses.
#   GPUS=16 bash tools/slurm_run.sh PARTITION JOB_NAME TOOL [the tool's arguments]
# GPUS (default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5) and SRUN_ARGS shape the job;
# PYTHON selects the interpreter (default: python).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 $SRUN_ARGS \
    "${PYTHON:-python}" -u "$ROOT/tools/$TOOL" "${@:4}" --launcher slurm
