#!/usr/bin/env bash
# Counts the instructions fiberjob spends per operation of a workload, with callgrind: runs
# build/<preset>/bench/fiberjob_instructions at two sizes and prints
#   (instructions at the large size - instructions at the small size)
#   / (operations at the large size - operations at the small size)
# so that start-up and the JobSystem's fixed costs cancel. Operations are jobs run (fib, fib_co,
# skynet_co, empty), yields (yield) or agent steps (waiters, waiters_stop). One worker thread (see
# bench/instructions.cpp). Independent of the machine's load, unlike wall-clock figures.
#
#   scripts/count-instructions.sh [--preset P] [WORKLOAD ...]   # default: every workload
# Needs valgrind (scripts/install-deps.sh --bench) and a build of the preset (default release)
# with the benchmarks (FIBERJOB_BUILD_BENCH, on in the release presets).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=release
if [[ "${1:-}" == --preset ]]; then
  preset=$2
  shift 2
fi
workloads=("$@")
if [[ ${#workloads[@]} -eq 0 ]]; then
  workloads=(fib fib_co skynet_co empty yield waiters waiters_stop)
fi
binary="build/${preset}/bench/fiberjob_instructions"
if [[ ! -x "${binary}" ]]; then
  echo "count-instructions: ${binary} is missing; build it first:" \
       "cmake --build --preset ${preset} --target fiberjob_instructions" >&2
  exit 1
fi
command -v valgrind >/dev/null || { echo "count-instructions: valgrind is missing;" \
  "run scripts/install-deps.sh --bench" >&2; exit 1; }

# The two sizes of each workload: large enough that the difference is thousands of operations.
declare -A small=([fib]=16 [fib_co]=16 [skynet_co]=3 [empty]=2000 [yield]=2000 [waiters]=5
  [waiters_stop]=5)
declare -A large=([fib]=18 [fib_co]=18 [skynet_co]=4 [empty]=12000 [yield]=12000 [waiters]=15
  [waiters_stop]=15)
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT

# Prints "instructions operations" of one run.
measure() {
  local out="${tmp}/out" log="${tmp}/log"
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "${binary}" "$1" "$2" \
    >"${out}" 2>"${log}"
  local instr ops
  instr=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "${log}")
  ops=$(sed -n 's/^operations \([0-9]*\)$/\1/p' "${out}")
  echo "${instr} ${ops}"
}

revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "instructions per operation (callgrind, 1 worker), ${revision}, $(date -u '+%Y-%m-%d %H:%M UTC')"
for w in "${workloads[@]}"; do
  if [[ -z "${small[${w}]:-}" ]]; then
    echo "count-instructions: unknown workload '${w}' (${!small[*]})" >&2
    exit 2
  fi
  read -r i1 o1 < <(measure "${w}" "${small[${w}]}")
  read -r i2 o2 < <(measure "${w}" "${large[${w}]}")
  awk -v w="${w}" -v i1="${i1}" -v o1="${o1}" -v i2="${i2}" -v o2="${o2}" \
    'BEGIN { printf "%-10s %8.1f  (%d operations)\n", w, (i2 - i1) / (o2 - o1), o2 - o1 }'
done
