#!/usr/bin/env bash
# Installs Apache Kafka's broker (KRaft) jars from Maven Central into a cache outside the repo,
# $AXION_KAFKA_HOME/<version>/libs (default /var/cache/axion-kafka, or ~/.cache/axion-kafka when that
# is not writable; KAFKA_VERSION, default 4.1.2).
# Idempotent; prints the libs folder. The Apache download site is not reachable here, so Maven
# resolves kafka_2.13 with its runtime dependencies instead of the release tarball; log4j2 (with the
# slf4j 1.x binding Kafka's slf4j-api expects) is added so the broker writes its log.
set -euo pipefail
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "$0")/common.sh"
if [ -f "$KAFKA_HOME_DIR/.complete" ]; then echo "$KAFKA_LIBS"; exit 0; fi
mkdir -p "$KAFKA_HOME_DIR"
exec 9>"$KAFKA_HOME_DIR/.lock"
flock 9
if [ -f "$KAFKA_HOME_DIR/.complete" ]; then echo "$KAFKA_LIBS"; exit 0; fi

work=$(mktemp -d "$KAFKA_HOME_DIR/.install-XXXXXX")
broker=""
trap '[ -n "$broker" ] && kill -KILL "$broker" 2>/dev/null; rm -rf "$work"' EXIT
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>axion</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
mvn -B -Dstyle.color=never -f "$work/pom.xml" -Dmaven.repo.local="$AXION_KAFKA_HOME/m2" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1 ||
  { cat "$work/mvn.log" >&2; exit 1; }
rm -rf "$KAFKA_LIBS" "$KAFKA_CDS"
mv "$work/libs" "$KAFKA_LIBS"

# Record the classes a broker loads while formatting and starting into a CDS archive (the
# classpath is part of the archive, hence after the jars are in their final place).
kafka_configure "$(kafka_free_port)" "$(kafka_free_port)" "$work/broker"
kafka_format "$work/broker"
kafka_java_opts "$work/broker"
java "${KAFKA_JAVA_OPTS[@]}" "-XX:ArchiveClassesAtExit=$work/kafka.jsa" -cp "$KAFKA_LIBS/*" \
  kafka.Kafka "$work/broker/server.properties" >"$work/broker/kafka.log" 2>&1 &
broker=$!
kafka_wait_ready "$broker" "$work/broker/kafka.log"
kill -TERM "$broker"
wait "$broker" || true
broker=""
if [ -f "$work/kafka.jsa" ]; then mv "$work/kafka.jsa" "$KAFKA_CDS"; fi

touch "$KAFKA_HOME_DIR/.complete"
echo "$KAFKA_LIBS"
