"""Shared helpers: the repository's vectors, read at test time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signet_sdk import Key, KeyRing, TaskEnvelope

from signet_server import BIN, Server

SDK = Path(__file__).resolve().parent.parent
VECTORS = SDK / "../../docs/vectors/task-envelope.json"
WYCHEPROOF_ED25519 = SDK / "../../vectors/wycheproof/ed25519_test.json"
#: signet-sign's config.rs, whose PROGRAM_VARIABLES the SDK copies.
RUST_CONFIG = SDK / "../../crates/signet-sign/src/config.rs"


def load_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def envelope_from(fields: dict[str, Any]) -> TaskEnvelope:
    return TaskEnvelope(
        id=fields["id"],
        queue=fields["queue"],
        name=fields["name"],
        args=bytes.fromhex(fields["args_hex"]),
        headers=fields["headers"],
        created_at_ms=fields["created_at_ms"],
        not_before_ms=fields["not_before_ms"],
        expires_at_ms=fields["expires_at_ms"],
        max_attempts=fields["max_attempts"],
        callback_url=fields["callback_url"],
    )


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return load_vectors()


@pytest.fixture(scope="session")
def hmac_key(vectors: dict[str, Any]) -> Key:
    k = vectors["hmac_key"]
    return Key.hmac(k["id"], bytes.fromhex(k["secret_hex"]))


@pytest.fixture(scope="session")
def ed_key(vectors: dict[str, Any]) -> Key:
    k = vectors["ed25519_key"]
    return Key.ed25519_private(k["id"], bytes.fromhex(k["seed_hex"]))


@pytest.fixture()
def sample() -> TaskEnvelope:
    return envelope_from(load_vectors()["vectors"][1]["envelope"])


def hmac_ring(key: Key) -> KeyRing:
    return KeyRing.single(key)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `signet serve` (SIGNET_BIN) shared by a test module."""
    if not BIN:
        pytest.skip("SIGNET_BIN is not set; point it at the signet binary to run this test")
    srv = Server(tmp_path_factory.mktemp("signet"))
    try:
        yield srv
    finally:
        srv.stop()
