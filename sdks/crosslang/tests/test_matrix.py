"""Items 1–4 of the matrix: a task signed in one language is verified and run
in another. Every producer (Python SDK, TypeScript SDK, `signet enqueue`)
against every consumer (the Rust example worker on the store, the Python and
TypeScript pull workers, the Python and TypeScript push endpoints), on one
`signet serve` whose key file every process reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from signet_server import Server

from langs import (
    CONSUMERS, PRODUCERS, TEXT, Item, consume, expected, item_for, key_file, need, produce, wait_all,
)


def active_key(server: Server) -> str:
    ring = server.keys().signing.ring
    assert ring.active is not None
    key_id: str = ring.active.id
    return key_id


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_signed_in_one_language_runs_in_another(
    server: Server, tmp_path: Path, producer: str, consumer: str
) -> None:
    queue = f"m-{producer}-{consumer}"
    items = [item_for(consumer, queue, f"{producer}-{n}") for n in range(3)]
    need(consumer)
    views = produce(producer, server, key_file(server), items)
    key = active_key(server)
    assert [v["signature"]["key_id"] for v in views] == [key] * 3
    with consume(consumer, server, queue, key_file(server), tmp_path) as c:
        done = wait_all(server, [v["id"] for v in views], c)
    assert [d["state"] for d in done] == ["succeeded"] * 3, done
    assert [d["result"] for d in done] == [expected(consumer, i, key) for i in items]
    assert len(c.ran()) == 3


def test_python_producer_to_rust_text_stats(server: Server, tmp_path: Path) -> None:
    """Leg 1 with the example worker's other handler: the counts it gives are
    over the exact text the Python producer signed."""
    [view] = produce("python", server, key_file(server), [Item("m-stats", "text.stats", {"text": TEXT})])
    with consume("rust", server, "m-stats", key_file(server), tmp_path) as c:
        [done] = wait_all(server, [view["id"]], c)
    assert done["state"] == "succeeded", done
    assert done["result"] == {
        "bytes": len(TEXT.encode()), "chars": len(TEXT), "words": len(TEXT.split()),
        "lines": len(TEXT.splitlines()), "sha256": hashlib.sha256(TEXT.encode()).hexdigest(),
    }
