#!/usr/bin/env bash
# Install the Tansu broker (Kafka protocol, sqlite + memory storage) into a versioned
# directory outside the repo. Skipped when that version is already there.
set -euo pipefail
source "$(dirname "$0")/broker.env"

if [ -x "$TANSU_BIN" ] && "$TANSU_BIN" --version 2>/dev/null | grep -qx "tansu $TANSU_VERSION"; then
    echo "setup: tansu $TANSU_VERSION present at $TANSU_BIN"
    exit 0
fi
echo "setup: building tansu $TANSU_VERSION (first time on this machine: ~20 minutes)"
cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore \
    --root "$TANSU_ROOT" --quiet
"$TANSU_BIN" --version
