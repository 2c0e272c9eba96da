#!/usr/bin/env bash
# Install the SMSC simulator the SMPP connector's tests run against (tests/smsc: the npm `smpp`
# package's server, pinned by tests/smsc/package-lock.json), once per checkout. Needs Node.js
# and npm (Debian's nodejs and npm packages). Skipped when the locked version is installed.
set -euo pipefail
cd "$(dirname "$0")/../tests/smsc"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup: installing nodejs and npm (the SMSC simulator for the SMPP tests)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

# npm ci writes node_modules/.package-lock.json; it matches the lock file once installed.
if [ -f node_modules/.package-lock.json ] && [ -d node_modules/smpp ] \
    && node -e 'const a=require("./package-lock.json").packages, b=require("./node_modules/.package-lock.json").packages; process.exit(JSON.stringify(a["node_modules/smpp"])===JSON.stringify(b["node_modules/smpp"])?0:1)' 2>/dev/null; then
    echo "setup: SMSC simulator present (tests/smsc/node_modules)"
    exit 0
fi
echo "setup: npm ci in tests/smsc (SMSC simulator for the SMPP tests)"
npm ci --no-audit --no-fund --loglevel=error
