#!/usr/bin/env bash
# Runs one of the tools in this folder under PyTorch's torchrun, one process per GPU,
# with --launcher pytorch. dist_train.sh and dist_test.sh are its two common uses.
#   bash tools/dist_run.sh GPUS TOOL [the tool's arguments]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each.
# PYTHON selects the interpreter (default: python). Without CUDA the processes use
# the gloo backend on CPU (GPUS = number of processes).
set -euo pipefail
GPUS=$1
TOOL=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/$TOOL" "${@:3}" --launcher pytorch
