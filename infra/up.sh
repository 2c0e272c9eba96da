#!/usr/bin/env bash
# `make up`: the whole of switchyard on this machine. Starts the broker (durable, under .data/),
# applies the topic catalog, then runs the switchyard processes in the foreground.
# Ctrl-C stops everything, broker included.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/broker.env

cargo build --release -q -p switchyard
SWITCHYARD=target/release/switchyard
export KAFKA_BROKERS=127.0.0.1:$BROKER_PORT

infra/broker.sh start
trap 'infra/broker.sh stop' EXIT
$SWITCHYARD topics apply

echo
echo "switchyard is up:"
echo "  broker           127.0.0.1:$BROKER_PORT (data in .data/)"
echo "  schema registry  http://127.0.0.1:8081   try: curl -s http://127.0.0.1:8081/subjects"
echo "  metrics          http://127.0.0.1:9464/metrics"
echo "Ctrl-C stops everything."
echo
$SWITCHYARD --metrics-addr 127.0.0.1:9464 registry --listen 127.0.0.1:8081
