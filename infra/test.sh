#!/usr/bin/env bash
# `make test`'s test run: one Apache Kafka for the whole run in a throwaway directory (each test
# uses its own namespace on it; tests that crash or restart a broker start their own), then
# every test of the workspace. The broker stops when the run ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d -t switchyard-test-kafka.XXXXXX)
port=$(free_port)
controller=$(free_port)
kafka() { DATA_DIR=$dir BROKER_PORT=$port CONTROLLER_PORT=$controller WATCH_PID=$$ infra/kafka.sh "$@"; }
trap 'kafka stop >/dev/null; rm -rf "$dir"' EXIT
# Tests run the `switchyard` binary as role processes: build it (cargo test alone may not).
cargo build --workspace --bins
kafka start
SWITCHYARD_TEST_BROKERS=127.0.0.1:$port cargo test --workspace --all-targets "$@"
