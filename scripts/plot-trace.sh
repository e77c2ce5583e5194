#!/usr/bin/env bash
# Renders a window of a trace written by game_frame --trace as a PNG (for docs/).
# Installs Debian's python3-matplotlib if missing. Usage:
#   scripts/plot-trace.sh TRACE.json OUT.png [--start-ms T] [--window-ms W]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  sudo_cmd=()
  [[ "$(id -u)" -ne 0 ]] && sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq python3-matplotlib
fi
exec /usr/bin/python3 scripts/plot_trace.py "$@"
