#!/usr/bin/env bash
# Builds fiberjob in release and runs the main sample. Installs missing Debian packages first.
# Extra arguments go to the sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target quickstart
exec build/release/samples/quickstart "$@"
