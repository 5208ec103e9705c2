#!/usr/bin/env bash
# Stops the broker started by start.sh with the same DIR (a clean shutdown; killed after 30 s).
#   stop.sh DIR
set -euo pipefail
dir="${1:?usage: stop.sh DIR}"
pid=$(cat "$dir/kafka.pid" 2>/dev/null || true)
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then exit 0; fi
kill -TERM "$pid"
for _ in $(seq 300); do
  kill -0 "$pid" 2>/dev/null || { rm -f "$dir/kafka.pid"; exit 0; }
  sleep 0.1
done
kill -KILL "$pid"
rm -f "$dir/kafka.pid"
