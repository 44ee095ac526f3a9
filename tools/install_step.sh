#!/usr/bin/env bash
# One step of `make install`: prints what it does and how long it took, keeps
# the full output in a log, and on failure names the step, shows the end of
# the log and how to retry.
#   usage: tools/install_step.sh LOG_DIR "N/M what" "retry hint" command [args...]
set -uo pipefail
log_dir=$1 label=$2 hint=$3
shift 3
mkdir -p "$log_dir"
log="$log_dir/$(echo "$label" | tr -c 'A-Za-z0-9' '_' | sed 's/__*/_/g').log"
start=$(date +%s)
echo "[install $label] started (log: $log)"
"$@" >"$log" 2>&1 &
pid=$!
# Long steps (the mmcv compile) print a line a minute so the wait is visible.
while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 60); do
        sleep 1
        kill -0 "$pid" 2>/dev/null || break
    done
    kill -0 "$pid" 2>/dev/null && echo "[install $label] still running, $(( $(date +%s) - start ))s"
done
wait "$pid"
rc=$?
elapsed=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ]; then
    echo "[install $label] FAILED after ${elapsed}s (exit $rc). Last lines of $log:" >&2
    tail -n 25 "$log" >&2
    echo "[install $label] to retry: $hint" >&2
    exit "$rc"
fi
echo "[install $label] done in ${elapsed}s"
