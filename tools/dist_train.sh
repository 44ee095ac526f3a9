#!/usr/bin/env bash
# usage: [MAX_RESTARTS=N] tools/dist_train.sh CONFIG NPROC [train.py options]
# One process per GPU (nccl); without a GPU, NPROC CPU processes (gloo).
# The python that runs: $PYTHON, else the repo's .venv, else python3.
# Several nodes: NNODES, NODE_RANK, MASTER_ADDR (node 0's address) and PORT.
# MAX_RESTARTS (default 0): when a process dies, torchrun restarts the whole
# group, up to N times, and tools/train.py resumes from the latest complete
# checkpoint in the work dir (from the beginning if none is saved yet).
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
MAX_RESTARTS=${MAX_RESTARTS:-0}
if ! [[ "$MAX_RESTARTS" =~ ^[0-9]+$ ]]; then
    echo "dist_train.sh: MAX_RESTARTS must be a whole number, not '$MAX_RESTARTS'" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
if (( MAX_RESTARTS > 0 )); then
    # Each attempt needs a store of its own. The static rendezvous below keeps one
    # store for every attempt (so does the c10d one, sharing its store): a restarted
    # process can read the address its dead predecessor left there and wait for it
    # forever (pytorch/pytorch#135712). The c10d rendezvous without the shared store
    # gives every attempt a new one. NODE_RANK is not used: the rendezvous numbers
    # the nodes.
    export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
    LAUNCH=(--rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:${PORT:-29500}"
            --rdzv_id="${RDZV_ID:-vrm_det}" --max_restarts="$MAX_RESTARTS")
else
    LAUNCH=(--node_rank="${NODE_RANK:-0}" --master_addr="$MASTER_ADDR"
            --master_port="${PORT:-29500}")
fi
PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run --nnodes="${NNODES:-1}" "${LAUNCH[@]}" \
    --nproc_per_node="$NPROC" "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
