#!/usr/bin/env bash
# Builds and runs the whole test suite: unit + stress tests, samples, the install/consumer test
# and the benchmark smoke run (bench_smoke) in release (g++ and clang++), then again without the
# benchmarks under ASan+UBSan and under TSan, and last cross-builds the library and the stress
# suites for aarch64 and runs them under qemu-user (`aarch64-stress`: scripts/test-aarch64.sh
# --stress). `scripts/test.sh aarch64` cross-builds and runs every aarch64 test instead
# (scripts/test-aarch64.sh says what runs there); the whole of it does not fit the default
# command's time budget (docs/reliability.md, "aarch64 under qemu-user", gives the figures).
# Also builds the API reference with doxygen (warnings are errors): build/api/html/index.html.
# Installs missing Debian packages first. Usage: scripts/test.sh [preset ...] (`aarch64` runs
# scripts/test-aarch64.sh, `aarch64-stress` scripts/test-aarch64.sh --stress)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "=== dependencies (scripts/install-deps.sh; installs only what is missing)"
scripts/install-deps.sh

presets=("$@")
if [[ ${#presets[@]} -eq 0 ]]; then
  presets=(release release-clang asan tsan aarch64-stress)
fi
jobs=$(nproc)

echo "=== clang-format check"
clang-format --dry-run --Werror $(git ls-files '*.cpp' '*.hpp')
echo "=== API reference: doxygen docs/Doxyfile (warnings are errors) -> build/api/html/index.html"
mkdir -p build/api  # doxygen creates only the last level of OUTPUT_DIRECTORY (a fresh clone has no build/)
doxygen docs/Doxyfile
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure"
  start=$(date +%s)
  if [[ "${preset}" == aarch64 ]]; then
    scripts/test-aarch64.sh
  elif [[ "${preset}" == aarch64-stress ]]; then
    scripts/test-aarch64.sh --stress
  else
    cmake --preset "${preset}" >/dev/null
    if [[ "${preset}" != asan && "${preset}" != tsan ]]; then
      # Ninja prints a step when it ends: say beforehand why the next minutes are quiet.
      echo "=== ${preset}: building the Relacy model checks (tests/model): each of the seven" \
           "files takes minutes to compile, with no output until it is done"
      cmake --build --preset "${preset}" -j "${jobs}" \
        --target fiberjob_counter_model fiberjob_deque_model fiberjob_primitives_model \
        fiberjob_timer_model fiberjob_affine_model fiberjob_blocking_model \
        fiberjob_class_model
    fi
    echo "=== ${preset}: building the library, tests, samples (and benchmarks in release presets)"
    cmake --build --preset "${preset}" -j "${jobs}"
    echo "=== ${preset}: running the tests (ctest; the stress tests take the longest)"
    if ! ctest --preset "${preset}"; then
      # A CI log keeps only its head and tail: repeat the first failure's own lines last.
      log="build/${preset}/Testing/Temporary/LastTest.log"
      pattern=': ERROR: |WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:|terminate called|^SUMMARY: '
      echo "=== ${preset}: FAILED; every failure line, then the first one in context (${log}):"
      grep -E "${pattern}" "${log}" | head -n 20 || true
      first=$(grep -n -m 1 -E "${pattern}" "${log}" | cut -d: -f1 || true)
      if [[ -n "${first}" ]]; then
        sed -n "$(( first > 20 ? first - 20 : 1 )),$(( first + 60 ))p" "${log}"
      fi
      exit 1
    fi
  fi
  echo "=== ${preset}: passed in $(( $(date +%s) - start )) s"
done
echo "=== all presets passed: ${presets[*]}"
