#!/usr/bin/env bash
# Builds and runs the benchmark suite: fiberjob against oneTBB, Boost.Fiber, the raw
# Boost.Context switch and std::thread, side by side in one process (bench/, docs/benchmarks.md).
# Installs missing Debian packages first (scripts/install-deps.sh --bench), builds in build/bench
# (Release, g++, -Werror), runs the full suite, writes bench/results/latest.{json,md,dat}, prints
# the table and renders docs/images/benchmarks.png with gnuplot.
# Usage: scripts/bench.sh [fiberjob_bench options, e.g. --reps 9 or --only fib,tbb]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench

build=build/bench
echo "=== configure and build ${build} (Release, g++)" >&2
cmake -S . -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
  -DFIBERJOB_BUILD_BENCH=ON -DFIBERJOB_WERROR=ON \
  -DFIBERJOB_BUILD_TESTS=OFF -DFIBERJOB_BUILD_SAMPLES=OFF >/dev/null
cmake --build "${build}" -j "$(nproc)" >&2

revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD -- include src 2>/dev/null; then
  revision+=" + uncommitted changes in include/ or src/"
fi

mkdir -p bench/results docs/images
echo "=== run ${revision} (progress on stderr; the table follows)" >&2
"${build}/bench/fiberjob_bench" --json bench/results/latest.json \
  --plot-data bench/results/latest.dat --revision "${revision}" "$@" |
  tee bench/results/latest.md

subtitle="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
gnuplot -e "infile='bench/results/latest.dat'; outfile='docs/images/benchmarks.png'; subtitle='${subtitle}'" \
  bench/plot.gp
echo "=== wrote bench/results/latest.json, bench/results/latest.md, docs/images/benchmarks.png" >&2
