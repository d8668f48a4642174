#!/usr/bin/env bash
# Compile time of a consumer file in both of clip's build modes: README's API example, compiled
# alone with `g++ -std=c++17 -O2 -march=native -c` (the flags of issue 12) against this source
# tree, header-only and with CLIP_SEPARATE_COMPILATION (what linking clip::clip_compiled
# defines). Prints, per mode, the median over RUNS compiles (default 3) of the wall time and of
# the CPU time (user + system; steadier than wall time on a shared machine), and the load
# average before the first compile. Usage: tests/benchmarks/compile_time.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The first ```cpp block of README's API section, as the consumer test extracts it.
awk '/^## The API/{api=1} api && /^```cpp$/{grab=1; next} grab && /^```$/{exit} grab' README.md > "$work/example.cpp"
flags=(-std=c++17 -O2 -march=native -Iinclude -I/usr/include/eigen3 -I/usr/include/stb -c "$work/example.cpp" -o "$work/example.o")
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
TIMEFORMAT='%R %U %S'
for mode in header-only compiled; do
  extra=()
  [ "$mode" = compiled ] && extra=(-DCLIP_SEPARATE_COMPILATION)
  : > "$work/times"
  for _ in $(seq "$runs"); do
    { time g++ "${flags[@]}" "${extra[@]}"; } 2>> "$work/times"
  done
  wall=$(awk '{print $1}' "$work/times" | median)
  cpu=$(awk '{print $2 + $3}' "$work/times" | median)
  printf "%-12s wall %.1f s, cpu %.1f s (medians of %s)\n" "$mode" "$wall" "$cpu" "$runs"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
