#!/usr/bin/env bash
# The test command: `bash scripts/test.sh [pytest args...]`
#
# Does all of the set-up on a fresh machine: installs uv if missing, syncs the whole workspace from the lock,
# installs Debian's chromium for the browser tests if missing (scripts/browser.sh), starts the real servers
# (scripts/servers.sh), exports their addresses, runs pytest over the repository (packages/*/tests, tests/, docs/)
# and stops the servers it started when it exits.
#
#   bash scripts/test.sh                                   everything
#   bash scripts/test.sh packages/litestar-queues-core/tests -k cron -x
#   LQ_SERVERS="redis postgres" bash scripts/test.sh ...   start only these servers ("none" for no servers)
#
# Paths among the arguments replace the default test paths; every argument goes to pytest unchanged.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LQ_LOG_TAG=test
# shellcheck source=scripts/_lib.sh
source "$ROOT/scripts/_lib.sh"
cd "$ROOT"

lq_ensure_uv
uv sync --all-packages --locked
lq_ensure_chromium # the browser tests' Chromium (scripts/browser.sh); Playwright itself is in the dev group

SERVERS=${LQ_SERVERS:-redis valkey postgres pgbouncer mariadb redis_cluster valkey_cluster}
if [[ $SERVERS != none ]]; then
    # Servers this run starts are ephemeral: released (and stopped, unless another session still uses them) on exit.
    trap 'bash "$ROOT/scripts/servers.sh" release $$ || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # shellcheck disable=SC2086
    bash "$ROOT/scripts/servers.sh" up --session $$ $SERVERS
    # shellcheck source=/dev/null
    source "$(bash "$ROOT/scripts/servers.sh" envfile)"
fi

has_path_arg=false
for arg in "$@"; do
    [[ $arg != -* && -e ${arg%%::*} ]] && has_path_arg=true
done
paths=()
if ! $has_path_arg; then
    for candidate in packages/*/tests tests docs; do
        [[ -d $candidate ]] && paths+=("$candidate")
    done
fi

set +e
uv run --no-sync pytest "${paths[@]}" "$@"
rc=$?
set -e
if ((rc == 5 && $# == 0)); then
    # The whole repository with nothing to collect is an early-project state, not a failure. With a selection
    # (`-k`, paths) exit code 5 stays: the selection matched nothing.
    lq_log "WARNING: pytest collected no tests in the whole repository (exit code 5); treating that as success"
    rc=0
fi
exit "$rc"
