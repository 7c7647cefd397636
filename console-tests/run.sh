#!/usr/bin/env bash
# The console's browser tests: installs Debian's Chromium when missing and
# the pinned playwright-core from the lockfile, builds the signet binary,
# and runs the tests against a real `signet serve`.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
npm ci --no-audit --no-fund --loglevel=error
if [ -z "${SIGNET_BIN:-}" ]; then
  (cd .. && cargo build -p signet --quiet)
fi
node --test console.test.mjs
