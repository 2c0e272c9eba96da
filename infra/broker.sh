#!/usr/bin/env bash
# Start, stop or check the local broker on 127.0.0.1.
#   infra/broker.sh start [--memory]   durable sqlite storage under .data/ (or memory)
#   infra/broker.sh stop               stop it by pid
#   infra/broker.sh status
set -euo pipefail
source "$(dirname "$0")/broker.env"
PID_FILE=$DATA_DIR/broker.pid
LOG_FILE=$DATA_DIR/broker.log

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; }

start() {
    # Tansu resolves the sqlite path against its working directory: run it in $DATA_DIR.
    local engine="sqlite://broker.db"
    [ "${1:-}" = "--memory" ] && engine="memory://tansu/"
    mkdir -p "$DATA_DIR"
    if running; then echo "broker already running (pid $(cat "$PID_FILE")) on 127.0.0.1:$BROKER_PORT"; return; fi
    if answers; then echo "port $BROKER_PORT is taken by another process" >&2; exit 1; fi
    [ -x "$TANSU_BIN" ] || { echo "no broker at $TANSU_BIN: run make setup" >&2; exit 1; }
    local url="tcp://127.0.0.1:$BROKER_PORT"
    # setsid: its own session, so a Ctrl-C meant for switchyard does not stop the broker
    # before switchyard has committed; `stop` (or make up's exit) stops it afterwards.
    (cd "$DATA_DIR" && exec setsid "$TANSU_BIN" broker --listener-url "$url" --advertised-listener-url "$url" \
        --storage-engine "$engine" >>"$LOG_FILE" 2>&1) &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
        if answers; then echo "broker up on 127.0.0.1:$BROKER_PORT ($engine, pid $(cat "$PID_FILE"))"; return; fi
        running || { echo "broker exited; see $LOG_FILE" >&2; tail -5 "$LOG_FILE" >&2; exit 1; }
        sleep 0.1
    done
    echo "broker did not answer within 10 s; see $LOG_FILE" >&2
    exit 1
}

stop() {
    if ! running; then echo "broker not running"; rm -f "$PID_FILE"; return; fi
    local pid; pid=$(cat "$PID_FILE")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$PID_FILE"
    echo "broker stopped"
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) stop ;;
    status) if running; then echo "running (pid $(cat "$PID_FILE"))"; else echo "stopped"; exit 3; fi ;;
    *) echo "usage: $0 start [--memory] | stop | status" >&2; exit 2 ;;
esac
