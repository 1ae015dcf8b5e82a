#!/usr/bin/env bash
# Install what the browser tests (pytest -m browser, tests/ui/test_browser.py) need, without
# any browser download: Debian's Chromium from apt, and Playwright + pytest-playwright into a venv.
# Idempotent: does nothing that is already done.
#
#   bash .ci/browser_setup.sh [VENV]        # VENV defaults to .venv
#
# The tests launch /usr/bin/chromium (override with AMUI_CHROMIUM=/path/to/chromium).
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "browser_setup: no Python at $PY (create the venv first)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "browser_setup: need root (or sudo) to apt-get install chromium" >&2; exit 1; fi
fi

if [ -x /usr/bin/chromium ]; then
    echo "browser_setup: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
else
    export DEBIAN_FRONTEND=noninteractive
    APT="$SUDO apt-get -y -q -o DPkg::Lock::Timeout=300"
    if ! apt-cache show chromium >/dev/null 2>&1; then
        $SUDO apt-get update -q
    fi
    if ! $APT install chromium; then
        $SUDO apt-get update -q
        $APT install chromium
    fi
fi

if "$PY" -c "import playwright, pytest_playwright" >/dev/null 2>&1; then
    echo "browser_setup: playwright and pytest-playwright already in $VENV"
else
    "$PY" -m pip install -q "playwright>=1.40" "pytest-playwright>=0.4"
fi

# smoke test: Playwright drives the system Chromium headless (no 'playwright install')
"$PY" - <<'PYEOF'
from playwright.sync_api import sync_playwright

args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
    page = browser.new_page()
    page.set_content("<p id=x>ok</p>")
    assert page.text_content("#x") == "ok"
    print("browser_setup: chromium", browser.version, "works with playwright")
    browser.close()
PYEOF
