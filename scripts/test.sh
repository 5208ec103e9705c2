#!/usr/bin/env bash
# The test command (`npm test`): installs missing system parts, then runs every test file
# (or the ones given) with node's test runner. Node 20 does not find .ts files by itself,
# so the files are listed explicitly.
#
# The whole suite runs in two lanes at once: the files that boot test hosts (systemd
# containers: they share the image cache and the host's network namespaces) one after
# another, and every other file one after another beside them. Every server a test starts
# listens on a free port of its own, so the lanes never meet. Files that bound a latency say
# `// test lane: alone` and run after both lanes, by themselves. Given files run in one lane.
# At the end each lane's files are listed with their wall times, slowest first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
run() { node --import tsx --test --test-concurrency=1 "$@"; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# TAP on stdout as before, and each file's wall time into $logs/<lane>.times.
timed() {
  local name=$1
  shift
  run --test-reporter=tap --test-reporter-destination=stdout \
    --test-reporter=./scripts/file-times-reporter.mjs --test-reporter-destination="$logs/$name.times" "$@"
}
print_times() {
  local f total
  for f in "$logs"/*.times; do
    [ -s "$f" ] || continue
    total=$(awk '{ s += $1 } END { printf "%.1f", s / 60 }' "$f")
    echo "==== $(basename "$f" .times) lane: $total min; seconds per file, slowest first ===="
    sort -rn "$f"
  done
}
if [ "$#" -gt 0 ]; then
  status=0
  timed given "$@" || status=$?
  print_times
  exit "$status"
fi

hosts=() rest=() alone=()
for file in test/*.test.ts; do
  if grep -q "^// test lane: alone" "$file"; then alone+=("$file")
  elif grep -q "support/testhosts" "$file"; then hosts+=("$file")
  else rest+=("$file"); fi
done

# Each lane's lines carry its name; a lane's own exit status is kept, so one failing lane
# fails the run after both finished (the other lane's results are still printed).
# Each lane's output is also kept, so the failures are repeated at the very end, where a
# truncated CI log still shows them.
lane() {
  local name=$1
  shift
  set +e
  timed "$name" "$@" 2>&1 | sed -u "s/^/[$name] /" | tee "$logs/$name.log"
  local status=${PIPESTATUS[0]}
  echo "[$name] lane finished with status $status"
  return "$status"
}
# Every failing test (innermost first, as TAP prints them) with its diagnostic block.
print_failures() {
  cat "$logs"/*.log 2>/dev/null | awk '
    /^\[[a-z]+\] *not ok / { show = 1; lines = 0; print "----"; }
    show { print; lines++; }
    show && (/^\[[a-z]+\] *\.\.\.$/ || lines >= 60) { show = 0; }'
}

trap 'kill 0 2>/dev/null' INT TERM
lane hosts "${hosts[@]}" &
hosts_pid=$!
lane rest "${rest[@]}" &
rest_pid=$!
status=0
wait "$hosts_pid" || status=1
wait "$rest_pid" || status=1
if [ "${#alone[@]}" -gt 0 ]; then lane alone "${alone[@]}" || status=1; fi
print_times
if [ "$status" -ne 0 ]; then
  echo "==== failing tests ===="
  print_failures
fi
exit "$status"
