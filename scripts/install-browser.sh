#!/usr/bin/env bash
# What the browser tests (tests/test_review_browser.py) need: Debian's chromium and the
# playwright Python package in .venv. `playwright install` downloads its own browser builds,
# which cannot be fetched here, so Playwright drives /usr/bin/chromium instead.
#
#   bash scripts/install-browser.sh            # idempotent: installs only what is missing
#
# VENV names the virtual environment (default .venv at the repository root).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
log() { echo "install-browser.sh: $*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium fonts-liberation >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "no virtual environment at $VENV (run scripts/install.sh first)"
  exit 1
fi
if ! "$VENV/bin/python" -c "import playwright.sync_api" 2>/dev/null; then
  log "installing playwright into $VENV"
  "$VENV/bin/python" -m pip install -q "playwright==1.65.2"
fi
log "ready: /usr/bin/chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), playwright $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("playwright"))')"
