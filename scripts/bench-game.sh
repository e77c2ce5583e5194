#!/usr/bin/env bash
# Benchmark workload 9: the game-frame sample's frame time, p50 and p99, with
# 2 workers, with 1 worker and serial (--serial: the same frames on the main thread with no
# jobs; samples/game/world_serial.cpp). Runs the three alternately, --runs times each
# (default 5 runs of 600 frames; each run is a new process on den520d.map with 2,000 agents),
# checks that every run ends on the same snapshot checksum (the same work was done), prints a
# table of the medians and the speed-ups, and writes bench/results/game_frame.{md,json}.
# The frame times of a run are those of all its frames, as the sample's summary reports them.
# Target: 2 workers at least 1.8x faster than 1 worker at p50.
# Installs missing Debian packages first (scripts/install-deps.sh) and builds game_frame in
# Release with g++ in build/bench-game (FIBERJOB_BUILD_DIR to change it). The machine may be
# shared: the CPU time other processes used during the runs is recorded with the figures.
#
# Usage: scripts/bench-game.sh [--runs N] [--frames N] [-- game_frame options, e.g. --map ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/measure-env.sh

runs=5
frames=600
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "bench-game: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
if ! [[ "${runs}" =~ ^[1-9][0-9]*$ && "${frames}" =~ ^[1-9][0-9]*$ ]]; then
  echo "bench-game: --runs and --frames expect whole numbers >= 1" >&2
  exit 2
fi

scripts/install-deps.sh
build="${FIBERJOB_BUILD_DIR:-build/bench-game}"
build_game_frame "${build}"
sample="${build}/samples/game_frame"

revision="$(describe_revision)"
machine="$(describe_machine)"
names=("2 workers" "1 worker" "serial")
flags=("--workers 2" "--workers 1" "--serial")
declare -A p50 p99 cpu
log="$(mktemp)"
times="$(mktemp)"
trap 'rm -f "${log}" "${times}"' EXIT
checksum=""
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
busy_before="$(cpu_busy_seconds)"
steal_before="$(cpu_steal_seconds)"
own_total=0
wall_before="$(date +%s.%N)"
TIMEFORMAT='%U %S'
for (( run = 1; run <= runs; ++run )); do
  for i in 0 1 2; do
    # shellcheck disable=SC2086  # flags[i] is two words on purpose
    { time "${sample}" --frames "${frames}" ${flags[i]} "$@" >"${log}" 2>&1; } 2>"${times}" ||
      { cat "${log}" >&2; exit 1; }
    read -r user_s sys_s <"${times}"
    read -r run_p50 run_p99 < <(awk '/frame time ms/ { print $5, $9 }' "${log}")
    run_checksum="$(awk '/snapshot checksum/ { print $3 }' "${log}")"
    if [[ -z "${checksum}" ]]; then checksum="${run_checksum}"; fi
    if [[ "${run_checksum}" != "${checksum}" ]]; then
      echo "bench-game: ${names[i]} run ${run} ended on checksum ${run_checksum}," \
        "not ${checksum}: the builds did different work" >&2
      exit 1
    fi
    run_cpu="$(awk -v u="${user_s}" -v s="${sys_s}" 'BEGIN { printf "%.2f", u + s }')"
    own_total="$(awk -v a="${own_total}" -v b="${run_cpu}" 'BEGIN { printf "%.2f", a + b }')"
    p50[$i]+="${run_p50} "
    p99[$i]+="${run_p99} "
    cpu[$i]+="${run_cpu} "
    echo "run ${run}  ${names[i]}: p50 ${run_p50} ms  p99 ${run_p99} ms  (process CPU ${run_cpu} s)" >&2
  done
done
wall_s="$(awk -v a="${wall_before}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
others_s="$(cpu_seconds_minus "$(cpu_busy_seconds)" "${busy_before}" "${own_total}")"
steal_s="$(cpu_seconds_minus "$(cpu_steal_seconds)" "${steal_before}")"

# median / min / max of a space-separated list.
stat() {
  tr ' ' '\n' <<<"$1" | grep . | sort -g |
    awk -v what="$2" '{ v[NR] = $1 }
      END { if (what == "min") print v[1]; else if (what == "max") print v[NR];
            else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
for i in 0 1 2; do
  med50[i]="$(stat "${p50[$i]}" median)"
  med99[i]="$(stat "${p99[$i]}" median)"
done
speedup="$(ratio "${med50[1]}" "${med50[0]}")"
status="$(awk -v s="${speedup}" 'BEGIN { print (s >= 1.8 ? "met" : "missed") }')"

args="--frames ${frames}${*:+ $*}"
{
  echo "## 9. Game frame: game_frame ${args} (${runs} runs each, alternating)"
  echo
  echo "${started}; fiberjob ${revision}; ${machine}; $(g++ -dumpfullversion | sed 's/^/g++ /')."
  echo "Load: other processes used ${others_s} CPU-s during the ${wall_s} s of runs;" \
    "hypervisor steal ${steal_s} s. Every run ended on snapshot checksum ${checksum}."
  echo
  echo "| build | frame p50 ms (median) | frame p99 ms (median) | p50 min–max | p99 min–max |" \
    "1 worker ÷ this, p50 | 1 worker ÷ this, p99 | process CPU s (median) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for i in 0 1 2; do
    echo "| ${names[i]} | ${med50[i]} | ${med99[i]} |" \
      "$(stat "${p50[$i]}" min)–$(stat "${p50[$i]}" max) |" \
      "$(stat "${p99[$i]}" min)–$(stat "${p99[$i]}" max) |" \
      "$(ratio "${med50[1]}" "${med50[i]}") | $(ratio "${med99[1]}" "${med99[i]}") |" \
      "$(stat "${cpu[$i]}" median) |"
  done
  echo
  echo "Target: 2 workers ≥ 1.8× faster than 1 worker at p50: ${speedup}× (**${status}**)."
  echo "Serial ÷ 2 workers at p50: $(ratio "${med50[2]}" "${med50[0]}") (below 1: serial faster)."
} | tee bench/results/game_frame.md

list() { tr ' ' '\n' <<<"$1" | grep . | paste -sd, -; }
{
  echo "{"
  echo "  \"workload\": \"game_frame\", \"args\": \"${args}\", \"runs\": ${runs},"
  echo "  \"date\": \"${started}\", \"revision\": \"${revision}\", \"machine\": \"${machine}\","
  echo "  \"load\": {\"others_cpu_s\": ${others_s}, \"steal_s\": ${steal_s}, \"wall_s\": ${wall_s}},"
  echo "  \"snapshot_checksum\": \"${checksum}\","
  echo "  \"builds\": {"
  for i in 0 1 2; do
    sep=","; [[ $i -eq 2 ]] && sep=""
    echo "    \"${names[i]}\": {\"flags\": \"${flags[i]}\", \"p50_ms\": [$(list "${p50[$i]}")]," \
      "\"p99_ms\": [$(list "${p99[$i]}")], \"process_cpu_s\": [$(list "${cpu[$i]}")]," \
      "\"median_p50_ms\": ${med50[i]}, \"median_p99_ms\": ${med99[i]}}${sep}"
  done
  echo "  },"
  echo "  \"target\": {\"what\": \"1 worker p50 / 2 workers p50 >= 1.8\", \"measured\": ${speedup}," \
    "\"status\": \"${status}\"}"
  echo "}"
} >bench/results/game_frame.json
echo "=== wrote bench/results/game_frame.md and bench/results/game_frame.json" >&2
