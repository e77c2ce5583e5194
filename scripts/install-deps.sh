#!/usr/bin/env bash
# Installs the Debian packages fiberjob needs, only those that are missing.
# Idempotent: a second run installs nothing. Uses sudo when not root.
#
#   scripts/install-deps.sh            # build + test dependencies
#   scripts/install-deps.sh --bench    # also what only scripts/bench.sh, scripts/soak.sh,
#                                      # scripts/plot-trace.sh, scripts/count-instructions.sh
#                                      # and profiling need
#   scripts/install-deps.sh --aarch64  # also the aarch64 cross build and qemu-user run of
#                                      # scripts/test-aarch64.sh (adds the dpkg architecture arm64)
# The options combine.
set -euo pipefail

packages=(
  build-essential cmake ninja-build g++ clang clang-format libclang-rt-dev git
  libboost-context-dev libconcurrentqueue-dev doctest-dev libfmt-dev libasio-dev
  gdb         # the debugger test runs scripts/gdb/fiberjob.py (docs/debugging.md)
  relacy-dev  # header-only Relacy model checker: tests/model (docs/model_checking.md)
  doxygen     # the API reference from include/fiberjob (docs/Doxyfile), built by scripts/test.sh
  # The benchmark peers: the release presets build fiberjob_bench for its smoke test.
  libtbb-dev libboost-fiber-dev
)
aarch64=0
for arg in "$@"; do
  case "${arg}" in
    --bench)
      # gnuplot-nox: the charts of scripts/bench.sh and scripts/soak.sh; linux-perf: profiling
      # the game frame (docs/benchmarks.md, "9. Game frame"); python3-matplotlib: the trace
      # pictures of scripts/plot-trace.sh (docs/game_frame.md, docs/debugging.md); valgrind:
      # the instruction counts of scripts/count-instructions.sh (callgrind), the measure that
      # does not depend on the machine's load.
      packages+=(gnuplot-nox linux-perf python3-matplotlib valgrind)
      ;;
    --aarch64)
      # The cross compiler (with its own arm64 C and C++ runtime in /usr/aarch64-linux-gnu),
      # qemu-aarch64 to run the tests, and the compiled libraries the build links, as multiarch
      # arm64 packages. The header-only ones (concurrentqueue, doctest, asio, relacy) are
      # architecture-independent: the host's copies above serve the cross build too.
      aarch64=1
      packages+=(g++-aarch64-linux-gnu qemu-user libboost-context-dev:arm64 libfmt-dev:arm64)
      ;;
    *)
      echo "install-deps: unknown option '${arg}' (use --bench and/or --aarch64)" >&2
      exit 2
      ;;
  esac
done

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
if [[ ${aarch64} -eq 1 ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-deps: adding the dpkg architecture arm64 (multiarch libraries for the cross build)"
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
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
# --no-remove: an arm64 library whose version differs from the installed amd64 one (Multi-Arch:
# same) must fail the install, not make apt remove the amd64 package.
"${sudo_cmd[@]}" apt-get "${apt_options[@]}" install -y -qq --no-install-recommends --no-remove \
  "${missing[@]}"
