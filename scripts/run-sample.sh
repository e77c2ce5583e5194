#!/usr/bin/env bash
# Builds fiberjob in release and runs the main sample, the game frame on den520d.map (2,000
# agents, 300 frames). Installs missing Debian packages first. Extra arguments go to the
# sample (try --help, --check, --trace frame.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target game_frame
exec build/release/samples/game_frame "$@"
