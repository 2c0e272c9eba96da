#!/usr/bin/env bash
# Install everything switchyard needs on a fresh machine; skips what is already there.
#   - Debian's build-essential (g++ and make build the bundled librdkafka)
#   - the local Kafka-protocol broker (Tansu), once per machine, outside the repo
#   - a Python virtualenv with Confluent's client, for the cross-client test
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
    echo "setup: installing build-essential"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential
fi

infra/install-broker.sh

if ! .venv/bin/python -c "import confluent_kafka, fastavro" 2>/dev/null; then
    echo "setup: creating .venv with tests/python/requirements.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
echo "setup: ready"
