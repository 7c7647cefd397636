"""The README's Python examples run as written. Blocks that talk to a
server (they read SIGNET_URL) run against a real `signet serve` when
SIGNET_BIN is set, with SIGNET_URL, SIGNET_API_KEY and SIGNET_KEYS_FILE
set as the README tells the reader to; the others get a signing key in the
environment, as a deployment would have."""

from __future__ import annotations

import base64
import re

import pytest

from conftest import SDK
from signet_server import BIN, Server

BLOCKS = re.findall(r"```python\n(.*?)```", (SDK / "README.md").read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(
    code: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    for name in ("SIGNET_URL", "SIGNET_API_KEY", "SIGNET_KEYS_FILE", "SIGNET_SIGNING_KEYS"):
        monkeypatch.delenv(name, raising=False)
    if "SIGNET_URL" in code:
        if not BIN:
            pytest.skip("SIGNET_BIN is not set; this example needs a running signet serve")
        server: Server = request.getfixturevalue("server")
        monkeypatch.setenv("SIGNET_URL", server.url)
        monkeypatch.setenv("SIGNET_API_KEY", server.work_key)
        monkeypatch.setenv("SIGNET_KEYS_FILE", str(server.root / "signet.keys"))
    else:
        monkeypatch.setenv("SIGNET_SIGNING_KEYS", "k1:" + base64.b64encode(b"k" * 32).decode())
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_there_are_examples() -> None:
    assert len(BLOCKS) >= 3
