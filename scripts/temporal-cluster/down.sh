#!/usr/bin/env bash
# Stops the Temporal server that up.sh started from DIR: its whole process group, SIGTERM (a clean
# shutdown), SIGKILL after 30 s. Its databases stay (up.sh DIR starts it again on them).
#   down.sh DIR
set -euo pipefail
dir="${1:?usage: down.sh DIR}"
pid=$(cat "$dir/temporal.pid" 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 -- "-$pid" 2>/dev/null; then rm -f "$dir/temporal.pid"; exit 0; fi
kill -TERM -- "-$pid" 2>/dev/null || true
for _ in $(seq 300); do
  kill -0 -- "-$pid" 2>/dev/null || { rm -f "$dir/temporal.pid"; exit 0; }
  sleep 0.1
done
kill -KILL -- "-$pid" 2>/dev/null || true
rm -f "$dir/temporal.pid"
