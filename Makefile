# switchyard — the two commands a person needs: `make up` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build test unit lint fmt up down kafka-start kafka-stop cassandra-start cassandra-stop bench bench-history clean api-check

## setup: install build-essential, Apache Kafka and Cassandra 5.0 (Maven Central jars), the Python test client and the SMSC simulator (once per machine)
setup:
	@infra/setup.sh
	@infra/install-smsc.sh

build:
	$(CARGO) build --workspace --all-targets

## test: setup, lint, then every test (unit, property, and integration on Apache Kafka and Cassandra)
test: setup lint
	@infra/test.sh

## unit: tests that need no broker
unit:
	$(CARGO) test -p switchyard-schemas -p switchyard-topics -p switchyard-runtime -p switchyard-schema-registry

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## up: run switchyard on this machine (Kafka with its log under .data/, topics, registry, every role)
up: setup
	@infra/up.sh

## down: stop the Kafka started by `make up`
down:
	@infra/kafka.sh stop

kafka-start:
	@infra/kafka.sh start

kafka-stop:
	@infra/kafka.sh stop

## cassandra-start: a local Cassandra 5.0 (CQL on 127.0.0.1:9042, data under .data/cassandra)
cassandra-start:
	@infra/cassandra.sh start

cassandra-stop:
	@infra/cassandra.sh stop

clean:
	$(CARGO) clean
	rm -rf .data

## api-check: schemathesis (--checks all) against the ingress of a running `make up`
api-check: setup
	.venv/bin/st run http://127.0.0.1:8080/openapi.json --checks all \
	    -H 'Authorization: Bearer sk-demo-0123456789'

## bench: end-to-end throughput and latency next to the broker's raw rate (release build); BENCH_ARGS="--path carrier" for HTTP → SMPP → signed webhook
bench: setup
	$(CARGO) run --release -q -p switchyard-tests --bin bench -- $(BENCH_ARGS)

## bench-history: 1M history events into each engine (SQLite, CQL on its own Cassandra or $SWITCHYARD_TEST_CQL): write rate, p50/p99 of every query
bench-history: setup
	$(CARGO) run --release -q -p switchyard-tests --bin bench_history -- $(BENCH_ARGS)
