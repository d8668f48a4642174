#!/usr/bin/env bash
# Compile time of a consumer file in both of clip's build modes: README's API example, compiled
# alone with `g++ -std=c++17 -O2 -c` against this source tree, header-only and with
# CLIP_SEPARATE_COMPILATION (what linking clip::clip_compiled defines). Prints the median wall
# time of RUNS compiles of each (default 3). Usage: tests/benchmarks/compile_time.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The first ```cpp block of README's API section, as the consumer test extracts it.
awk '/^## The API/{api=1} api && /^```cpp$/{grab=1; next} grab && /^```$/{exit} grab' README.md > "$work/example.cpp"
flags=(-std=c++17 -O2 -Iinclude -I/usr/include/eigen3 -I/usr/include/stb -c "$work/example.cpp" -o "$work/example.o")
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for mode in header-only compiled; do
  extra=()
  [ "$mode" = compiled ] && extra=(-DCLIP_SEPARATE_COMPILATION)
  for _ in $(seq "$runs"); do
    start=$EPOCHREALTIME
    g++ "${flags[@]}" "${extra[@]}"
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}'
  done | median | xargs printf "%-12s %.1f s (median of $runs)\n" "$mode"
done
