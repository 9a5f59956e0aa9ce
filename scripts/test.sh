#!/usr/bin/env bash
# Installs Lamina with its test dependencies into .venv and runs the whole test suite (pytest).
# Works on a fresh Debian-like machine with Python 3.11+. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> installing lamina[test]"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# The dashboard tests drive Debian's chromium headless (never a browser download).
if ! command -v chromium >/dev/null; then
  echo "==> installing chromium (apt-get) for the dashboard tests"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >/dev/null \
    || { echo "error: could not install chromium; run: apt-get install -y chromium" >&2; exit 1; }
fi
# The benchmark suite's test loads servers with wrk (Debian package `wrk`).
if ! command -v wrk >/dev/null; then
  echo "==> installing wrk (apt-get) for the benchmark suite's test"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; } >/dev/null \
    || { echo "error: could not install wrk; run: apt-get install -y wrk" >&2; exit 1; }
fi
echo "==> running the tests"
exec .venv/bin/python -m pytest "$@"
