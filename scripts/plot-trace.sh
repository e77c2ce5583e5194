#!/usr/bin/env bash
# Renders a window of a trace written by game_frame --trace as a PNG (for docs/).
# Needs Debian's python3-matplotlib (scripts/install-deps.sh --bench installs it). Usage:
#   scripts/plot-trace.sh TRACE.json OUT.png [--start-ms T] [--window-ms W]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  scripts/install-deps.sh --bench
fi
exec /usr/bin/python3 scripts/plot_trace.py "$@"
