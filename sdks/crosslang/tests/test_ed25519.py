"""Item 6 of the matrix: verify-only consumers. The server and the producer
hold Ed25519 private keys; every consumer holds only ed-1's public key
(`SIGNET_SIGNING_PUBLIC_KEYS`, no key file) and runs what ed-1 signed. A
task signed by ed-2, a key the server accepts but the consumers' ring lacks,
is dead `signature-invalid` with detail `unknown-key: …` and never runs."""

from __future__ import annotations

import base64
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from signet_server import BIN, Server

from langs import CONSUMERS, Keys, consume, expected, item_for, need, produce, start_server, wait_all


def generate(key_id: str) -> Keys:
    """`signet keys generate --algorithm ed25519`: the variable lines it prints."""
    out = subprocess.run([BIN, "keys", "generate", "--algorithm", "ed25519", "--id", key_id],
                         capture_output=True, text=True, timeout=60, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


class Ed:
    def __init__(self, root: Path) -> None:
        one, two = generate("ed-1"), generate("ed-2")
        private = "SIGNET_SIGNING_PRIVATE_KEYS"
        #: The server knows both keys (it checks every producer's signature);
        #: the master key seals the push endpoints' target secrets.
        self.server = start_server(root, {
            "SIGNET_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "SIGNET_SIGNING_ALGORITHM": "ed25519",
            private: f"{one[private]},{two[private]}",
            "SIGNET_SIGNING_ACTIVE_KEY": "ed-1",
        })
        #: The producer signs with ed-1, a rogue producer with ed-2.
        self.producer: Keys = {**one}
        self.rogue: Keys = {**two}
        #: The consumers get ed-1's public key, nothing else.
        self.consumer: Keys = {"SIGNET_SIGNING_PUBLIC_KEYS": one["SIGNET_SIGNING_PUBLIC_KEYS"]}
        assert "ed-1:" in self.consumer["SIGNET_SIGNING_PUBLIC_KEYS"]


@pytest.fixture(scope="module")
def ed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ed]:
    if not BIN:
        pytest.skip("SIGNET_BIN is not set; point it at the signet binary to run the matrix")
    setup = Ed(tmp_path_factory.mktemp("ed25519"))
    try:
        yield setup
    finally:
        setup.server.stop()


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_a_verify_only_consumer_runs_ed25519_tasks(ed: Ed, tmp_path: Path, consumer: str) -> None:
    need(consumer)
    server: Server = ed.server
    queue = f"ed-{consumer}"
    good = [item_for(consumer, queue, f"ed1-{n}") for n in range(2)]
    rogue = item_for(consumer, queue, "ed2")
    views = produce("python", server, ed.producer, good)
    [rogue_view] = produce("python", server, ed.rogue, [rogue])
    assert {(v["signature"]["alg"], v["signature"]["key_id"]) for v in views} == {("ed25519", "ed-1")}
    assert rogue_view["signature"]["key_id"] == "ed-2"
    with consume(consumer, server, queue, ed.consumer, tmp_path) as c:
        *done, dead = wait_all(server, [v["id"] for v in views] + [rogue_view["id"]], c)
    assert [d["state"] for d in done] == ["succeeded"] * 2, done
    assert [d["result"] for d in done] == [expected(consumer, i, "ed-1") for i in good]
    assert dead["state"] == "dead", dead
    assert dead["dead_reason"] == "signature-invalid"
    assert dead["dead_detail"].startswith("unknown-key"), dead["dead_detail"]
    assert not c.ran_task(rogue, rogue_view["id"])
    assert len(c.ran()) == 2
