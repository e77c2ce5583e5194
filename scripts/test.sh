#!/usr/bin/env bash
# Builds and runs the whole test suite: unit + stress tests, samples, the install/consumer test
# and the benchmark smoke run (bench_smoke) in release (g++ and clang++), then again without the
# benchmarks under ASan+UBSan and under TSan, then cross-built for aarch64 with the tests under
# qemu-user (scripts/test-aarch64.sh says what runs there).
# Installs missing Debian packages first. Usage: scripts/test.sh [preset ...] (`aarch64` runs
# scripts/test-aarch64.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

presets=("$@")
if [[ ${#presets[@]} -eq 0 ]]; then
  presets=(release release-clang asan tsan aarch64)
fi
jobs=$(nproc)

echo "=== clang-format check"
clang-format --dry-run --Werror $(git ls-files '*.cpp' '*.hpp')
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure, build, test"
  start=$(date +%s)
  if [[ "${preset}" == aarch64 ]]; then
    scripts/test-aarch64.sh
  else
    cmake --preset "${preset}" >/dev/null
    cmake --build --preset "${preset}" -j "${jobs}"
    ctest --preset "${preset}"
  fi
  echo "=== ${preset}: passed in $(( $(date +%s) - start )) s"
done
echo "=== all presets passed: ${presets[*]}"
