#!/usr/bin/env bash
# Install everything switchyard needs on a fresh machine; skips what is already there.
#   - Debian's build-essential (g++ and make build the bundled librdkafka)
#   - Java 17+ and Maven, checked (Apache Kafka and Cassandra run on the JVM; its jars come from Maven Central)
#   - Apache Kafka from Maven Central, once per machine, outside the repo (infra/install-kafka.sh)
#   - Apache Cassandra 5.0 (the local CQL server standing in for ScyllaDB) the same way
#     (infra/install-cassandra.sh)
#   - a Python virtualenv with Confluent's client (cross-client test) and schemathesis (API contract test)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v g++ >/dev/null && command -v make >/dev/null || missing+=(build-essential)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

infra/install-kafka.sh
infra/install-cassandra.sh

if ! .venv/bin/python -c "import confluent_kafka, fastavro, schemathesis" 2>/dev/null; then
    echo "setup: creating .venv with tests/python/requirements.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
fi
echo "setup: ready"
