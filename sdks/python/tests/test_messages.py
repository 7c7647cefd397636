"""The message publisher against a real `signet serve`: one message and
batches, idempotency keys, refusals naming the message, batches split into
several requests, and end to end, deliveries to a receiver in this test that
verifies every request with the SDK's own verify_webhook."""

from __future__ import annotations

import base64
import http.server
import json
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from signet_sdk import (
    ApiError,
    BatchPublishError,
    Client,
    MessagePublisher,
    MessageRequest,
    SignetError,
    WebhookError,
    verify_webhook,
)

from signet_server import BIN, Server, needs_server


class Receiver:
    """An HTTP server on 127.0.0.1:0 in a thread that records every request
    (path, headers, body) and answers 204."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.changed:
                    receiver.requests.append((self.path, headers, body))
                    receiver.changed.notify_all()
                self.send_response(204)
                self.end_headers()

            do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, prefix: str, count: int, timeout: float = 60) -> list[
        tuple[str, dict[str, str], bytes]
    ]:
        """The requests whose path starts with ``prefix``, once there are
        ``count`` of them (fails after ``timeout`` seconds)."""
        def mine() -> list[tuple[str, dict[str, str], bytes]]:
            return [r for r in self.requests if r[0].startswith(prefix)]

        with self.changed:
            if not self.changed.wait_for(lambda: len(mine()) >= count, timeout):
                raise AssertionError(f"{len(mine())} of {count} requests to {prefix} arrived")
            return mine()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that may deliver to loopback and keeps target secrets."""
    if not BIN:
        pytest.skip("SIGNET_BIN is not set; point it at the signet binary to run this test")
    srv = Server(tmp_path_factory.mktemp("signet"), {
        "SIGNET_ALLOWED_TARGET_CIDRS": "127.0.0.0/8",
        "SIGNET_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    })
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def publisher(server: Server) -> MessagePublisher:
    key = server.cli("api-keys", "create", "--name", "py-publisher", "--scope", "publish")
    return MessagePublisher(server.url, key)


def later(receiver: Receiver, path: str) -> dict[str, Any]:
    """Fields for a message to ``path`` on the receiver an hour from now:
    stored, not delivered while the test runs."""
    return {"url": f"{receiver.url}{path}", "delay_ms": 3_600_000}


def message(server: Server, msg_id: str) -> dict[str, Any]:
    view: dict[str, Any] = server.admin.call("GET", f"/v1/messages/{msg_id}")
    return view


# -- one message ------------------------------------------------------------


def test_publish_then_the_same_key_answers_the_first_message(
    publisher: MessagePublisher, receiver: Receiver, server: Server
) -> None:
    first = publisher.publish(
        f"{receiver.url}/idem/1", body={"order": 1}, delay_ms=3_600_000,
        headers={"X-Tenant": "acme"}, idempotency_key="order-1",
    )
    assert first["id"].startswith("msg_") and first["state"] == "scheduled"
    assert first["existing"] is False
    again = publisher.publish(
        f"{receiver.url}/idem/1", body={"order": 1}, delay_ms=3_600_000,
        headers={"X-Tenant": "acme"}, idempotency_key="order-1",
    )
    assert again["id"] == first["id"] and again["existing"] is True
    shown = message(server, first["id"])
    assert shown["body"] == '{"order":1}' and shown["headers"]["x-tenant"] == "acme"


def test_every_field_reaches_the_server(
    publisher: MessagePublisher, receiver: Receiver, server: Server
) -> None:
    view = publisher.publish(
        f"{receiver.url}/fields", body="<xml/>", headers={"Content-Type": "text/xml"},
        signature_profile="svix", callback_url=f"{receiver.url}/callback", delay_ms=3_600_000,
        max_attempts=3, retry_schedule_ms=[1_000, 2_000], method="PUT",
    )
    shown = message(server, view["id"])
    assert (shown["method"], shown["signature_profile"], shown["max_attempts"]) == (
        "PUT", "svix", 3
    )
    assert shown["callback_url"] == f"{receiver.url}/callback"
    assert shown["body"] == "<xml/>" and shown["headers"]["content-type"] == "text/xml"
    with pytest.raises(ApiError) as caught:
        publisher.publish(f"{receiver.url}/fields", retry_schedule_ms=[-1])
    assert caught.value.server_message.startswith("retry_schedule_ms")


def test_the_same_key_with_another_request_is_a_conflict(
    publisher: MessagePublisher, receiver: Receiver
) -> None:
    publisher.publish(**later(receiver, "/conflict"), body="a", idempotency_key="conflict-1")
    with pytest.raises(ApiError) as caught:
        publisher.publish(**later(receiver, "/conflict"), body="b", idempotency_key="conflict-1")
    assert caught.value.status == 409 and caught.value.code == "idempotency_conflict"
    assert "body" in caught.value.server_message


def test_a_refused_field_is_named(publisher: MessagePublisher) -> None:
    with pytest.raises(ApiError) as caught:
        publisher.publish("ftp://example.com/x")
    assert caught.value.status == 422
    assert caught.value.server_message.startswith("url: ")


def test_not_before_takes_an_aware_datetime(
    publisher: MessagePublisher, receiver: Receiver, server: Server
) -> None:
    when = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    view = publisher.publish(f"{receiver.url}/when", not_before=when)
    assert view["state"] == "scheduled"
    shown = message(server, view["id"])["next_attempt_at"]
    assert datetime.fromisoformat(shown.replace("Z", "+00:00")) == when


# -- batches ------------------------------------------------------------------


def test_a_batch_keeps_order_and_each_items_key(
    publisher: MessagePublisher, receiver: Receiver
) -> None:
    first = publisher.publish_batch([
        {**later(receiver, "/batch/a"), "body": "a", "idempotency_key": "batch-a"},
        MessageRequest(f"{receiver.url}/batch/b", body="b", delay_ms=3_600_000,
                       idempotency_key="batch-b"),
    ])
    assert [v["url"] for v in first] == [f"{receiver.url}/batch/a", f"{receiver.url}/batch/b"]
    assert [v["existing"] for v in first] == [False, False]
    again = publisher.publish_batch([
        {**later(receiver, "/batch/a"), "body": "a", "idempotency_key": "batch-a"},
        {**later(receiver, "/batch/c"), "body": "c"},
    ])
    assert again[0]["id"] == first[0]["id"] and again[0]["existing"] is True
    assert again[1]["existing"] is False and again[1]["id"] not in {v["id"] for v in first}


def test_a_refused_item_refuses_the_batch_and_names_it(
    publisher: MessagePublisher, receiver: Receiver
) -> None:
    items = [
        {**later(receiver, "/refused/0"), "idempotency_key": "refused-0"},
        {**later(receiver, "/refused/1")},
        {"url": "ftp://example.com/nope"},
    ]
    with pytest.raises(BatchPublishError) as caught:
        publisher.publish_batch(items)
    assert caught.value.index == 2 and caught.value.offset == 0
    assert caught.value.published == []
    assert caught.value.error.status == 422
    assert caught.value.error.server_message.startswith("messages[2].url: ")
    # Nothing was stored: the first item's key is new.
    assert publisher.publish(**items[0])["existing"] is False


def test_more_than_1000_messages_go_in_several_requests_in_order(
    publisher: MessagePublisher, receiver: Receiver
) -> None:
    sent: list[int] = []
    real_call = publisher.client.call

    def counting(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if path == "/v1/messages/batch":
            sent.append(len(json.loads(kwargs["raw"])["messages"]))
        return real_call(method, path, *args, **kwargs)

    publisher.client.call = counting  # type: ignore[method-assign]
    try:
        views = publisher.publish_batch(later(receiver, f"/many/{i}") for i in range(2_050))
    finally:
        del publisher.client.call
    assert sent == [1000, 1000, 50]
    assert [v["url"] for v in views] == [f"{receiver.url}/many/{i}" for i in range(2_050)]
    assert len({v["id"] for v in views}) == 2_050


def test_a_refused_item_in_a_later_part_is_named_by_its_index_in_the_batch(
    publisher: MessagePublisher, receiver: Receiver
) -> None:
    items: list[dict[str, Any]] = [later(receiver, f"/late/{i}") for i in range(1_005)]
    items[1_003] = {**later(receiver, "/late/bad"), "max_attempts": 0}
    items[1_001]["idempotency_key"] = "late-1001"
    with pytest.raises(BatchPublishError) as caught:
        publisher.publish_batch(items)
    err = caught.value
    assert err.index == 1_003 and err.offset == 1_000
    assert [v["url"] for v in err.published] == [f"{receiver.url}/late/{i}" for i in range(1_000)]
    assert err.error.server_message.startswith("messages[1003].max_attempts: ")
    assert "message 1003" in str(err) and "1000 earlier messages are published" in str(err)
    # The refused part stored nothing.
    assert publisher.publish(**items[1_001])["existing"] is False


@needs_server
def test_a_batch_over_the_body_limit_is_halved_until_it_fits(tmp_path: Path) -> None:
    small = Server(tmp_path, None, "--max-body-bytes", "65536")
    try:
        publisher = MessagePublisher(small.url, small.work_key)
        bodies = [{"url": "https://example.com/x", "delay_ms": 3_600_000, "body": "b" * 400,
                   "idempotency_key": f"half-{i}"} for i in range(300)]
        views = publisher.publish_batch(bodies)
        assert len(views) == 300 and not any(v["existing"] for v in views)
        # One message alone over the limit cannot be split: it is the one refused.
        big = {"url": "https://example.com/x", "body": "z" * 70_000}
        with pytest.raises(BatchPublishError) as caught:
            publisher.publish_batch([bodies[0], big])
        assert caught.value.error.status == 413
        assert caught.value.index == 1 and len(caught.value.published) == 1
        assert caught.value.published[0]["existing"] is True
    finally:
        small.stop()


# -- end to end ---------------------------------------------------------------


def test_every_message_arrives_once_signed_with_the_targets_secret(
    publisher: MessagePublisher, receiver: Receiver, server: Server
) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    server.admin.call("POST", "/v1/targets", {
        "name": "py-e2e", "url_prefix": f"{receiver.url}/e2e/", "secret": secret,
    })
    one = publisher.publish(f"{receiver.url}/e2e/one", target="py-e2e", body={"n": -1})
    many = publisher.publish_batch(
        MessageRequest(f"{receiver.url}/e2e/{i}", body={"n": i}, target="py-e2e",
                       method="PUT" if i % 2 else None, idempotency_key=f"e2e-{i}")
        for i in range(20)
    )
    ids = [one["id"], *(v["id"] for v in many)]
    receiver.wait_for("/e2e/", len(ids))
    for msg_id in ids:
        server.wait_state(msg_id, "succeeded")
    # Every message is delivered now: what arrived is all that will.
    got = receiver.wait_for("/e2e/", len(ids))
    seen = [verify_webhook(headers, body, secret).id for _, headers, body in got]
    assert sorted(seen) == sorted(ids), "each message exactly once"
    bodies = {headers["webhook-id"]: json.loads(body) for _, headers, body in got}
    assert bodies[one["id"]] == {"n": -1}
    assert [bodies[v["id"]] for v in many] == [{"n": i} for i in range(20)]
    # Another secret does not verify them.
    other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookError):
        verify_webhook(got[0][1], got[0][2], other)


def test_without_a_target_the_servers_key_signs(
    publisher: MessagePublisher, receiver: Receiver, server: Server
) -> None:
    view = publisher.publish(f"{receiver.url}/ring/one", body="plain text")
    [(_, headers, body)] = receiver.wait_for("/ring/", 1)
    assert body == b"plain text" and headers["webhook-id"] == view["id"]
    ring = server.keys().signing.ring
    assert ring.active is not None
    assert verify_webhook(headers, body, ring.active).id == view["id"]


# -- checked before sending -----------------------------------------------------


def offline() -> MessagePublisher:
    return MessagePublisher("http://127.0.0.1:1", "sk_offline_secret_value")


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(SignetError, match="at least one message"):
        offline().publish_batch([])


def test_an_item_that_is_not_a_message_is_named() -> None:
    with pytest.raises(SignetError, match=r"messages\[1\] is a str; give each message"):
        offline().publish_batch(
            [{"url": "https://example.com"}, "https://example.com"]  # type: ignore[list-item]
        )
    with pytest.raises(SignetError, match=r"messages\[0\]: unknown field\(s\) bdoy"):
        offline().publish_batch([{"url": "https://example.com", "bdoy": "x"}])
    with pytest.raises(SignetError, match=r"messages\[0\]: url is missing"):
        offline().publish_batch([{"body": "x"}])
    with pytest.raises(SignetError, match="not one dict; wrap it in a list"):
        offline().publish_batch({"url": "https://example.com"})  # type: ignore[dict-item]


def test_a_body_that_cannot_be_sent_is_refused() -> None:
    with pytest.raises(SignetError, match=r"messages\[0\]: the message cannot be serialised"):
        offline().publish_batch([{"url": "https://example.com", "body": {"x": object()}}])
    with pytest.raises(SignetError, match="cannot be serialised to JSON"):
        offline().publish("https://example.com", body=float("nan"))
    with pytest.raises(SignetError, match="^body: the bytes are not UTF-8"):
        offline().publish("https://example.com", body=b"\xff\xfe")


def test_a_naive_not_before_is_refused() -> None:
    with pytest.raises(SignetError, match="^not_before: a naive datetime; give it a time zone"):
        offline().publish("https://example.com", not_before=datetime(2099, 1, 1))
    with pytest.raises(SignetError, match=r"^messages\[1\]\.not_before: a naive datetime"):
        offline().publish_batch([
            {"url": "https://example.com"},
            {"url": "https://example.com", "not_before": datetime(2099, 1, 1)},
        ])


def test_the_api_key_is_never_shown(server: Server) -> None:
    bad = MessagePublisher(server.url, "sk_not_a_real_key")
    with pytest.raises(ApiError) as caught:
        bad.publish("https://example.com/x")
    assert caught.value.status == 401
    with pytest.raises(BatchPublishError) as batch:
        bad.publish_batch([{"url": "https://example.com/x"}] * 2)
    assert batch.value.index is None and batch.value.error.status == 401
    shown = str(caught.value) + repr(caught.value) + repr(bad)
    shown += str(batch.value) + repr(batch.value)
    assert "sk_not_a_real_key" not in shown
    assert "sk_offline_secret_value" not in repr(offline()) + repr(offline().client)


def test_a_client_is_reused() -> None:
    client = Client("http://127.0.0.1:1", "sk_x")
    assert MessagePublisher(client).client is client


# -- retries: 429 always, 503 only when a repeat is safe ---------------------------


class Flaky:
    """A fake server on 127.0.0.1:0 in a thread: answers each request with
    the next scripted status (``Retry-After: 0`` on 429 and 503), a 201
    with a view per message sent, and records every request body."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[bytes] = []
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                flaky.seen.append(body)
                status = flaky.statuses.pop(0)
                if status == 201:
                    sent = json.loads(body)
                    n = len(flaky.seen)
                    if "messages" in sent:
                        views = [
                            {"id": f"msg_{n}_{i}", "state": "available", "existing": False}
                            for i in range(len(sent["messages"]))
                        ]
                        answer = json.dumps({"messages": views}).encode()
                    else:
                        answer = json.dumps({"id": f"msg_{n}", "state": "available"}).encode()
                else:
                    code = "rate_limited" if status == 429 else "unavailable"
                    answer = json.dumps({"error": {"code": code, "message": "try later"}}).encode()
                self.send_response(status)
                if status != 201:
                    self.send_header("retry-after", "0")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture()
def flaky() -> Iterator[Flaky]:
    f = Flaky([])
    try:
        yield f
    finally:
        f.stop()


def test_a_publish_without_a_key_is_not_retried_on_503(flaky: Flaky) -> None:
    flaky.statuses += [503, 201]
    publisher = MessagePublisher(flaky.url, "sk_flaky")
    with pytest.raises(ApiError) as caught:
        publisher.publish("https://example.com/a", body={"n": 1})
    assert caught.value.status == 503 and caught.value.code == "unavailable"
    assert len(flaky.seen) == 1


def test_a_publish_with_a_key_is_retried_on_503(flaky: Flaky) -> None:
    flaky.statuses += [503, 201]
    publisher = MessagePublisher(flaky.url, "sk_flaky")
    view = publisher.publish("https://example.com/a", body={"n": 1}, idempotency_key="k-1")
    assert view["id"] == "msg_2" and view["existing"] is False
    assert len(flaky.seen) == 2 and flaky.seen[0] == flaky.seen[1]
    assert json.loads(flaky.seen[1])["idempotency_key"] == "k-1"


@pytest.mark.parametrize("key", [None, "k-1"])
def test_a_429_is_retried_with_or_without_a_key(flaky: Flaky, key: str | None) -> None:
    flaky.statuses += [429, 201, 429, 201]
    publisher = MessagePublisher(flaky.url, "sk_flaky")
    assert publisher.publish("https://example.com/a", idempotency_key=key)["id"] == "msg_2"
    views = publisher.publish_batch(
        [{"url": "https://example.com/a", "idempotency_key": key}, {"url": "https://example.com/b"}]
    )
    assert [v["id"] for v in views] == ["msg_4_0", "msg_4_1"]
    assert len(flaky.seen) == 4


def test_a_batch_part_with_a_keyless_message_is_not_retried_on_503(flaky: Flaky) -> None:
    flaky.statuses += [503, 201]
    publisher = MessagePublisher(flaky.url, "sk_flaky")
    with pytest.raises(BatchPublishError) as caught:
        publisher.publish_batch([
            {"url": "https://example.com/a", "idempotency_key": "k-1"},
            {"url": "https://example.com/b"},
        ])
    e = caught.value
    assert e.error.status == 503 and e.index is None and e.offset == 0 and e.published == []
    assert len(flaky.seen) == 1


def test_a_batch_part_whose_messages_all_have_keys_is_retried_on_503(flaky: Flaky) -> None:
    flaky.statuses += [503, 201]
    publisher = MessagePublisher(flaky.url, "sk_flaky")
    views = publisher.publish_batch([
        {"url": "https://example.com/a", "idempotency_key": "k-1"},
        {"url": "https://example.com/b", "idempotency_key": "k-2"},
    ])
    assert [v["id"] for v in views] == ["msg_2_0", "msg_2_1"]
    assert len(flaky.seen) == 2


def test_each_part_of_a_batch_is_judged_by_its_own_messages(flaky: Flaky) -> None:
    # batch_bytes=1: one message a request. Part 0 has a key (retried),
    # part 1 has none (its 503 stops the batch there).
    flaky.statuses += [503, 201, 503, 201]
    publisher = MessagePublisher(flaky.url, "sk_flaky", batch_bytes=1)
    with pytest.raises(BatchPublishError) as caught:
        publisher.publish_batch([
            {"url": "https://example.com/a", "idempotency_key": "k-1"},
            {"url": "https://example.com/b"},
        ])
    e = caught.value
    assert e.error.status == 503 and e.index == 1 and e.offset == 1
    assert [v["id"] for v in e.published] == ["msg_2_0"]
    assert len(flaky.seen) == 3
