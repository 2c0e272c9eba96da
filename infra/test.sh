#!/usr/bin/env bash
# `make test`'s test run: one Apache Kafka for the whole run in a throwaway directory (each test
# uses its own namespace on it; tests that crash or restart a broker start their own), one
# Apache Cassandra 5.0 beside it (the CQL store's stand-in for ScyllaDB; each test uses its own
# keyspace), then every test of the workspace. Both stop when the run ends, however it ends.
# SWITCHYARD_SKIP_CQL=1 starts no Cassandra (the CQL tests then say they were skipped);
# otherwise a Cassandra that does not start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d -t switchyard-test-kafka.XXXXXX)
port=$(free_port)
controller=$(free_port)
kafka() { DATA_DIR=$dir BROKER_PORT=$port CONTROLLER_PORT=$controller WATCH_PID=$$ infra/kafka.sh "$@"; }
cql_dir=$dir/cassandra
cql_port=$(free_port)
storage_port=$(free_port)
jmx_port=$(free_port)
cql() {
    CASSANDRA_DIR=$cql_dir CQL_PORT=$cql_port STORAGE_PORT=$storage_port JMX_PORT=$jmx_port \
        WATCH_PID=$$ infra/cassandra.sh "$@"
}
skip_cql=${SWITCHYARD_SKIP_CQL:-0}
cql_start=
cleanup() {
    # A start still under way (the build failed first) is cut short, then the node stopped.
    if [ -n "$cql_start" ]; then kill "$cql_start" 2>/dev/null || true; wait "$cql_start" 2>/dev/null || true; fi
    # Its data is thrown away: no drain on the way out.
    if [ "$skip_cql" != 1 ]; then CASSANDRA_STOP_TIMEOUT=0 cql stop >/dev/null || true; fi
    kafka stop >/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
if [ "$skip_cql" != 1 ]; then
    # Cassandra takes 10-30 s to listen: it starts while the build runs.
    cql start >"$dir/cassandra-start.out" 2>&1 &
    cql_start=$!
fi
# Tests run the `switchyard` binary as role processes: build it (cargo test alone may not).
cargo build --workspace --bins
kafka start
if [ "$skip_cql" != 1 ]; then
    if ! wait "$cql_start"; then
        cql_start=
        echo "test: Cassandra (the local CQL server) did not start; SWITCHYARD_SKIP_CQL=1 runs without it" >&2
        cat "$dir/cassandra-start.out" >&2
        exit 1
    fi
    cql_start=
    cat "$dir/cassandra-start.out"
    export SWITCHYARD_TEST_CQL=127.0.0.1:$cql_port
else
    echo "test: SWITCHYARD_SKIP_CQL=1: no Cassandra, the CQL tests skip"
fi
SWITCHYARD_TEST_BROKERS=127.0.0.1:$port cargo test --workspace --all-targets "$@"
