#!/usr/bin/env bash
# Run the example app (examples/app.py) on a fresh machine: `bash scripts/example.sh`
#
# Installs uv if missing (python3 -m pip install uv), syncs the workspace from the lock, and serves the app with
# uvicorn on http://127.0.0.1:8000 (HOST / PORT override it). The queue lives in memory unless
# LITESTAR_QUEUES_BACKEND says otherwise, e.g.  LITESTAR_QUEUES_BACKEND=sqlite:///jobs.db bash scripts/example.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LQ_LOG_TAG=example
# shellcheck source=scripts/_lib.sh
source "$ROOT/scripts/_lib.sh"
cd "$ROOT"

lq_ensure_uv
uv sync --all-packages --locked

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
lq_log "queue backend: ${LITESTAR_QUEUES_BACKEND:-memory}"
lq_log "open http://$HOST:$PORT in a browser (Ctrl+C stops the server)"
exec uv run --all-packages --locked uvicorn examples.app:app --host "$HOST" --port "$PORT"
