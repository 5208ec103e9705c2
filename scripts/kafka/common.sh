# shellcheck shell=bash
# Shared by install.sh and start.sh (sourced, not run): where the jars live, the JVM options,
# the broker config and the storage format step for a single-node KRaft Kafka on loopback.
KAFKA_VERSION="${KAFKA_VERSION:-4.1.2}"
if [ -z "${AXION_KAFKA_HOME:-}" ]; then
  AXION_KAFKA_HOME=/var/cache/axion-kafka
  if ! { mkdir -p "$AXION_KAFKA_HOME" && [ -w "$AXION_KAFKA_HOME" ]; } 2>/dev/null; then
    AXION_KAFKA_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/axion-kafka"
  fi
fi
KAFKA_HOME_DIR="$AXION_KAFKA_HOME/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME_DIR/libs"
# A class-data-sharing archive of the broker's classes, made by install.sh: startup drops from
# ~20 s to ~7 s on a small machine. Missing or stale, the JVM simply runs without it.
KAFKA_CDS="$KAFKA_HOME_DIR/kafka.jsa"

kafka_java_opts() {
  local dir="$1"
  # Small heap and C1-only JIT: a development broker should start fast, not peak.
  KAFKA_JAVA_OPTS=(-Xms128m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$dir/log4j2.properties")
  if [ -f "$KAFKA_CDS" ]; then KAFKA_JAVA_OPTS+=("-XX:SharedArchiveFile=$KAFKA_CDS" -Xlog:cds=off -Xlog:cds+dynamic=off); fi
}

# kafka_configure PORT CONTROLLER_PORT DIR: writes DIR/server.properties and DIR/log4j2.properties.
kafka_configure() {
  local port="$1" controller_port="$2" dir="$3"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  cat >"$dir/log4j2.properties" <<'PROPS'
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
PROPS
}

# kafka_format DIR: formats DIR/data once; later starts reuse it with its topics and messages.
kafka_format() {
  local dir="$1" cluster_id=-
  if [ -f "$dir/data/meta.properties" ]; then return 0; fi
  # A Kafka Uuid is 16 bytes in unpadded base64url; one starting with "-" would read as an option.
  while [ "${cluster_id:0:1}" = - ]; do cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'); done
  kafka_java_opts "$dir"
  java "${KAFKA_JAVA_OPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
    --config "$dir/server.properties" --cluster-id "$cluster_id" --ignore-formatted >"$dir/format.log" 2>&1 ||
    { cat "$dir/format.log" >&2; return 1; }
}

# kafka_wait_ready PID LOG: waits until the broker in LOG says it started (fails if PID exits).
kafka_wait_ready() {
  local pid="$1" log="$2"
  until grep -q "Kafka Server started" "$log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then tail -n 30 "$log" >&2; return 1; fi
    sleep 0.1
  done
}

kafka_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
