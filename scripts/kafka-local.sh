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
#   KAFKA_SASL_SSL  default off; 1 = the client port speaks SASL_SSL (TLS with a self-signed
#                   certificate for 127.0.0.1, written once as $KAFKA_DATA_DIR/ca.pem for clients
#                   to trust, and SASL PLAIN), the shape of a managed Kafka (Confluent Cloud,
#                   MSK with SASL). Brokers talk to each other on a PLAINTEXT port (+2).
#   KAFKA_SASL_PLAIN_USERS default eventbus:eventbus-secret   user:password[,user:password...]
#   KAFKA_ACL       default off; 1 (with KAFKA_SASL_SSL=1) = ACLs enforced (StandardAuthorizer): the
#                   first SASL user and the PLAINTEXT listeners' User:ANONYMOUS (the broker itself,
#                   the controller, and whoever reaches port +2) are super users; every other SASL
#                   user may do only what an ACL grants. For tests of authorization refusals.
#
# Cluster mode: 3 KRaft nodes on this machine (each broker and controller, a 3-voter quorum),
# replication factor 3 and min.insync.replicas=2 for new and internal topics. Separate ports
# and data dir, so it runs beside the single broker and never touches it.
#
#   scripts/kafka-local.sh cluster-start            # format once, start the nodes not running, wait until
#                                                   # each logs 'Kafka Server started' and no partition is under-replicated
#   scripts/kafka-local.sh cluster-stop             # SIGTERM every node (in parallel: a quorum stopped one by one
#                                                   # leaves the last node waiting for a controller), wait for exit
#   scripts/kafka-local.sh cluster-status           # exit 0 when all 3 run; prints the bootstrap list, per-node state on stderr
#   scripts/kafka-local.sh cluster-stop-node N [--kill]        # SIGTERM (controlled shutdown) or SIGKILL node N (1-3)
#   scripts/kafka-local.sh cluster-start-node N [--no-isr-wait] # start node N, wait for its log, then until it is
#                                                   # back in the ISR of every partition (no under-replicated partition)
#   scripts/kafka-local.sh cluster-isr-wait         # wait until no partition of any topic is under-replicated
#
# Cluster settings (environment):
#   KAFKA_CLUSTER_PORT  default 29092   node N listens for clients on KAFKA_CLUSTER_PORT + 2(N-1)
#                       (29092, 29094, 29096) and for its controller on the next port (29093, 29095, 29097)
#   KAFKA_CLUSTER_DIR   default .kafka-local/cluster-<port>   node-N/ (log dir, pid, server.log) per node
#   KAFKA_CLUSTER_HEAP  default -Xmx384m -Xms384m   per node
#   KAFKA_ISR_TIMEOUT_S default 180     how long the ISR waits may take
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

# Whether a JVM this script launched still runs: its process exists and has not exited (a zombie
# until this script's shell reaps it). Not running_pid's check of the command line: until
# nohup's exec the child's command line is this script's own, and a check in that window (one
# in five right after the launch, more on a busy machine) took a start under way for an exit.
launched_alive() { # $1: pid
  local state
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  state="$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

# The listener lines: PLAINTEXT on KAFKA_PORT, or (KAFKA_SASL_SSL=1) SASL_SSL there and
# PLAINTEXT on KAFKA_PORT+2 for the broker itself.
listener_config() {
  if [[ "${KAFKA_SASL_SSL:-}" != "1" ]]; then
    cat <<PROPS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_ADVERTISED_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
PROPS
    return
  fi
  local keystore="$KAFKA_DATA_DIR/broker.p12" jaas="org.apache.kafka.common.security.plain.PlainLoginModule required" user
  if [[ ! -f "$keystore" ]]; then
    keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 30 -dname "CN=127.0.0.1" -ext "SAN=IP:127.0.0.1,DNS:localhost" \
      -keystore "$keystore" -storetype PKCS12 -storepass eventbus-local >&2 2>/dev/null
    keytool -exportcert -rfc -alias broker -keystore "$keystore" -storetype PKCS12 -storepass eventbus-local -file "$KAFKA_DATA_DIR/ca.pem" >&2 2>/dev/null
  fi
  IFS=',' read -ra users <<<"${KAFKA_SASL_PLAIN_USERS:-eventbus:eventbus-secret}"
  for user in "${users[@]}"; do jaas+=" user_${user%%:*}=\"${user#*:}\""; done
  cat <<PROPS
listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,PLAINTEXT://127.0.0.1:$((KAFKA_PORT + 2)),CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_ADVERTISED_PORT,PLAINTEXT://127.0.0.1:$((KAFKA_PORT + 2))
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas;
ssl.keystore.type=PKCS12
ssl.keystore.location=$keystore
ssl.keystore.password=eventbus-local
ssl.key.password=eventbus-local
PROPS
  if [[ "${KAFKA_ACL:-}" == "1" ]]; then
    cat <<PROPS
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:${users[0]%%:*}
PROPS
  fi
}

write_config() {
  mkdir -p "$KAFKA_DATA_DIR/logs"
  cat >"$KAFKA_DATA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
$(listener_config)
controller.listener.names=CONTROLLER
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
  write_log_config "$KAFKA_DATA_DIR/log4j2.properties" "$LOG_FILE"
}

# The broker's log4j2 config: everything to one file, which the readiness waits read.
write_log_config() { # $1: config file to write, $2: the broker's log file
  cat >"$1" <<L4J
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $2
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
  if [[ "${KAFKA_ACL:-}" == "1" && "${KAFKA_SASL_SSL:-}" != "1" ]]; then log "KAFKA_ACL=1 needs KAFKA_SASL_SSL=1: ACLs name SASL users"; exit 1; fi
  install
  write_config
  if [[ ! -f "$KAFKA_DATA_DIR/logs/meta.properties" ]]; then
    java_cmd kafka.tools.StorageTool format -t "$(random_cluster_id)" \
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
  pid="$(cat "$PID_FILE")"
  until grep -q "Kafka Server started" "$LOG_FILE" 2>/dev/null; do
    if ! launched_alive "$pid"; then log "broker exited during start:"; tail -n 40 "$KAFKA_DATA_DIR/stdout.log" "$LOG_FILE" >&2; exit 1; fi
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

# ---------------------------------------------------------------------------------------------
# Cluster mode. Everything below reads only KAFKA_CLUSTER_* settings (and the shared jar cache),
# so the single-broker commands above behave as before.

KAFKA_CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-29092}"
KAFKA_CLUSTER_DIR="${KAFKA_CLUSTER_DIR:-$ROOT/.kafka-local/cluster-$KAFKA_CLUSTER_PORT}"
KAFKA_CLUSTER_HEAP="${KAFKA_CLUSTER_HEAP:--Xmx384m -Xms384m}"
KAFKA_ISR_TIMEOUT_S="${KAFKA_ISR_TIMEOUT_S:-180}"
CLUSTER_NODES=(1 2 3)

node_port() { echo "$((KAFKA_CLUSTER_PORT + 2 * ($1 - 1)))"; }
node_dir() { echo "$KAFKA_CLUSTER_DIR/node-$1"; }
cluster_bootstrap() { echo "127.0.0.1:$(node_port 1),127.0.0.1:$(node_port 2),127.0.0.1:$(node_port 3)"; }

check_node_id() {
  [[ "${1:-}" =~ ^[123]$ ]] || { log "unknown node id '${1:-}': the cluster has nodes 1, 2 and 3"; exit 2; }
}

node_pid() {
  local pid_file; pid_file="$(node_dir "$1")/kafka.pid"
  [[ -f "$pid_file" ]] || return 1
  local pid; pid="$(cat "$pid_file")"
  kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

write_node_config() {
  local n="$1" dir port voters=""
  dir="$(node_dir "$n")"; port="$(node_port "$n")"
  for m in "${CLUSTER_NODES[@]}"; do voters+="${voters:+,}$m@127.0.0.1:$(( $(node_port "$m") + 1 ))"; done
  mkdir -p "$dir/logs"
  # Defaults as a production cluster has them (replica.lag.time.max.ms, broker session timeout,
  # unclean election off), so failovers take the time they would take there; only threads,
  # buffers and partition counts of internal topics are cut for a 2-core machine.
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/logs
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=true
offsets.topic.replication.factor=3
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
PROPS
  write_log_config "$dir/log4j2.properties" "$dir/server.log"
}

# Starts node N's JVM if it is not running; does not wait.
launch_node() {
  local n="$1" dir pid
  dir="$(node_dir "$n")"
  if pid="$(node_pid "$n")"; then log "node $n already running (pid $pid) on 127.0.0.1:$(node_port "$n")"; return 0; fi
  write_node_config "$n"
  if [[ ! -f "$dir/logs/meta.properties" ]]; then
    # All nodes share one cluster id, generated once per cluster dir.
    java $KAFKA_CLUSTER_HEAP -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$LIB_DIR/*" \
      kafka.tools.StorageTool format -t "$(cat "$KAFKA_CLUSTER_DIR/cluster.id")" -c "$dir/server.properties" --ignore-formatted >&2
  fi
  : >"$dir/server.log"
  nohup bash -c "exec java $KAFKA_CLUSTER_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=1 -XX:ConcGCThreads=1 \
    -XX:CICompilerCount=2 -Djava.awt.headless=true -Dlog4j2.configurationFile='$dir/log4j2.properties' -cp '$LIB_DIR/*' \
    kafka.Kafka '$dir/server.properties'" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  log "node $n started pid $(cat "$dir/kafka.pid") on 127.0.0.1:$(node_port "$n") (log: $dir/server.log)"
}

# Waits until node N logs 'Kafka Server started' (unfenced and serving, see start()).
wait_node_ready() {
  local n="$1" dir deadline=$((SECONDS + KAFKA_READY_TIMEOUT_S))
  dir="$(node_dir "$n")"
  until grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null; do
    if ! launched_alive "$(cat "$dir/kafka.pid" 2>/dev/null)"; then log "node $n exited during start:"; tail -n 40 "$dir/stdout.log" "$dir/server.log" >&2; return 1; fi
    if (( SECONDS > deadline )); then log "node $n not ready after ${KAFKA_READY_TIMEOUT_S}s"; tail -n 40 "$dir/server.log" >&2; return 1; fi
    sleep 0.5
  done
  log "node $n ready on 127.0.0.1:$(node_port "$n")"
}

# Waits until no partition of any topic is under-replicated (ISR smaller than the replica list):
# a restarted node has caught up and is back in every ISR. TopicCommand runs in its own small JVM.
cluster_isr_wait() {
  local deadline=$((SECONDS + KAFKA_ISR_TIMEOUT_S)) out
  while :; do
    if out="$(java -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.rootLogger.level=error -cp "$LIB_DIR/*" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cluster_bootstrap)" --describe --under-replicated-partitions 2>/dev/null)"; then
      if [[ -z "$(echo "$out" | grep -E 'Partition:')" ]]; then log "no under-replicated partitions"; return 0; fi
    fi
    if (( SECONDS > deadline )); then log "partitions still under-replicated after ${KAFKA_ISR_TIMEOUT_S}s:"; echo "$out" | head -n 20 >&2; return 1; fi
    sleep 1
  done
}

# Moves the leadership of partitions to their preferred replica (the first of the replica
# list), as Kafka's own tool does it: tests reorder a partition's replicas, then elect.
cluster_elect_preferred() {
  local topic="$1" partition="$2"
  [[ -n "$topic" && "$partition" =~ ^[0-9]+$ ]] || { log "usage: cluster-elect-preferred <topic> <partition>"; exit 2; }
  java -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.rootLogger.level=error -cp "$LIB_DIR/*" \
    org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$(cluster_bootstrap)" \
    --election-type PREFERRED --topic "$topic" --partition "$partition" >&2
}

stop_node() {
  local n="$1" how="${2:-TERM}" pid
  if ! pid="$(node_pid "$n")"; then log "node $n not running"; rm -f "$(node_dir "$n")/kafka.pid"; return 0; fi
  kill "-$how" "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "node $n: no clean shutdown after 30s, killing $pid"; kill -KILL "$pid"; fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$(node_dir "$n")/kafka.pid"
  log "node $n stopped (SIG$how)"
}

cluster_start() {
  install
  mkdir -p "$KAFKA_CLUSTER_DIR"
  [[ -f "$KAFKA_CLUSTER_DIR/cluster.id" ]] || random_cluster_id >"$KAFKA_CLUSTER_DIR/cluster.id"
  # All at once: a node waits for a quorum (2 of 3 voters) before it can start serving, and the
  # first run's format (a JVM each) takes seconds per node on a busy 2-core machine.
  local pids=()
  for n in "${CLUSTER_NODES[@]}"; do launch_node "$n" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || { log "a node failed to launch"; cluster_stop; exit 1; }; done
  for n in "${CLUSTER_NODES[@]}"; do wait_node_ready "$n" || { cluster_stop; exit 1; }; done
  cluster_isr_wait
  log "cluster ready"
  cluster_bootstrap
}

# A cluster id of the form `kafka-storage.sh random-uuid` prints (16 random bytes, URL-safe
# base64 without padding, never starting with "-"), without a JVM start of its own: that takes
# seconds of CPU on a busy 2-core machine, before every first start of a broker.
random_cluster_id() {
  local id
  while id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')" && [[ "$id" == -* ]]; do :; done
  echo "$id"
}

cluster_stop() {
  local pids=()
  for n in "${CLUSTER_NODES[@]}"; do stop_node "$n" TERM & pids+=($!); done
  wait "${pids[@]}"
  log "cluster stopped"
}

cluster_status() {
  local up=0 pid
  for n in "${CLUSTER_NODES[@]}"; do
    if pid="$(node_pid "$n")"; then log "node $n running (pid $pid) on 127.0.0.1:$(node_port "$n")"; up=$((up + 1))
    else log "node $n not running"; fi
  done
  cluster_bootstrap
  (( up == ${#CLUSTER_NODES[@]} ))
}

cluster_start_node() {
  check_node_id "${1:-}"
  [[ -f "$KAFKA_CLUSTER_DIR/cluster.id" ]] || { log "no cluster in $KAFKA_CLUSTER_DIR: run cluster-start first"; exit 1; }
  launch_node "$1"
  wait_node_ready "$1" || exit 1
  [[ "${2:-}" == "--no-isr-wait" ]] || cluster_isr_wait
}

cluster_stop_node() {
  check_node_id "${1:-}"
  case "${2:-}" in
    "") stop_node "$1" TERM ;;
    --kill) stop_node "$1" KILL ;;
    *) log "unknown option '$2' (expected --kill)"; exit 2 ;;
  esac
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  cluster-start) cluster_start ;;
  cluster-stop) cluster_stop ;;
  cluster-status) cluster_status ;;
  cluster-start-node) cluster_start_node "${2:-}" "${3:-}" ;;
  cluster-stop-node) cluster_stop_node "${2:-}" "${3:-}" ;;
  cluster-isr-wait) cluster_isr_wait ;;
  cluster-elect-preferred) cluster_elect_preferred "${2:-}" "${3:-}" ;;
  *) echo "usage: $0 install|start|stop|status|cluster-start|cluster-stop|cluster-status|cluster-start-node N [--no-isr-wait]|cluster-stop-node N [--kill]|cluster-isr-wait" >&2; exit 2 ;;
esac
