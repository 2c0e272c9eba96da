#!/usr/bin/env bash
# Start, stop or check a single-node Apache Kafka (KRaft: broker + controller) on 127.0.0.1.
#   infra/kafka.sh start     format $DATA_DIR/kafka once, start, wait until it serves
#   infra/kafka.sh stop      stop it by pid (SIGTERM, then SIGKILL after 20 s)
#   infra/kafka.sh status
# Settings (environment): DATA_DIR (default .data/), BROKER_PORT (9092), CONTROLLER_PORT
# (9093), WATCH_PID (stop the broker when that process ends: test harnesses), KAFKA_HEAP,
# KAFKA_JVM_GC (the JVM garbage collector options, replacing the serial collector below).
set -euo pipefail
INFRA=$(cd "$(dirname "$0")" && pwd)
source "$INFRA/kafka.env"
LOG_DIR=$DATA_DIR/kafka
PID_FILE=$DATA_DIR/kafka.pid
LOG_FILE=$DATA_DIR/kafka.log
PROPERTIES=$DATA_DIR/server.properties

# Alive and not a zombie (a killed broker whose parent is gone may wait to be reaped).
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }
running() { [ -f "$PID_FILE" ] && alive "$(cat "$PID_FILE")"; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_properties() {
    cat >"$PROPERTIES" <<PROPS
# Written by infra/kafka.sh: one KRaft node on 127.0.0.1.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$BROKER_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$BROKER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOG_DIR
num.partitions=3
# Topics come from the catalog (switchyard topics apply), never from a typo.
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
# Compaction on small topics shows within seconds (config tables, changelogs).
log.cleaner.backoff.ms=2000
PROPS
}

start() {
    mkdir -p "$DATA_DIR"
    if running; then echo "kafka already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$BROKER_PORT"; return; fi
    for port in "$BROKER_PORT" "$CONTROLLER_PORT"; do
        # A broker killed a moment ago may still hold its port for a little while.
        for _ in $(seq 1 50); do answers "$port" || break; sleep 0.1; done
        if answers "$port"; then echo "port $port is taken by another process" >&2; exit 1; fi
    done
    [ -f "$KAFKA_HOME/.complete" ] || { echo "no Kafka at $KAFKA_HOME: run make setup" >&2; exit 1; }
    write_properties
    # One node on a small box (2 cores): the serial collector spends least CPU (decision 0030:
    # Kafka CPU 27.0 s against G1's 29.9 s a 20,000-message bench run, mean of three each, and
    # steadier); a production cluster keeps Kafka's G1 settings.
    local gc=(-XX:+UseSerialGC)
    [ -n "${KAFKA_JVM_GC:-}" ] && read -r -a gc <<< "$KAFKA_JVM_GC"
    local opts=(-Xms256m "-Xmx${KAFKA_HEAP:-768m}" "${gc[@]}"
        -Djava.awt.headless=true "-Dkafka.logs.dir=$DATA_DIR"
        "-Dlog4j2.configurationFile=$INFRA/kafka/log4j2.xml")
    if [ ! -f "$LOG_DIR/meta.properties" ]; then
        local cluster
        cluster=$(java -cp "$KAFKA_LIB/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
        java "${opts[@]}" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format --standalone \
            -t "$cluster" -c "$PROPERTIES" -g >>"$LOG_FILE" 2>&1 \
            || { echo "formatting $LOG_DIR failed; see $LOG_FILE" >&2; tail -5 "$LOG_FILE" >&2; exit 1; }
    fi
    # setsid: its own session, so a Ctrl-C meant for switchyard does not stop the broker
    # before switchyard has committed; `stop` (or make up's exit) stops it afterwards.
    local log_from; log_from=$(($(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0) + 1))
    setsid java "${opts[@]}" -cp "$KAFKA_LIB/*" kafka.Kafka "$PROPERTIES" >>"$LOG_FILE" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    if [ -n "${WATCH_PID:-}" ]; then
        # The harness may die without stopping us: stop when it is gone.
        setsid bash -c "while [ -d /proc/$WATCH_PID ] && [ -d /proc/$pid ]; do sleep 1; done; kill -9 $pid 2>/dev/null" \
            >/dev/null 2>&1 </dev/null &
    fi
    for _ in $(seq 1 600); do
        if tail -c "+$log_from" "$LOG_FILE" 2>/dev/null | grep -q "Kafka Server started" && answers "$BROKER_PORT"; then
            echo "kafka $KAFKA_VERSION up on 127.0.0.1:$BROKER_PORT (pid $pid, data $LOG_DIR)"
            return
        fi
        running || { echo "kafka exited; see $LOG_FILE" >&2; tail -20 "$LOG_FILE" >&2; exit 1; }
        sleep 0.1
    done
    echo "kafka did not start within 60 s; see $LOG_FILE" >&2
    exit 1
}

stop() {
    if ! running; then echo "kafka not running"; rm -f "$PID_FILE"; return; fi
    local pid; pid=$(cat "$PID_FILE")
    kill "$pid"
    for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; fi
    rm -f "$PID_FILE"
    echo "kafka stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then echo "running (pid $(cat "$PID_FILE"))"; else echo "stopped"; exit 3; fi ;;
    *) echo "usage: $0 start | stop | status" >&2; exit 2 ;;
esac
