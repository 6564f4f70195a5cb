#!/usr/bin/env bash
# The long chaos run (docs/reliability.md): `bash scripts/chaos.sh [tests/chaos/harness.py args]`, or `make chaos`.
#
# Each backend (redis valkey postgres pgbouncer sqlite mariadb redis_cluster valkey_cluster by default) runs on a
# private server of its own (a cluster: 3 nodes; pgbouncer: a PgBouncer in front of a PostgreSQL): 10,000 jobs,
# three `litestar queues run` workers, a SIGKILL every 2-3 s with a replacement, one server restart; then the checks,
# one line per backend, and the results table (`--markdown FILE` writes it too). Exit status 1 if a check failed.
#
#   bash scripts/chaos.sh                              every backend, the long settings
#   bash scripts/chaos.sh postgres --jobs 2000         one backend, fewer jobs
#   bash scripts/chaos.sh --short                      the CI version (tests/chaos/test_chaos.py runs it)
#
# The shared test servers are only started (as by scripts/test.sh) for their binaries; none of them is touched.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LQ_LOG_TAG=chaos
# shellcheck source=scripts/_lib.sh
source "$ROOT/scripts/_lib.sh"
cd "$ROOT"

lq_ensure_uv
uv sync --all-packages --locked
trap 'bash "$ROOT/scripts/servers.sh" release $$ || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash "$ROOT/scripts/servers.sh" up --session $$
# shellcheck source=/dev/null
source "$(bash "$ROOT/scripts/servers.sh" envfile)"
uv run --no-sync python tests/chaos/harness.py "$@"
