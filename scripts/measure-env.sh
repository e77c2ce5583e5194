# Sourced by scripts/soak.sh and scripts/bench-game.sh: what a measurement records about its
# context: the source revision, the machine, and how busy the machine was (from /proc/stat; the
# machine may be shared).
#
#   before=$(cpu_busy_seconds); run ...; after=$(cpu_busy_seconds)
#   others=$(cpu_seconds_minus "$after" "$before" "$own_cpu_seconds")
#
# cpu_busy_seconds: CPU time all CPUs spent outside idle, iowait and steal since boot, in
# seconds (user + nice + system + irq + softirq; guest time is already inside user/nice).
cpu_busy_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz }' \
    /proc/stat
}

# cpu_steal_seconds: CPU time the hypervisor took from this VM since boot, in seconds.
cpu_steal_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f\n", $9 / hz }' /proc/stat
}

# cpu_seconds_minus A B [C ...]: A - B - C - ..., two decimals, never below 0.
cpu_seconds_minus() {
  awk -v a="$1" 'BEGIN { r = a; for (i = 2; i < ARGC; ++i) r -= ARGV[i]; if (r < 0) r = 0;
                         printf "%.2f\n", r }' "$@"
}

# describe_revision: the commit and which of include/, src/, samples/ differ from it, e.g.
# "9841b7f + uncommitted changes in samples/".
describe_revision() {
  local revision dirty=()
  revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  for dir in include src samples; do
    git diff --quiet HEAD -- "${dir}" 2>/dev/null || dirty+=("${dir}/")
  done
  if [[ ${#dirty[@]} -gt 0 ]]; then revision+=" + uncommitted changes in ${dirty[*]}"; fi
  echo "${revision}"
}

# describe_machine: CPU model and count, e.g. "AMD EPYC, 2 CPUs".
describe_machine() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs"
}

# build_game_frame DIR: configures DIR (Release, g++, -Werror) and builds the game_frame sample
# in it; the sample is then DIR/samples/game_frame.
build_game_frame() {
  echo "=== configure and build $1 (Release, g++)" >&2
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
    -DFIBERJOB_WERROR=ON >/dev/null
  cmake --build "$1" -j "$(nproc)" --target game_frame >&2
}
