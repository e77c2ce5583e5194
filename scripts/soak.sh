#!/usr/bin/env bash
# Soak of the main sample: runs game_frame for 100,000 frames with the resident set
# size sampled every 1,000 frames (--rss-every), writes the samples to docs/data/soak_rss.tsv,
# draws docs/images/soak_rss.png (gnuplot, scripts/soak.gp), and fails when the RSS at the end
# exceeds the RSS at frame 10,000 by more than the tolerance (1,024 KiB by default: a leak of
# 12 bytes per frame over the 90,000 frames after it would exceed it). The first 10,000 frames
# are warm-up: pools, caches and fiber stacks reach their working size there.
# Installs missing Debian packages first (scripts/install-deps.sh --bench, for gnuplot) and
# builds game_frame in Release with g++ in build/soak (FIBERJOB_BUILD_DIR to change it).
# A benchmark, not a test: ctest runs only a 3,000-frame run of the option.
#
# Usage: scripts/soak.sh [--frames N] [--every N] [--baseline-frame N] [--tolerance-kib K]
#                        [-- game_frame options, e.g. --map ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/measure-env.sh

frames=100000
every=1000
baseline_frame=10000
tolerance_kib=1024
while [[ $# -gt 0 ]]; do
  case "$1" in
    --frames) frames="$2"; shift 2 ;;
    --every) every="$2"; shift 2 ;;
    --baseline-frame) baseline_frame="$2"; shift 2 ;;
    --tolerance-kib) tolerance_kib="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "soak: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
for value in "${frames}" "${every}" "${baseline_frame}" "${tolerance_kib}"; do
  if ! [[ "${value}" =~ ^[0-9]+$ ]]; then
    echo "soak: expected whole numbers, got '${value}'" >&2
    exit 2
  fi
done
if (( every == 0 || baseline_frame % every != 0 || baseline_frame >= frames )); then
  echo "soak: --baseline-frame must be a multiple of --every and below --frames" >&2
  exit 2
fi

scripts/install-deps.sh --bench
build="${FIBERJOB_BUILD_DIR:-build/soak}"
build_game_frame "${build}"

revision="$(describe_revision)"
log="$(mktemp)"
times="$(mktemp)"
trap 'rm -f "${log}" "${times}"' EXIT

echo "=== run: ${frames} frames, RSS every ${every} ($*)" >&2
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
busy_before="$(cpu_busy_seconds)"
steal_before="$(cpu_steal_seconds)"
TIMEFORMAT='%R %U %S'
{ time "${build}/samples/game_frame" --frames "${frames}" --rss-every "${every}" "$@" \
    >"${log}" 2>&1; } 2>"${times}" || { cat "${log}" >&2; exit 1; }
read -r wall_s user_s sys_s <"${times}"
others_s="$(cpu_seconds_minus "$(cpu_busy_seconds)" "${busy_before}" "${user_s}" "${sys_s}")"
steal_s="$(cpu_seconds_minus "$(cpu_steal_seconds)" "${steal_before}")"

mkdir -p docs/data docs/images
tsv=docs/data/soak_rss.tsv
machine="$(describe_machine)"
{
  echo "# scripts/soak.sh, ${started}: game_frame --frames ${frames} --rss-every ${every}${*:+ $*}"
  echo "# fiberjob ${revision}; ${machine}; $(g++ -dumpfullversion 2>/dev/null | sed 's/^/g++ /')"
  echo "# wall ${wall_s} s; other processes used ${others_s} CPU-s, hypervisor steal ${steal_s} s"
  printf 'frame\trss_kib\tp50_ms\tp99_ms\tmax_ms\n'
  awk '$1 == "rss" { printf "%s\t%s\t%s\t%s\t%s\n", $3, $5, $9, $11, $13 }' "${log}"
} >"${tsv}"

# first/last/min/max RSS and the baseline, then the whole run's frame times from the summary.
read -r first last min max base < <(awk -v base_frame="${baseline_frame}" '
  /^[0-9]/ { if (n++ == 0) { first = $2; min = $2; max = $2 }
             last = $2; if ($2 < min) min = $2; if ($2 > max) max = $2
             if ($1 == base_frame) base = $2 }
  END { print first, last, min, max, base }' "${tsv}")
summary="$(grep -m1 'frame time ms' "${log}" | sed 's/^ *//')"
grep -A7 '^summary' "${log}" >&2
subtitle="${machine}, ${started}"
gnuplot -e "infile='${tsv}'; outfile='docs/images/soak_rss.png'; subtitle='${subtitle}'" \
  -e "base_frame=${baseline_frame}; base_kib=${base}; tolerance_kib=${tolerance_kib}" \
  scripts/soak.gp

growth=$(( last - base ))
echo "=== RSS KiB: first ${first} (frame ${every}), at frame ${baseline_frame} ${base}," \
  "last ${last}, min ${min}, max ${max}; end - frame ${baseline_frame} = ${growth}" \
  "(tolerance ${tolerance_kib})"
echo "=== ${summary}; ${wall_s} s wall; other processes ${others_s} CPU-s, steal ${steal_s} s"
echo "=== wrote ${tsv} and docs/images/soak_rss.png"
if (( growth > tolerance_kib )); then
  echo "soak: FAILED: RSS grew by ${growth} KiB after frame ${baseline_frame}" \
    "(more than ${tolerance_kib} KiB)" >&2
  exit 1
fi
echo "=== soak passed: RSS flat within ${tolerance_kib} KiB after frame ${baseline_frame}"
