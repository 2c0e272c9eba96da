#!/usr/bin/env bash
# Start, stop or check a single-node Apache Cassandra 5.0 on 127.0.0.1: the local stand-in for
# ScyllaDB (the CQL store), speaking the same CQL native protocol.
#   infra/cassandra.sh start     write cassandra.yaml into $CASSANDRA_DIR, start, wait until CQL serves
#   infra/cassandra.sh stop      stop it by pid (SIGTERM, then SIGKILL after CASSANDRA_STOP_TIMEOUT,
#                                20 s; 0: SIGKILL at once, for data that is thrown away)
#   infra/cassandra.sh status
# Settings (environment): CASSANDRA_DIR (data and log; default .data/cassandra), CQL_PORT (9042),
# STORAGE_PORT (7000), JMX_PORT (7199, local only), WATCH_PID (stop Cassandra when that process
# ends: test harnesses), CASSANDRA_HEAP (512m), CASSANDRA_START_TIMEOUT (seconds, 180).
set -euo pipefail
INFRA=$(cd "$(dirname "$0")" && pwd)
source "$INFRA/cassandra.env"
PID_FILE=$CASSANDRA_DIR/cassandra.pid
LOG_FILE=$CASSANDRA_DIR/cassandra.log
CONFIG=$CASSANDRA_DIR/cassandra.yaml

# Alive and not a zombie (a killed JVM whose parent is gone may wait to be reaped).
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }
running() { [ -f "$PID_FILE" ] && alive "$(cat "$PID_FILE")"; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
    sed -e "s|@CQL_PORT@|$CQL_PORT|g" -e "s|@STORAGE_PORT@|$STORAGE_PORT|g" \
        -e "s|@DATA_DIR@|$CASSANDRA_DIR|g" "$INFRA/cassandra/cassandra.yaml" >"$CONFIG"
}

start() {
    mkdir -p "$CASSANDRA_DIR"
    CASSANDRA_DIR=$(cd "$CASSANDRA_DIR" && pwd)
    if running; then echo "cassandra already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$CQL_PORT"; return; fi
    for port in "$CQL_PORT" "$STORAGE_PORT" "$JMX_PORT"; do
        # A node killed a moment ago may still hold its port for a little while.
        for _ in $(seq 1 50); do answers "$port" || break; sleep 0.1; done
        if answers "$port"; then echo "port $port is taken by another process" >&2; exit 1; fi
    done
    [ -f "$CASSANDRA_HOME/.complete" ] || { echo "no Cassandra at $CASSANDRA_HOME: run make setup" >&2; exit 1; }
    write_config
    mkdir -p "$CASSANDRA_DIR/tmp"
    local opts=()
    while read -r line; do
        case "$line" in ''|'#'*) ;; *) read -ra words <<<"$line"; opts+=("${words[@]}") ;; esac
    done <"$INFRA/cassandra/jvm17-server.options"
    local heap=${CASSANDRA_HEAP:-512m}
    opts+=("-Xms$heap" "-Xmx$heap" -Xss256k -XX:+UseThreadPriorities -XX:+PerfDisableSharedMem
        -XX:+ExitOnOutOfMemoryError
        -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true -Dchronicle.analytics.disable=true
        "-javaagent:$CASSANDRA_LIB/$(cd "$CASSANDRA_LIB" && ls jamm-*.jar | head -1)"
        "-Dcassandra.config=file://$CONFIG" "-Dcassandra.storagedir=$CASSANDRA_DIR"
        "-Dcassandra.logdir=$CASSANDRA_DIR" "-Dlogback.configurationFile=$INFRA/cassandra/logback.xml"
        -Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0
        -Dcassandra.superuser_setup_delay_ms=0 "-Dcassandra.jmx.local.port=$JMX_PORT"
        "-Djna.tmpdir=$CASSANDRA_DIR/tmp" "-Djava.io.tmpdir=$CASSANDRA_DIR/tmp")
    # Cassandra mlockall()s its memory: run as root (CI, sandboxes) that pins the whole heap and
    # more (3 GB locked, 1 GB resident). A development node needs no pinning: without
    # CAP_IPC_LOCK the call fails on the memlock limit, and Cassandra just says so and goes on.
    local unpinned=()
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then unpinned=(setpriv --bounding-set=-ipc_lock); fi
    # setsid: its own session, so a Ctrl-C meant for a foreground process does not stop it;
    # `stop` (or the test harness's watchdog) stops it.
    local log_from; log_from=$(($(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0) + 1))
    setsid "${unpinned[@]}" java "${opts[@]}" -cp "$INFRA/cassandra:$CASSANDRA_LIB/*" org.apache.cassandra.service.CassandraDaemon \
        >>"$LOG_FILE" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    if [ -n "${WATCH_PID:-}" ]; then
        # The harness may die without stopping us: stop when it is gone.
        setsid bash -c "while [ -d /proc/$WATCH_PID ] && [ -d /proc/$pid ]; do sleep 1; done; kill -9 $pid 2>/dev/null" \
            >/dev/null 2>&1 </dev/null &
    fi
    local timeout=${CASSANDRA_START_TIMEOUT:-180}
    for _ in $(seq 1 $((timeout * 10))); do
        if tail -c "+$log_from" "$LOG_FILE" 2>/dev/null | grep -q "Starting listening for CQL clients" && answers "$CQL_PORT"; then
            echo "cassandra $CASSANDRA_VERSION up on 127.0.0.1:$CQL_PORT (pid $pid, data $CASSANDRA_DIR)"
            return
        fi
        running || { echo "cassandra exited; see $LOG_FILE" >&2; tail -c "+$log_from" "$LOG_FILE" | tail -30 >&2; exit 1; }
        sleep 0.1
    done
    echo "cassandra did not start within $timeout s; see $LOG_FILE" >&2
    tail -c "+$log_from" "$LOG_FILE" | tail -30 >&2
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    exit 1
}

stop() {
    if ! running; then echo "cassandra not running"; rm -f "$PID_FILE"; return; fi
    local pid; pid=$(cat "$PID_FILE")
    local grace=${CASSANDRA_STOP_TIMEOUT:-20}
    if [ "$grace" -gt 0 ]; then kill "$pid"; fi
    for _ in $(seq 1 $((grace * 10))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; fi
    rm -f "$PID_FILE"
    echo "cassandra stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then echo "running (pid $(cat "$PID_FILE"), CQL on 127.0.0.1:$CQL_PORT)"; else echo "stopped"; exit 3; fi ;;
    *) echo "usage: $0 start | stop | status" >&2; exit 2 ;;
esac
