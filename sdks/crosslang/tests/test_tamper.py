"""Item 5 of the matrix: a task whose args were changed in the store after it
was signed is dead-lettered `signature-invalid` (detail `mismatch: …`) by
every consumer, and its handler never runs; a task beside it, untouched,
runs (so the consumer was live and verifying, not just stopped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signet_server import Server

from langs import CONSUMERS, consume, expected, item_for, key_file, need, produce, wait_all


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_args_changed_in_the_store_are_dead_and_never_run(
    server: Server, tmp_path: Path, consumer: str
) -> None:
    need(consumer)
    queue = f"tamper-{consumer}"
    good, bad = item_for(consumer, queue, "good"), item_for(consumer, queue, "bad")
    ok_view, bad_view = produce("python", server, key_file(server), [good, bad])
    # What someone with write access to the database puts there instead: a
    # task the consumer has a handler for, well-formed, not what was signed.
    evil = item_for(consumer, queue, "evil")
    server.sql("UPDATE tasks SET args = ? WHERE id = ?", json.dumps(evil.args).encode(),
               bad_view["id"])
    assert server.task(bad_view["id"])["args"] == evil.args
    with consume(consumer, server, queue, key_file(server), tmp_path) as c:
        done, dead = wait_all(server, [ok_view["id"], bad_view["id"]], c)
    key = ok_view["signature"]["key_id"]
    assert done["state"] == "succeeded", done
    assert done["result"] == expected(consumer, good, key)
    assert dead["state"] == "dead", dead
    assert dead["dead_reason"] == "signature-invalid"
    assert dead["dead_detail"].startswith("mismatch"), dead["dead_detail"]
    assert dead["result"] is None
    assert not c.ran_task(evil, bad_view["id"]) and not c.ran_task(bad, bad_view["id"])
    assert len(c.ran()) == 1
