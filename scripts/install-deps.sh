#!/usr/bin/env bash
# Installs the Debian packages fiberjob needs, only those that are missing.
# Idempotent: a second run installs nothing. Uses sudo when not root.
#
#   scripts/install-deps.sh          # build + test dependencies
#   scripts/install-deps.sh --bench  # also what only scripts/bench.sh, scripts/soak.sh and
#                                    # profiling need
set -euo pipefail

packages=(
  build-essential cmake ninja-build g++ clang clang-format libclang-rt-dev git
  libboost-context-dev libconcurrentqueue-dev doctest-dev libfmt-dev libasio-dev
  relacy-dev  # header-only Relacy model checker: tests/model (docs/model_checking.md)
  # The benchmark peers: the release presets build fiberjob_bench for its smoke test.
  libtbb-dev libboost-fiber-dev
)
if [[ "${1:-}" == "--bench" ]]; then
  # gnuplot-nox: the charts of scripts/bench.sh and scripts/soak.sh; linux-perf: profiling the
  # game frame (docs/benchmarks.md, "9. Game frame").
  packages+=(gnuplot-nox linux-perf)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
