#!/usr/bin/env bash
# The browser of the browser tests (tests/browser/): Debian's `chromium`, driven by Playwright for Python (the
# `playwright` package of the dev group). Playwright's own browser download is never used.
#
#   bash scripts/browser.sh         install chromium with apt-get when it is missing, then print its path
#
# scripts/test.sh runs it before the tests (so a fresh machine gets the browser too); tests/browser/conftest.py
# launches the binary it prints (or $LQ_CHROMIUM) with the flags this machine needs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LQ_LOG_TAG=browser
# shellcheck source=scripts/_lib.sh
source "$ROOT/scripts/_lib.sh"

lq_ensure_chromium
command -v chromium
