#!/usr/bin/env bash
# Install Apache Cassandra 5.0 (the local stand-in for ScyllaDB, the CQL store) from Maven Central
# jars into a versioned folder outside the repo, once per machine. Skipped when that version is
# already complete.
set -euo pipefail
INFRA=$(cd "$(dirname "$0")" && pwd)
source "$INFRA/cassandra.env"

if ! command -v java >/dev/null; then
    echo "setup: Java 17 or later is required (apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [ -z "$java_major" ] || [ "${java_major%%.*}" -lt 17 ]; then
    echo "setup: Cassandra $CASSANDRA_VERSION needs Java 17 (11 works too, not used here); found '${java_major:-none}'" >&2
    exit 1
fi

if [ -f "$CASSANDRA_HOME/.complete" ]; then
    echo "setup: cassandra $CASSANDRA_VERSION present at $CASSANDRA_HOME"
    exit 0
fi
if ! command -v mvn >/dev/null; then
    echo "setup: Maven is required to fetch Cassandra's jars (apt-get install maven)" >&2
    exit 1
fi
echo "setup: fetching cassandra $CASSANDRA_VERSION jars from Maven Central into $CASSANDRA_LIB"
rm -rf "$CASSANDRA_LIB"
mkdir -p "$CASSANDRA_LIB"
CASSANDRA_VERSION=$CASSANDRA_VERSION mvn -q -B -Dstyle.color=never -f "$INFRA/cassandra/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CASSANDRA_LIB"
touch "$CASSANDRA_HOME/.complete"
echo "setup: cassandra $CASSANDRA_VERSION installed ($(ls "$CASSANDRA_LIB" | wc -l) jars)"
