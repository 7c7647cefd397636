#!/usr/bin/env bash
# CI for the cross-language conformance matrix: pytest drives the Python SDK,
# the TypeScript SDK (node ts/*.mjs), `signet enqueue` and the Rust example
# worker against a real `signet serve`. From a checkout:
#
#   SIGNET_BIN=target/debug/signet \
#   SIGNET_EXAMPLE_WORKER_BIN=target/debug/signet-example-worker sdks/crosslang/ci.sh
#
# SIGNET_BIN is required (the matrix is nothing without a server).
# SIGNET_EXAMPLE_WORKER_BIN defaults to signet-example-worker beside it.
# The Python SDK's virtualenv is reused (SIGNET_PY_VENV, default
# sdks/python/.venv; made here when missing); the TypeScript SDK is built
# (npm ci, npm run build) when its dist/ is missing or older than its src/.
# Legs whose language is missing (node, the built SDK, push queues in
# SIGNET_BIN) are skipped and say why. Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdks="$(dirname "$here")"

if [ -z "${SIGNET_BIN:-}" ]; then
    echo "ci.sh: SIGNET_BIN is not set; point it at the signet binary (cargo build -p signet;" \
        "SIGNET_BIN=\$PWD/target/debug/signet)" >&2
    exit 1
fi
SIGNET_BIN="$(cd "$(dirname "$SIGNET_BIN")" && pwd)/$(basename "$SIGNET_BIN")"
export SIGNET_BIN
if [ -n "${SIGNET_EXAMPLE_WORKER_BIN:-}" ]; then
    SIGNET_EXAMPLE_WORKER_BIN="$(cd "$(dirname "$SIGNET_EXAMPLE_WORKER_BIN")" && pwd)/$(basename "$SIGNET_EXAMPLE_WORKER_BIN")"
    export SIGNET_EXAMPLE_WORKER_BIN
fi

python="${PYTHON:-python3}"
venv="${SIGNET_PY_VENV:-$sdks/python/.venv}"
if ! "$venv/bin/python" -c 'import signet_sdk, pytest, mypy' 2>/dev/null; then
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$sdks/python[test]"
fi

ts="$sdks/typescript"
if command -v node >/dev/null 2>&1 && [ -z "${CROSSLANG_TS_SDK:-}" ]; then
    built="$ts/dist/src/index.js"
    if [ ! -f "$built" ] || [ -n "$(find "$ts/src" -name '*.ts' -newer "$built" -print -quit)" ]; then
        echo "ci.sh: building the TypeScript SDK ($ts)"
        (cd "$ts" && { [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; } \
            && npm run build --silent)
    fi
fi

cd "$here"
echo "ci.sh: SIGNET_BIN=$SIGNET_BIN"
if command -v node >/dev/null 2>&1; then
    for script in ts/*.mjs; do node --check "$script"; done
fi
MYPYPATH="$sdks/python/tests:$here/tests" "$venv/bin/python" -m mypy --strict --cache-dir "$venv/.mypy_cache" tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs tests "$@"
