#!/usr/bin/env bash
# Runs a single-node KRaft Kafka (broker and controller in one JVM) on loopback.
#   start.sh [--detach] PORT DIR
# Clients connect to 127.0.0.1:PORT; the controller listens on $KAFKA_CONTROLLER_PORT (default
# PORT+1). Config, data and log live in DIR. DIR is formatted on first use only, so starting again
# with the same DIR keeps topics and messages. In the foreground the script becomes the broker
# process (its pid is written to DIR/kafka.pid); with --detach it returns once the broker is ready
# and logs to DIR/kafka.log.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
detach=0
if [ "${1:-}" = "--detach" ]; then detach=1; shift; fi
port="${1:?usage: start.sh [--detach] PORT DIR}"
dir="${2:?usage: start.sh [--detach] PORT DIR}"
bash "$(dirname "$0")/install.sh" >/dev/null
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
started=$(date +%s%N)
kafka_configure "$port" "${KAFKA_CONTROLLER_PORT:-$((port + 1))}" "$dir"
kafka_format "$dir"
kafka_java_opts "$dir"

if [ "$detach" -eq 0 ]; then
  echo $$ >"$dir/kafka.pid"
  exec java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
fi
if [ -f "$dir/kafka.log" ]; then mv "$dir/kafka.log" "$dir/kafka.log.1"; fi
nohup java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >>"$dir/kafka.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/kafka.pid"
kafka_wait_ready "$pid" "$dir/kafka.log"
echo "kafka ready on 127.0.0.1:$port (pid $pid) in $((($(date +%s%N) - started) / 1000000)) ms"
