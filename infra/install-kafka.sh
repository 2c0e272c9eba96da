#!/usr/bin/env bash
# Install Apache Kafka (broker + KRaft controller) from Maven Central jars into a versioned
# folder outside the repo, once per machine. Skipped when that version is already complete.
set -euo pipefail
INFRA=$(cd "$(dirname "$0")" && pwd)
source "$INFRA/kafka.env"

if ! command -v java >/dev/null; then
    echo "setup: Java 17 or later is required (apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [ -z "$java_major" ] || [ "${java_major%%.*}" -lt 17 ]; then
    echo "setup: Kafka $KAFKA_VERSION needs Java 17 or later; found '${java_major:-none}'" >&2
    exit 1
fi

if [ -f "$KAFKA_HOME/.complete" ]; then
    echo "setup: kafka $KAFKA_VERSION present at $KAFKA_HOME"
    exit 0
fi
if ! command -v mvn >/dev/null; then
    echo "setup: Maven is required to fetch Kafka's jars (apt-get install maven)" >&2
    exit 1
fi
echo "setup: fetching kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIB"
rm -rf "$KAFKA_LIB"
mkdir -p "$KAFKA_LIB"
KAFKA_VERSION=$KAFKA_VERSION mvn -q -B -Dstyle.color=never -f "$INFRA/kafka/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB"
touch "$KAFKA_HOME/.complete"
echo "setup: kafka $KAFKA_VERSION installed ($(ls "$KAFKA_LIB" | wc -l) jars)"
