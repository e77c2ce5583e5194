#!/usr/bin/env bash
# Cross-builds fiberjob for 64-bit ARM Linux (aarch64) with Debian's g++-aarch64-linux-gnu and
# runs its tests under user-mode qemu (qemu-aarch64; no binfmt_misc registration, no daemon),
# through the CMake preset `aarch64` (cmake/toolchains/aarch64-linux-gnu.cmake).
#
# What runs: every test the preset builds, at the same sizes as the native presets —
#   unit      all unit suites, the death tests included (their child processes start under qemu
#             too), the -fPIC -O2 thread_local hazard test, allocation counting, Asio, A*;
#   stress    the stress suites;
#   sample    the samples, the game frame with --check on every map;
#   install   cmake --install + find_package from a consumer built with the same toolchain;
#   litmus    the store-buffering litmus test (tests/litmus/store_buffering.cpp): prints how
#             often qemu lets a seq_cst load pass a seq_cst store (an emulator artefact, not a
#             failure), and fails only if the fenced form the deque relies on shows it.
# What does not:
#   model     the Relacy models are not built for a cross target: Relacy checks the memory
#             orders against its own model of the C++ memory model, whatever CPU it runs on, so
#             the native run already gives the verdict (tests/CMakeLists.txt);
#   bench     the benchmark smoke run is not built (FIBERJOB_BUILD_BENCH off): its peers (oneTBB,
#             Boost.Fiber) are not installed for arm64, and timings under an emulator mean
#             nothing.
# qemu on an x86-64 host executes the guest's loads and stores with x86's stronger ordering: a
# pass shows that the aarch64 build (its instructions, page and cache-line sizes, stack switch,
# signals) works, not that the memory orders hold on ARM hardware (docs/reliability.md).
#
# --stress: only the library, the stress suites (the work-stealing deque, lost wake-ups,
# counter lifetimes, random job trees, ...) and the litmus test, the part that fits the default
# `scripts/test.sh`
# (docs/reliability.md gives the figures).
#
# Installs missing Debian packages first (scripts/install-deps.sh --aarch64: adds the dpkg
# architecture arm64). Usage: scripts/test-aarch64.sh [--stress]
set -euo pipefail
cd "$(dirname "$0")/.."
build_targets=()
ctest_args=()
if [[ "${1:-}" == --stress ]]; then
  build_targets=(--target fiberjob_stress_tests fiberjob_store_buffering)
  ctest_args=(-L 'stress|litmus')
elif [[ $# -gt 0 ]]; then
  echo "usage: scripts/test-aarch64.sh [--stress]" >&2
  exit 2
fi
scripts/install-deps.sh --aarch64

jobs=$(nproc)
start=$(date +%s)
echo "=== aarch64: configure, cross-build with aarch64-linux-gnu-g++ (-j ${jobs}) ${build_targets[*]}"
cmake --preset aarch64 >/dev/null
cmake --build --preset aarch64 -j "${jobs}" "${build_targets[@]}"
built=$(date +%s)
echo "=== aarch64: tests under $(command -v qemu-aarch64) ${ctest_args[*]}"
ctest --preset aarch64 "${ctest_args[@]}"
done_at=$(date +%s)
echo "=== aarch64: build $((built - start)) s, tests under qemu $((done_at - built)) s"
