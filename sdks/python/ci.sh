#!/usr/bin/env bash
# CI for the Python SDK: a virtualenv, the package with its test extras,
# mypy --strict, and pytest. From a clean checkout:
#
#   sdks/python/ci.sh
#
# SIGNET_BIN=/path/to/signet also runs the cross-checks with the Rust side
# (they are skipped, saying why, without it). PYTHON picks the interpreter
# (3.11 or newer; default python3); SIGNET_PY_VENV the virtualenv
# (default sdks/python/.venv, reused when present).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "ci.sh: $python is $("$python" --version 2>&1); the SDK needs Python 3.11 or newer (set PYTHON)" >&2
    exit 1
}

venv="${SIGNET_PY_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# Reinstall only when pyproject.toml changed since the last run in this venv.
stamp="$venv/.signet-sdk-installed"
want="$(cksum < pyproject.toml)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] \
    || ! "$venv/bin/python" -c 'import signet_sdk, pytest, mypy' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
    echo "$want" > "$stamp"
fi

if [ -n "${SIGNET_BIN:-}" ]; then
    echo "ci.sh: cross-checking with the Rust side: SIGNET_BIN=$SIGNET_BIN"
else
    echo "ci.sh: SIGNET_BIN is not set; the cross-checks with the Rust side are skipped"
fi

"$venv/bin/python" -m mypy --strict --cache-dir "$venv/.mypy_cache" src tests
# The benchmark and the examples (their frameworks, Flask and FastAPI, are
# test extras).
MYPYPATH=tests "$venv/bin/python" -m mypy --strict --cache-dir "$venv/.mypy_cache" \
    bench/bench_worker.py examples/flask_push.py examples/fastapi_push.py examples/worker_app.py
"$venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$@"
