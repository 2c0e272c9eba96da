# switchyard — the two commands a person needs: `make up` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
export TANSU_BIN ?= $(HOME)/.cache/switchyard/tansu-0.6.0/bin/tansu

.PHONY: setup build test unit lint fmt up down broker-start broker-stop bench clean

## setup: install build-essential, the local broker and the Python test client (once per machine)
setup:
	@infra/setup.sh

build:
	$(CARGO) build --workspace --all-targets

## test: setup, lint, then every test (unit, property, and integration on a real broker)
test: setup lint
	$(CARGO) test --workspace --all-targets

## unit: tests that need no broker
unit:
	$(CARGO) test -p switchyard-schemas -p switchyard-topics -p switchyard-runtime -p switchyard-schema-registry

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## up: run switchyard on this machine (broker with durable storage under .data/, topics, registry)
up: setup
	@infra/up.sh

## down: stop the broker started by `make up`
down:
	@infra/broker.sh stop

broker-start:
	@infra/broker.sh start

broker-stop:
	@infra/broker.sh stop

clean:
	$(CARGO) clean
	rm -rf .data

## bench: end-to-end throughput and latency next to the broker's raw rate (release build)
bench: setup
	$(CARGO) run --release -q -p switchyard-tests --bin bench -- $(BENCH_ARGS)
