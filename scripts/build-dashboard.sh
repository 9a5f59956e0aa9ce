#!/usr/bin/env bash
# Rebuilds the web dashboard from dashboard/ (Preact, htm, uPlot, bundled by esbuild) into
# src/lamina/dashboard/static/, which is committed: installing Lamina needs no Node.js, only
# changing the dashboard does. Needs Node.js 18+ and npm.
set -euo pipefail
cd "$(dirname "$0")/../dashboard"
command -v npm >/dev/null || { echo "error: npm not found; install Node.js 18+ to rebuild the dashboard" >&2; exit 1; }
npm ci --no-audit --no-fund
npm run build
