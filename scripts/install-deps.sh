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
  doxygen     # the API reference from include/fiberjob (docs/Doxyfile), built by scripts/test.sh
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
# Another apt or dpkg (unattended-upgrades, a second install) may hold the package locks: wait
# for them, up to 10 minutes, instead of failing at once. apt-get waits on the dpkg frontend
# lock by itself with DPkg::Lock::Timeout, but says nothing while it does, and `apt-get update`
# takes the lists lock, which that option does not cover: so look first and say why we wait.
lock_timeout_s=600
locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock)
waited_s=0
while command -v fuser >/dev/null 2>&1 && "${sudo_cmd[@]}" fuser "${locks[@]}" >/dev/null 2>&1; do
  if (( waited_s >= lock_timeout_s )); then
    echo "install-deps: another apt/dpkg still holds its lock after ${lock_timeout_s} s;" \
         "let it finish (or stop it), then run this script again" >&2
    exit 1
  fi
  if (( waited_s % 30 == 0 )); then
    echo "install-deps: another apt/dpkg holds its lock; waiting (${waited_s} s of" \
         "${lock_timeout_s} s)"
  fi
  sleep 5
  waited_s=$(( waited_s + 5 ))
done
apt_options=(-o "DPkg::Lock::Timeout=$(( lock_timeout_s - waited_s ))")
"${sudo_cmd[@]}" apt-get "${apt_options[@]}" update -qq
"${sudo_cmd[@]}" apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${missing[@]}"
