"""The producer against a real `signet serve`: tasks signed here are stored
with the client's signature and bytes unchanged, one by one and in
batches."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from signet_sdk import (
    ApiError,
    BatchEnqueueError,
    Client,
    ConfigError,
    EnvelopeSignature,
    Key,
    KeyRing,
    Producer,
    TaskEnvelope,
    TaskRequest,
    sign_envelope,
    verify_envelope,
)
from signet_sdk.producer import new_task_id

from signet_server import Server, needs_server


def claim_one(server: Server, queue: str) -> dict[str, object]:
    answer = Client(server.url, server.work_key).call(
        "POST", "/v1/work/claim", {"queues": [queue], "max": 1, "wait_ms": 2000}
    )
    tasks = answer["tasks"]
    assert len(tasks) == 1, answer
    task: dict[str, object] = tasks[0]
    return task


def test_task_ids_are_uuidv7() -> None:
    a, b = new_task_id(1_700_000_000_000), new_task_id(1_700_000_000_001)
    assert a.startswith("task_") and len(a) == 37 and a < b
    assert a[5 + 12] == "7"  # version nibble
    assert a[5 + 16] in "89ab"  # variant


def test_signature_and_bytes_are_stored_unchanged(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    raw = b'{"to": "ada@example.com",  "n": [1, 2.50, "gr\xc3\xbc\xc3\x9f"]}'  # spacing as written
    view = producer.enqueue(
        "mail", "email.send", raw_args=raw, headers={"X-Tenant": "acme"}, max_attempts=7,
        idempotency_key="k-1",
    )
    shown = server.task(view["id"])
    assert shown["signature"] == view["signature"]
    assert shown["headers"] == {"x-tenant": "acme"}
    # The claimed task carries the producer's bytes, and the stored
    # signature verifies over them with the producer's ring.
    claimed = claim_one(server, "mail")
    env = claimed["envelope"]
    assert isinstance(env, dict)
    assert base64.b64decode(env["args_b64"]) == raw
    assert claimed["signature"] == shown["signature"]
    envelope = TaskEnvelope(
        id=env["id"], queue=env["queue"], name=env["name"], args=raw, headers=env["headers"],
        created_at_ms=env["created_at_ms"], max_attempts=7,
    )
    ring = server.keys().signing.ring
    sig = EnvelopeSignature.from_dict(shown["signature"])
    assert verify_envelope(envelope, sig, ring) == ring.active.id  # type: ignore[union-attr]
    # HMAC is deterministic: signing the same envelope here gives the very
    # signature the server stored, so it kept the client's unchanged.
    assert sign_envelope(envelope, ring).to_dict() == shown["signature"]
    # The same idempotency key again answers the first task.
    again = producer.enqueue(
        "mail", "email.send", raw_args=raw, headers={"X-Tenant": "acme"}, max_attempts=7,
        idempotency_key="k-1",
    )
    assert again["id"] == view["id"]


def test_batch_crosses_chunks_and_keeps_order(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    items = [TaskRequest("batch", "add", {"i": i}) for i in range(1_205)]
    views = producer.enqueue_batch(items)
    assert [v["args"] for v in views] == [{"i": i} for i in range(1_205)]
    assert len({v["id"] for v in views}) == 1_205
    last = server.task(views[-1]["id"])
    assert last["signature"] == views[-1]["signature"]
    assert last["signature"]["key_id"] == server.keys().signing.ring.active.id  # type: ignore[union-attr]


def test_batch_items_keep_their_own_idempotency_keys(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    first = producer.enqueue_batch(
        [{"queue": "idem", "name": "t", "args": {"n": 1}, "idempotency_key": "a"},
         {"queue": "idem", "name": "t", "args": {"n": 2}, "idempotency_key": "b"}]
    )
    again = producer.enqueue_batch(
        [{"queue": "idem", "name": "t", "args": {"n": 1}, "idempotency_key": "a"},
         {"queue": "idem", "name": "t", "args": {"n": 3}}]
    )
    assert again[0]["id"] == first[0]["id"] and again[0]["existing"] is True
    assert again[1]["existing"] is False


def test_a_refused_chunk_names_the_item_and_keeps_earlier_chunks(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    items = [TaskRequest("chunks", "t", {"i": i}) for i in range(1_001)]
    items.append(TaskRequest("bad queue!", "t", {}))
    with pytest.raises(BatchEnqueueError) as caught:
        producer.enqueue_batch(items)
    assert caught.value.offset == 1_000
    assert len(caught.value.enqueued) == 1_000
    assert caught.value.error.status == 422
    assert "tasks[1].queue" in str(caught.value)


def test_a_key_the_server_does_not_hold_is_refused(server: Server) -> None:
    stranger = KeyRing.single(Key.hmac("stranger", b"s" * 32))
    producer = Producer(server.url, server.work_key, keys=stranger)
    with pytest.raises(ApiError) as caught:
        producer.enqueue("q", "t", {"a": 1})
    assert caught.value.status == 422
    assert "stranger" in caught.value.server_message
    assert server.work_key not in str(caught.value)


def test_errors_never_show_the_api_key(server: Server) -> None:
    bad = Producer(server.url, "sk_not_a_real_key", keys=server.keys())
    with pytest.raises(ApiError) as caught:
        bad.enqueue("q", "t", {})
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert "sk_not_a_real_key" not in str(caught.value) + repr(caught.value) + repr(bad.client)


def test_unsigned_needs_an_explicit_choice(caplog: pytest.LogCaptureFixture) -> None:
    verify_only = KeyRing.single(Key.ed25519_public("pub", base64.b64decode(
        "1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
    )))
    with pytest.raises(ConfigError, match="unsigned=True"):
        Producer("http://127.0.0.1:1", "sk_x", keys=verify_only)
    with caplog.at_level(logging.WARNING):
        Producer("http://127.0.0.1:1", "sk_x", unsigned=True)
    assert "WITHOUT a client signature" in caplog.text


def test_batch_items_with_unknown_fields_are_refused() -> None:
    producer = Producer(
        "http://127.0.0.1:1", "sk_x", keys=KeyRing.single(Key.hmac("k", b"k" * 32))
    )
    with pytest.raises(Exception, match="unknown task field.*tsak"):
        producer.enqueue_batch([{"queue": "q", "tsak": "t"}])


def test_args_that_are_not_json_are_refused_before_sending() -> None:
    producer = Producer(
        "http://127.0.0.1:1", "sk_x", keys=KeyRing.single(Key.hmac("k", b"k" * 32))
    )
    with pytest.raises(Exception, match="JSON"):
        producer.enqueue("q", "t", {"x": object()})
    with pytest.raises(Exception, match="JSON"):
        producer.enqueue("q", "t", {"x": float("nan")})


@needs_server
def test_a_batch_over_the_body_limit_is_halved_until_it_fits(tmp_path: Path) -> None:
    small = Server(tmp_path, None, "--max-body-bytes", "65536")
    try:
        producer = Producer(small.url, small.work_key, keys=small.keys())
        views = producer.enqueue_batch(TaskRequest("small", "t", {"i": i}) for i in range(600))
        assert [v["args"] for v in views] == [{"i": i} for i in range(600)]
        # One task alone over the limit cannot be split: refused, nothing stored.
        with pytest.raises(BatchEnqueueError) as caught:
            producer.enqueue_batch([TaskRequest("small", "t", "z" * 70_000)])
        assert caught.value.error.status == 413 and caught.value.enqueued == []
    finally:
        small.stop()
