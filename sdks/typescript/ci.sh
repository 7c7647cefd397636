#!/usr/bin/env bash
# CI for the TypeScript SDK: installs the pinned dev dependencies from
# package-lock.json and runs the tests (tsc, then node --test on the output).
# Set SIGNET_BIN to the signet binary to include the tests against a real
# server (the cross-check with the Rust side, producer, worker, push helper
# and the README's server examples); without it they are skipped and say why.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

node -e 'const major = Number(process.versions.node.split(".")[0]);
if (major < 20) { console.error(`the TypeScript SDK needs Node 20 or newer; this is ${process.version}`); process.exit(1); }'

if [[ -z "${SIGNET_BIN:-}" ]]; then
  echo "ci.sh: SIGNET_BIN is not set; the tests against a real signet (cross-check, producer, worker, push, README examples) are skipped" >&2
fi

rm -rf dist
npm ci --ignore-scripts --no-audit --no-fund
npm test
