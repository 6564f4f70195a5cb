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

is_root() { [[ $(id -u) == 0 ]]; }

# Run a command with root rights (apt). sudo -n when we are not root; fail clearly when neither works.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        lq_die "need root to run: $* (install the packages yourself, or make sudo usable without a password)"
    fi
}

# lq_apt_install LOG PACKAGE...: install Debian packages in ONE apt-get call (its triggers run once), output to LOG.
lq_apt_install() {
    local log=$1 started=$SECONDS
    shift
    command -v apt-get >/dev/null 2>&1 || lq_die "missing $* and there is no apt-get: install them yourself"
    lq_log "installing $* with apt-get (log: $log)"
    # DPkg::Lock::Timeout: other sessions on a shared machine may be running apt at the same moment.
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq \
        && as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends "$@"; } >"$log" 2>&1; then
        tail -40 "$log" >&2
        lq_die "apt-get install $* failed"
    fi
    lq_log "installed $* in $((SECONDS - started)) s"
}

# Make Debian's chromium available for the browser tests: installed with apt-get when it is missing. Where it cannot
# be (no apt-get, no root), it only warns: the browser tests then skip, except in CI where they fail.
lq_ensure_chromium() {
    if [[ -n ${LQ_CHROMIUM:-} && -x $LQ_CHROMIUM ]] || command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! { is_root || sudo -n true 2>/dev/null; }; then
        lq_log "WARNING: chromium is missing and cannot be installed here (no apt-get or no root): the browser tests" \
            "will not run (install Debian's chromium, or set LQ_CHROMIUM to a Chromium binary)"
        return 0
    fi
    lq_apt_install "${TMPDIR:-/tmp}/litestar-queues-chromium-apt.log" chromium
}
