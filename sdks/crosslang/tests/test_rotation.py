"""Item 7 of the matrix: a key rotation with work in flight, step by step as
docs/keys.md walks it, on a store whose key file every process reads.

Tasks signed with key A wait in the queue; `signet keys add` and `signet
keys activate --overlap` make B the signing key and `signet serve`
restarts; the producers (the Python SDK and `signet enqueue`, reading the
rewritten key file) now sign with B; a consumer holding A and B runs all of
them. Then the overlap ends and A is retired (`keys retire` refuses while a
task signed with A is pending; `--force` retires it anyway): a consumer with
the ring as it now is dead-letters that leftover task `unknown-key`, without
running it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from signet_sdk import load_keys

from signet_server import BIN

from langs import (
    CONSUMERS, consume, expected, item_for, key_file, need, produce, restart, start_server,
    wait_all,
)

B = "k-b"


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_rotation_with_work_in_flight(tmp_path: Path, consumer: str) -> None:
    if not BIN:
        pytest.skip("SIGNET_BIN is not set; point it at the signet binary to run the matrix")
    need(consumer)
    (tmp_path / "store").mkdir()
    server = start_server(tmp_path / "store")
    try:
        keys = key_file(server)
        ring = load_keys(keys).signing.ring
        assert ring.active is not None
        a = ring.active.id

        # Work signed with A, not run yet.
        a_items = [item_for(consumer, "rot", f"a-{n}") for n in range(2)]
        leftover = item_for(consumer, "rot-left", "a-left")
        *a_views, left_view = produce("python", server, keys, a_items + [leftover])

        # B joins the ring and signs, A overlapping; the server restarts to know it.
        server.cli("keys", "add", "--id", B)
        server.cli("keys", "activate", B, "--overlap")
        restart(server)
        b_items = [item_for(consumer, "rot", "b-python"), item_for(consumer, "rot", "b-cli")]
        b_views = (produce("python", server, keys, b_items[:1])
                   + produce("cli", server, keys, b_items[1:]))
        assert [v["signature"]["key_id"] for v in a_views + [left_view]] == [a] * 3
        assert [v["signature"]["key_id"] for v in b_views] == [B] * 2

        # A consumer that holds A and B runs both generations.
        with consume(consumer, server, "rot", keys, tmp_path / "a-and-b") as c:
            done = wait_all(server, [v["id"] for v in a_views + b_views], c)
        assert [d["state"] for d in done] == ["succeeded"] * 4, done
        assert [d["result"] for d in done] == (
            [expected(consumer, i, a) for i in a_items] + [expected(consumer, i, B) for i in b_items]
        )

        # The overlap ends; A is retired, by force since the leftover is pending.
        server.cli("keys", "activate", B)
        refused = subprocess.run(
            [BIN, "keys", "retire", a, "--database-url", server.database_url],
            env=server.env, capture_output=True, text=True, timeout=60,
        )
        assert refused.returncode != 0, refused.stdout
        assert "pending" in refused.stderr, refused.stderr
        server.cli("keys", "retire", a, "--force")
        assert [k.id for k in load_keys(keys).signing.ring.keys] == [B]

        with consume(consumer, server, "rot-left", keys, tmp_path / "b-only") as c:
            [dead] = wait_all(server, [left_view["id"]], c)
        assert dead["state"] == "dead", dead
        assert dead["dead_reason"] == "signature-invalid"
        assert dead["dead_detail"].startswith("unknown-key"), dead["dead_detail"]
        assert c.ran() == []
    finally:
        server.stop()
