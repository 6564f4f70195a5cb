# shellcheck shell=bash
# Helpers shared by scripts/test.sh, scripts/servers.sh, scripts/typecheck.sh and .ci/run. Source it, don't run it.

lq_log() { printf '[%s] %s\n' "${LQ_LOG_TAG:-lq}" "$*" >&2; }
lq_die() { printf '[%s] ERROR: %s\n' "${LQ_LOG_TAG:-lq}" "$*" >&2; exit 1; }

# Make `uv` callable. On a fresh machine it is installed with the machine's own python3 (`pip install uv`),
# because PyPI is the one place we can rely on reaching.
lq_ensure_uv() {
    if command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then
        return 0
    fi
    local py
    py=$(command -v python3 || command -v python) || lq_die "uv is missing and there is no python3 to install it with"
    lq_log "uv not found: installing it with $py -m pip install uv"
    export PIP_ROOT_USER_ACTION=ignore
    "$py" -m pip install --quiet --disable-pip-version-check uv \
        || "$py" -m pip install --quiet --disable-pip-version-check --user uv \
        || "$py" -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv \
        || lq_die "could not install uv with pip"
    local uv_bin
    uv_bin=$("$py" -c 'import uv; print(uv.find_uv_bin())') || lq_die "uv was installed but its binary cannot be found"
    PATH="$(dirname "$uv_bin"):$PATH"
    export PATH
    hash -r
    lq_log "using $(uv --version) from $uv_bin"
}
