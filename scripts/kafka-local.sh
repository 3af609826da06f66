#!/usr/bin/env bash
# A real, single-node Apache Kafka broker (KRaft) for machines without Docker.
#
# The broker is assembled from Maven Central artifacts with `mvn` (no tarball download),
# formatted once, and started with the local JDK. Used by the tests, the demo and the
# benchmarks when neither KAFKA_BROKERS nor a Docker engine is available.
#
#   scripts/kafka-local.sh install          # fetch jars into the cache (idempotent)
#   scripts/kafka-local.sh start            # install if needed, format, start, wait until ready
#   scripts/kafka-local.sh stop             # SIGTERM the recorded pid, wait for clean shutdown
#   scripts/kafka-local.sh status           # exit 0 and print the bootstrap address when running
#
# `start` and `status` print the advertised address (127.0.0.1:$KAFKA_ADVERTISED_PORT): the one
# clients end up on.
#
# Settings (environment):
#   KAFKA_VERSION   default 4.1.1           kafka_2.13 version from Maven Central
#   KAFKA_PORT      default 19092           client (PLAINTEXT) port; the controller uses +1
#   KAFKA_ADVERTISED_PORT default KAFKA_PORT   port the broker tells clients to connect to
#                   (advertised.listeners). Kafka clients bootstrap, then reconnect to the
#                   advertised address, so a TCP proxy on this port forwarding to KAFKA_PORT
#                   carries every connection (the fault matrix cuts the network there). Such a
#                   proxy must be running before clients connect; the readiness wait below
#                   reads the broker log, not the port, so it needs none.
#   KAFKA_DATA_DIR  default .kafka-local/<port>   log dir, pid file, broker log
#   KAFKA_CACHE_DIR default ~/.cache/eventbus-kafka   jars, shared by every checkout
#   KAFKA_HEAP      default -Xmx512m -Xms512m
#   KAFKA_READY_TIMEOUT_S default 90
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_ADVERTISED_PORT="${KAFKA_ADVERTISED_PORT:-$KAFKA_PORT}"
CONTROLLER_PORT="$((KAFKA_PORT + 1))"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$ROOT/.kafka-local/$KAFKA_PORT}"
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-$HOME/.cache/eventbus-kafka}"
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m -Xms512m}"
KAFKA_READY_TIMEOUT_S="${KAFKA_READY_TIMEOUT_S:-90}"
LIB_DIR="$KAFKA_CACHE_DIR/$KAFKA_VERSION/lib"
PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
LOG_FILE="$KAFKA_DATA_DIR/server.log"

log() { echo "[kafka-local] $*" >&2; }

install() {
  if [[ -f "$LIB_DIR/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn not found: install Apache Maven (and a JDK 17+)"; exit 1; }
  command -v java >/dev/null || { log "java not found: install a JDK 17+"; exit 1; }
  log "assembling Kafka $KAFKA_VERSION from Maven Central into $LIB_DIR (first run only)"
  local build="$KAFKA_CACHE_DIR/$KAFKA_VERSION/build"
  rm -rf "$LIB_DIR" "$build"; mkdir -p "$build"
  # A plain pom: no parent, no BOM, so only what Kafka itself declares is resolved.
  # Kafka publishes no logging binding; without one the broker logs nothing and the
  # readiness wait below could not show why a start failed.
  cat >"$build/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.eventbus</groupId><artifactId>kafka-local</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.2</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>2.25.2</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.2</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  mvn -B -q -f "$build/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB_DIR" >&2
  local versions
  versions="$(ls "$LIB_DIR" | grep -E '^kafka' | sed -E 's/.*-([0-9]+\.[0-9]+\.[0-9]+)\.jar$/\1/' | sort -u | tr '\n' ' ')"
  [[ "$versions" == "$KAFKA_VERSION " ]] || { log "expected only Kafka $KAFKA_VERSION jars, found: $versions"; exit 1; }
  touch "$LIB_DIR/.complete"
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

write_config() {
  mkdir -p "$KAFKA_DATA_DIR/logs"
  cat >"$KAFKA_DATA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_ADVERTISED_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA_DIR/logs
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
PROPS
  cat >"$KAFKA_DATA_DIR/log4j2.properties" <<L4J
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $LOG_FILE
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
L4J
}

java_cmd() {
  # shellcheck disable=SC2086
  java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DATA_DIR/log4j2.properties" \
    -cp "$LIB_DIR/*" "$@"
}

start() {
  if pid="$(running_pid)"; then log "already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"; echo "127.0.0.1:$KAFKA_ADVERTISED_PORT"; return 0; fi
  install
  write_config
  if [[ ! -f "$KAFKA_DATA_DIR/logs/meta.properties" ]]; then
    java_cmd kafka.tools.StorageTool format -t "$(java_cmd kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
      -c "$KAFKA_DATA_DIR/server.properties" --ignore-formatted >&2
  fi
  : >"$LOG_FILE"
  nohup bash -c "exec java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile='$KAFKA_DATA_DIR/log4j2.properties' -cp '$LIB_DIR/*' kafka.Kafka '$KAFKA_DATA_DIR/server.properties'" \
    >"$KAFKA_DATA_DIR/stdout.log" 2>&1 &
  echo $! >"$PID_FILE"
  log "started pid $(cat "$PID_FILE"), waiting for readiness (log: $LOG_FILE)"
  local deadline=$((SECONDS + KAFKA_READY_TIMEOUT_S))
  # 'Kafka Server started' is logged only once the broker is unfenced and serving;
  # an open port alone comes earlier.
  until grep -q "Kafka Server started" "$LOG_FILE" 2>/dev/null; do
    if ! running_pid >/dev/null; then log "broker exited during start:"; tail -n 40 "$KAFKA_DATA_DIR/stdout.log" "$LOG_FILE" >&2; exit 1; fi
    if (( SECONDS > deadline )); then log "not ready after ${KAFKA_READY_TIMEOUT_S}s"; tail -n 40 "$LOG_FILE" >&2; stop; exit 1; fi
    sleep 0.5
  done
  if [[ "$KAFKA_ADVERTISED_PORT" == "$KAFKA_PORT" ]]; then log "ready on 127.0.0.1:$KAFKA_PORT"
  else log "ready on 127.0.0.1:$KAFKA_PORT, advertised as 127.0.0.1:$KAFKA_ADVERTISED_PORT"; fi
  echo "127.0.0.1:$KAFKA_ADVERTISED_PORT"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then log "not running"; rm -f "$PID_FILE"; return 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "no clean shutdown after 30s, killing $pid"; kill -KILL "$pid"; fi
  rm -f "$PID_FILE"
  log "stopped"
}

status() {
  local pid
  if pid="$(running_pid)"; then echo "127.0.0.1:$KAFKA_ADVERTISED_PORT"; log "running (pid $pid)"; return 0; fi
  log "not running"; return 1
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
