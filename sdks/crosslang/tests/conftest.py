"""The matrix reuses the Python SDK's real-server harness
(sdks/python/tests/signet_server.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "tests"))

from signet_server import BIN, Server  # noqa: E402

from langs import start_server  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `signet serve` (SIGNET_BIN) on a temporary SQLite store with its
    own key file, shared by a test module."""
    if not BIN:
        pytest.skip("SIGNET_BIN is not set; point it at the signet binary to run the matrix")
    srv = start_server(tmp_path_factory.mktemp("signet"))
    try:
        yield srv
    finally:
        srv.stop()
