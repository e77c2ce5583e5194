#!/usr/bin/env bash
# Benchmark row 9: the game-frame sample's frame time, p50 and p99, with 2 worker threads, with
# 1 worker thread and serial (--serial: the same frames on the main thread with no jobs;
# samples/game/world_serial.cpp), at each agent count (default 2,000 and 20,000). The sample's
# main thread is attached (AttachedWorker) in the two job-system builds: while it waits for a
# frame it runs jobs too, so "1 worker + attached main" may run jobs on two threads at once.
# --stop-tokens adds the two job-system builds again with every AI coroutine spawned with a stop
# token that is never stopped (game_frame --stop-tokens: the cost of stoppable waits alone).
# Runs the builds alternately, --runs times each (default 5 runs of 600 frames; each run is a
# new process on
# den520d.map), checks that every run of one agent count ends on the same snapshot checksum
# (the same work was done), prints a table of the medians with min–max, and writes
# bench/results/game_frame.{md,json}. The frame times of a run are those of all its frames, as
# the sample's summary reports them.
# Targets (judged against the serial build: "does the job system make my game faster?"):
#   1 worker within 1.15x of serial at p50; 2 workers at least 1.7x faster than serial at
#   20,000 agents and faster than serial at 2,000.
# Installs missing Debian packages first (scripts/install-deps.sh) and builds game_frame in
# Release with g++ in build/bench-game (FIBERJOB_BUILD_DIR to change it). The machine may be
# shared: the CPU time other processes used during the runs is recorded with the figures.
#
# Usage: scripts/bench-game.sh [--runs N] [--frames N] [--agents "N N ..."] [--stop-tokens]
#                              [-- game_frame options]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/measure-env.sh

runs=5
frames=600
agent_counts="2000 20000"
stop_tokens=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --frames) frames="$2"; shift 2 ;;
    --agents) agent_counts="$2"; shift 2 ;;
    --stop-tokens) stop_tokens=1; shift ;;
    --) shift; break ;;
    *) echo "bench-game: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
if ! [[ "${runs}" =~ ^[1-9][0-9]*$ && "${frames}" =~ ^[1-9][0-9]*$ &&
        "${agent_counts}" =~ ^[1-9][0-9]*( [1-9][0-9]*)*$ ]]; then
  echo "bench-game: --runs, --frames and --agents expect whole numbers >= 1" >&2
  exit 2
fi

scripts/install-deps.sh
build="${FIBERJOB_BUILD_DIR:-build/bench-game}"
build_game_frame "${build}"
sample="${build}/samples/game_frame"

revision="$(describe_revision)"
machine="$(describe_machine)"
names=("2 workers + attached main" "1 worker + attached main")
flags=("--workers 2" "--workers 1")
if (( stop_tokens )); then
  names+=("2 workers + attached main, stop tokens" "1 worker + attached main, stop tokens")
  flags+=("--workers 2 --stop-tokens" "--workers 1 --stop-tokens")
fi
names+=("serial")  # last: the baseline of the ratios
flags+=("--serial")
serial_i=$(( ${#names[@]} - 1 ))
declare -A p50 p99 cpu checksum
log="$(mktemp)"
times="$(mktemp)"
trap 'rm -f "${log}" "${times}"' EXIT
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
busy_before="$(cpu_busy_seconds)"
steal_before="$(cpu_steal_seconds)"
own_total=0
wall_before="$(date +%s.%N)"
TIMEFORMAT='%U %S'
for (( run = 1; run <= runs; ++run )); do
  for agents in ${agent_counts}; do
    for i in "${!names[@]}"; do
      key="${agents},${i}"
      # shellcheck disable=SC2086  # flags[i] is several words on purpose
      { time "${sample}" --agents "${agents}" --frames "${frames}" ${flags[i]} "$@" \
          >"${log}" 2>&1; } 2>"${times}" || { cat "${log}" >&2; exit 1; }
      read -r user_s sys_s <"${times}"
      read -r run_p50 run_p99 < <(awk '/frame time ms/ { print $5, $9 }' "${log}")
      run_checksum="$(awk '/snapshot checksum/ { print $3 }' "${log}")"
      if [[ -z "${checksum[${agents}]:-}" ]]; then checksum[${agents}]="${run_checksum}"; fi
      if [[ "${run_checksum}" != "${checksum[${agents}]}" ]]; then
        echo "bench-game: ${names[i]} with ${agents} agents, run ${run}, ended on checksum" \
          "${run_checksum}, not ${checksum[${agents}]}: the builds did different work" >&2
        exit 1
      fi
      run_cpu="$(awk -v u="${user_s}" -v s="${sys_s}" 'BEGIN { printf "%.2f", u + s }')"
      own_total="$(awk -v a="${own_total}" -v b="${run_cpu}" 'BEGIN { printf "%.2f", a + b }')"
      p50[${key}]+="${run_p50} "
      p99[${key}]+="${run_p99} "
      cpu[${key}]+="${run_cpu} "
      echo "run ${run}  ${agents} agents  ${names[i]}: p50 ${run_p50} ms  p99 ${run_p99} ms" \
        "(process CPU ${run_cpu} s)" >&2
    done
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
verdict() { awk -v v="$1" -v t="$2" -v op="$3" \
  'BEGIN { ok = op == "<=" ? v <= t + 1e-9 : v >= t - 1e-9; print (ok ? "met" : "missed") }'; }
list() { tr ' ' '\n' <<<"$1" | grep . | paste -sd, -; }
declare -A med50 med99
for agents in ${agent_counts}; do
  for i in "${!names[@]}"; do
    med50[${agents},${i}]="$(stat "${p50[${agents},${i}]}" median)"
    med99[${agents},${i}]="$(stat "${p99[${agents},${i}]}" median)"
  done
done

args="--frames ${frames}${*:+ $*}"
{
  echo "## 9. Game frame: game_frame ${args}, agents ${agent_counts} (${runs} runs each, alternating)"
  echo
  echo "${started}; fiberjob ${revision}; ${machine}; $(g++ -dumpfullversion | sed 's/^/g++ /')."
  echo "Load: other processes used ${others_s} CPU-s during the ${wall_s} s of runs;" \
    "hypervisor steal ${steal_s} s."
  for agents in ${agent_counts}; do
    serial="${med50[${agents},${serial_i}]}"
    echo
    echo "### ${agents} agents (every run ended on snapshot checksum ${checksum[${agents}]})"
    echo
    echo "| build | frame p50 ms (median) | p50 min–max | frame p99 ms (median) | p99 min–max |" \
      "serial ÷ this, p50 | process CPU s (median) |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for i in "${!names[@]}"; do
      key="${agents},${i}"
      echo "| ${names[i]} | ${med50[${key}]} | $(stat "${p50[${key}]}" min)–$(stat "${p50[${key}]}" max) |" \
        "${med99[${key}]} | $(stat "${p99[${key}]}" min)–$(stat "${p99[${key}]}" max) |" \
        "$(ratio "${serial}" "${med50[${key}]}") | $(stat "${cpu[${key}]}" median) |"
    done
    one="$(ratio "${med50[${agents},1]}" "${serial}")"
    two="$(ratio "${serial}" "${med50[${agents},0]}")"
    echo
    echo "* 1 worker + attached main ÷ serial at p50: ${one} (target ≤ 1.15:" \
      "**$(verdict "${one}" 1.15 "<=")**)."
    if [[ "${agents}" -ge 20000 ]]; then
      echo "* serial ÷ 2 workers + attached main at p50: ${two} (target ≥ 1.7 at 20,000 agents:" \
        "**$(verdict "${two}" 1.7 ">=")**)."
    else
      echo "* serial ÷ 2 workers + attached main at p50: ${two} (target > 1, faster than serial:" \
        "**$(verdict "${two}" 1.01 ">=")**)."
    fi
    if (( stop_tokens )); then
      echo "* stop tokens ÷ none at p50: 2 workers $(ratio "${med50[${agents},2]}" \
        "${med50[${agents},0]}"), 1 worker $(ratio "${med50[${agents},3]}" "${med50[${agents},1]}")."
    fi
  done
} | tee bench/results/game_frame.md

{
  echo "{"
  echo "  \"workload\": \"game_frame\", \"args\": \"${args}\", \"runs\": ${runs},"
  echo "  \"date\": \"${started}\", \"revision\": \"${revision}\", \"machine\": \"${machine}\","
  echo "  \"load\": {\"others_cpu_s\": ${others_s}, \"steal_s\": ${steal_s}, \"wall_s\": ${wall_s}},"
  echo "  \"agents\": {"
  last_agents="${agent_counts##* }"
  for agents in ${agent_counts}; do
    echo "    \"${agents}\": {\"snapshot_checksum\": \"${checksum[${agents}]}\", \"builds\": {"
    for i in "${!names[@]}"; do
      key="${agents},${i}"
      sep=","; [[ $i -eq ${serial_i} ]] && sep=""
      echo "      \"${names[i]}\": {\"flags\": \"${flags[i]}\", \"p50_ms\": [$(list "${p50[${key}]}")]," \
        "\"p99_ms\": [$(list "${p99[${key}]}")], \"process_cpu_s\": [$(list "${cpu[${key}]}")]," \
        "\"median_p50_ms\": ${med50[${key}]}, \"median_p99_ms\": ${med99[${key}]}}${sep}"
    done
    sep=","; [[ "${agents}" == "${last_agents}" ]] && sep=""
    echo "    }}${sep}"
  done
  echo "  }"
  echo "}"
} >bench/results/game_frame.json
echo "=== wrote bench/results/game_frame.md and bench/results/game_frame.json" >&2
