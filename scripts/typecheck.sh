#!/usr/bin/env bash
# mypy (strict, the root pyproject's [tool.mypy]) over every package's src/, and proof that it checked all of it.
#
# All distributions share the `litestar_queues` namespace with PEP 420 folders (backends/, execution/), so mypy must
# know every src/ dir as a package base. Otherwise `mypy packages/*/src` names a leaf after its own folder
# ("redis" instead of "litestar_queues.backends.redis") and fails with "Source file found twice under different
# module names" as soon as one leaf imports another. Extra arguments go to mypy.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LQ_LOG_TAG=typecheck
# shellcheck source=scripts/_lib.sh
source "$ROOT/scripts/_lib.sh"
cd "$ROOT"
lq_ensure_uv

src_dirs=(packages/*/src)
MYPYPATH=$(printf '%s:' "${src_dirs[@]/#/$ROOT/}")
export MYPYPATH="${MYPYPATH%:}"
expected=$(find "${src_dirs[@]}" -name '*.py' -o -name '*.pyi' | wc -l | tr -d ' ')

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
uv run --no-sync mypy "$@" "${src_dirs[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
checked=$(grep -oE '(in|checked) [0-9]+ source files?' "$out" | grep -oE '[0-9]+' | tail -1 || true)
if [[ -z $checked && $rc != 0 ]]; then
    exit "$rc" # a blocking error: mypy said why above
fi
if [[ $checked != "$expected" ]]; then
    lq_die "mypy checked ${checked:-?} source files, but packages/*/src holds $expected: some leaf was not type-checked"
fi
exit "$rc"
