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
# need COMMAND PACKAGE WHY: install the Debian package when the command is missing, or fail.
need() {
  command -v "$1" >/dev/null && return
  echo "==> installing $2 (apt-get) for $3"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2"; } >/dev/null \
    || { echo "error: could not install $2; run: apt-get install -y $2" >&2; exit 1; }
}
# The dashboard tests drive Debian's chromium headless (never a browser download); the
# benchmark suite's test loads servers with wrk.
need chromium chromium "the dashboard tests"
need wrk wrk "the benchmark suite's test"
echo "==> running the tests"
exec .venv/bin/python -m pytest "$@"
