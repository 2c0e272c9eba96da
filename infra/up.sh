#!/usr/bin/env bash
# `make up`: the whole of switchyard on this machine. Starts Apache Kafka (one KRaft node, its
# log under .data/ so a second `make up` finds everything again), applies the topic catalog,
# then runs `switchyard up`: schema registry, the demo config, every stage, a carrier
# simulator, an SMSC simulator (node, tests/smsc), a webhook inbox and the ingress. Ctrl-C stops everything, Kafka included.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/kafka.env

echo "building switchyard (release; the first build takes a few minutes)"
cargo build --release -p switchyard
SWITCHYARD=target/release/switchyard
export KAFKA_BROKERS=127.0.0.1:$BROKER_PORT

if [ ! -d tests/smsc/node_modules/smpp ] && command -v node >/dev/null; then
  infra/install-smsc.sh || echo "SMSC simulator not installed: the SMPP demo sender will wait for it"
fi

infra/kafka.sh start
trap 'infra/kafka.sh stop' EXIT
$SWITCHYARD topics apply | tail -1
$SWITCHYARD --metrics-addr 127.0.0.1:9464 up --config infra/demo-config.toml --history "$DATA_DIR/history.db"
