#!/usr/bin/env bash
# `make up`: the whole of switchyard on this machine. Starts the broker (durable, under .data/),
# applies the topic catalog, then runs `switchyard up`: schema registry, the demo config, every
# stage, a carrier simulator, a webhook inbox and the ingress. Ctrl-C stops everything,
# broker included.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/broker.env

echo "building switchyard (release; the first build takes a few minutes)"
cargo build --release -p switchyard
SWITCHYARD=target/release/switchyard
export KAFKA_BROKERS=127.0.0.1:$BROKER_PORT

infra/broker.sh start
trap 'infra/broker.sh stop' EXIT
$SWITCHYARD topics apply | tail -1
$SWITCHYARD --metrics-addr 127.0.0.1:9464 up --config infra/demo-config.toml --history "$DATA_DIR/history.db"
