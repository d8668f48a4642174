#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset `fuzz`: clang, -fsanitize=fuzzer,address,undefined)
# and runs each from its committed corpus for SECONDS, all targets at once under `nice -n 19`.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     e.g. tests/fuzz/run.sh 30 tokenizer image
#
# A finding is a crash or sanitizer report, an out-of-memory (more than 2 GB: -rss_limit_mb and
# -malloc_limit_mb=2048) or a timeout: an input that takes more than 1 s. libFuzzer measures
# wall-clock time, which on a loaded machine at nice 19 is mostly waiting for a core; so each
# input slower than 1 s of wall time is saved (-report_slow_units=1), only one stuck for
# FUZZ_HANG_SECONDS (default 60) stops the run (-timeout), and each is replayed alone: it is a
# finding if it needs more than 1 s of CPU time. Findings are kept in
# $FUZZ_WORK/<target>/artifacts/ and the script exits 1. New corpus entries go to
# $FUZZ_WORK/<target>/corpus/, never into tests/fuzz/corpus (FUZZ_WORK defaults to
# build/fuzz/run). Per target it prints wall and CPU seconds, executions and final coverage
# (libFuzzer's cov: edges, ft: features). FUZZ_NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
source_dir=$PWD

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
work=${FUZZ_WORK:-$source_dir/build/fuzz/run}

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  cmake --preset fuzz >/dev/null
  nice -n 19 cmake --build --preset fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in tests/fuzz/fuzz_*.cpp; do
    name=${source#tests/fuzz/fuzz_}
    targets+=("${name%.cpp}")
  done
fi

run_one() {
  local name=$1 dir=$work/$1
  local binary=$source_dir/build/fuzz/tests/fuzz/fuzz_$name
  rm -rf "$dir/artifacts"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  local args=(-max_total_time="$seconds" -timeout="${FUZZ_HANG_SECONDS:-60}" -report_slow_units=1 -rss_limit_mb=2048
              -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/")
  [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
  local inputs=("$dir/corpus" "tests/fuzz/corpus/$name")
  [ -d "tests/fuzz/regressions/$name" ] && inputs+=("tests/fuzz/regressions/$name")
  local status=0
  { TIMEFORMAT='%R %U %S'; time nice -n 19 "$binary" "${args[@]}" "${inputs[@]}" >"$dir/log" 2>&1 ; } \
    2>"$dir/time" || status=$?
  echo "$status" >"$dir/status"
}

for name in "${targets[@]}"; do
  [ -x "build/fuzz/tests/fuzz/fuzz_$name" ] || { echo "no fuzz target '$name'" >&2; exit 2; }
  run_one "$name" &
done
wait

failed=0
printf '%-12s %8s %8s %12s %10s %8s %8s  %s\n' target wall_s cpu_s executions exec_per_s cov ft result
for name in "${targets[@]}"; do
  dir=$work/$name
  status=$(cat "$dir/status")
  read -r wall user sys <"$dir/time" || true
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  coverage=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2 || true)
  features=$(grep -oE 'ft: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2 || true)
  # Slow inputs count only if they need more than 1 s of CPU on their own (see the top).
  for artifact in "$dir"/artifacts/slow-unit-* "$dir"/artifacts/timeout-*; do
    [ -e "$artifact" ] || continue
    cpu_used=$({ TIMEFORMAT='%U %S'; time "build/fuzz/tests/fuzz/fuzz_$name" -runs=1 "$artifact" >/dev/null 2>&1 ; } 2>&1 |
               awk '{ print $1 + $2 }')
    if awk -v t="$cpu_used" 'BEGIN { exit !(t <= 1.0) }'; then
      mkdir -p "$dir/slow-under-load"
      mv "$artifact" "$dir/slow-under-load/"  # kept for a look, not a finding
      echo "$name: $(basename "$artifact") takes ${cpu_used} s CPU alone (process start included): not a finding" >&2
    fi
  done
  result=ok
  # A timeout that proved fast alone ends the run with status 70 but is not a finding.
  if [ -n "$(ls -A "$dir/artifacts")" ] || { [ "$status" != 0 ] && [ "$status" != 70 ]; }; then
    result="FINDING (status $status): $(ls "$dir/artifacts" | tr '\n' ' ')see $dir/log"
    failed=1
  fi
  cpu=$(awk -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { printf "%.0f", u + s }')
  printf '%-12s %8.0f %8s %12s %10s %8s %8s  %s\n' "$name" "${wall:-0}" "$cpu" "${executions:-?}" \
    "${per_second:-?}" "${coverage:-?}" "${features:-?}" "$result"
done
exit $failed
