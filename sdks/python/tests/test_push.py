"""The push endpoint helper: requests built as the dispatcher sends them
(PUSH contract), checked hop and envelope, signed answers, and the WSGI
(through a real wsgiref server) and ASGI adapters."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from signet_sdk import (
    Key,
    KeyRing,
    PushEndpoint,
    Retry,
    Task,
    TaskEnvelope,
    asgi_app,
    handle_push,
    sign_envelope,
    sign_webhook,
    verify_webhook,
    wsgi_app,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TASK_KEY = Key.hmac("task-key", b"t" * 32)
RING = KeyRing.single(TASK_KEY)
HANDLERS: dict[str, Any] = {}


def add(args: dict[str, int], task: Task) -> dict[str, int]:
    return {"sum": args["a"] + args["b"], "attempt": task.attempt}


def later(args: object) -> None:
    raise Retry(after_ms=1500)


def boom(args: object) -> None:
    raise ValueError("no such customer")


HANDLERS.update({"add": add, "later": later, "boom": boom})


def push_body(
    name: str = "add", args: bytes = b'{"a": 2, "b": 3}', *, tamper: bytes | None = None,
    expires_at_ms: int | None = None, signed: bool = True,
) -> bytes:
    envelope = TaskEnvelope(
        id="task_0190aaaa", queue="pushq", name=name, args=args, created_at_ms=1_796_000_000_000,
        max_attempts=5, expires_at_ms=expires_at_ms,
    )
    sig = sign_envelope(envelope, RING).to_dict() if signed else None
    sent = tamper if tamper is not None else args
    try:
        parsed: Any = json.loads(sent)
    except ValueError:
        parsed = None
    return json.dumps({
        "attempt": 2, "max_attempts": 5,
        "envelope": {
            "id": envelope.id, "queue": envelope.queue, "name": envelope.name,
            "args_b64": base64.b64encode(sent).decode(), "args": parsed, "headers": {},
            "created_at_ms": envelope.created_at_ms, "not_before_ms": None,
            "expires_at_ms": expires_at_ms, "max_attempts": 5, "callback_url": None,
            "a_field_from_the_future": True,
        },
        "signature": sig,
    }).encode()


def hop(body: bytes, *, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "Webhook-Id": "task_0190aaaa",
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": sign_webhook(secret, "task_0190aaaa", ts, body),
        "Content-Type": "application/json",
    }


ENDPOINT = PushEndpoint(secret=SECRET, keys=RING, handlers=HANDLERS)


def check_answer_signed(status: int, headers: dict[str, str], body: bytes) -> None:
    assert headers["webhook-id"] == "task_0190aaaa"
    verify_webhook(headers, body, SECRET)  # raises if the answer is not signed right


def test_a_verified_task_runs_and_its_signed_answer_is_the_result() -> None:
    body = push_body()
    resp = handle_push(hop(body), body, secret=SECRET, keys=RING, handlers=HANDLERS)
    assert resp.status == 200
    assert resp.json() == {"sum": 5, "attempt": 2}
    check_answer_signed(resp.status, dict(resp.headers), resp.body)


def test_a_forged_hop_is_401_not_dead() -> None:
    body = push_body()
    forged = hop(body, secret="whsec_" + base64.b64encode(b"x" * 24).decode())
    resp = ENDPOINT.handle(forged, body)
    assert resp.status == 401
    assert resp.json()["error"]["reason"] == "mismatch"
    check_answer_signed(resp.status, dict(resp.headers), resp.body)


def test_a_stale_hop_is_401() -> None:
    body = push_body()
    resp = ENDPOINT.handle(hop(body, ts=int(time.time()) - 301), body)
    assert resp.status == 401 and resp.json()["error"]["reason"] == "too-old"


def test_a_tampered_envelope_is_dead_signature_invalid() -> None:
    # The hop is authentic (the server signed what it holds) but the args
    # were changed after the producer signed them.
    body = push_body(tamper=b'{"a": 2000, "b": 3}')
    resp = ENDPOINT.handle(hop(body), body)
    assert resp.status == 422
    dead = resp.json()["dead"]
    assert dead["reason"] == "signature-invalid"
    assert dead["detail"].startswith("mismatch: ")
    check_answer_signed(resp.status, dict(resp.headers), resp.body)


def test_an_unsigned_envelope_is_dead_missing() -> None:
    body = push_body(signed=False)
    resp = ENDPOINT.handle(hop(body), body)
    assert resp.status == 422
    assert resp.json()["dead"]["detail"].startswith("missing: ")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (push_body(name="nobody"), "unknown-task"),
        (push_body(expires_at_ms=1_000), "expired"),
        (push_body(args=b"not json"), "payload-invalid"),
    ],
)
def test_tasks_that_must_not_run_are_dead(body: bytes, reason: str) -> None:
    resp = ENDPOINT.handle(hop(body), body)
    assert resp.status == 422
    assert resp.json()["dead"]["reason"] == reason


def test_retry_and_failure_are_ordinary_failed_attempts() -> None:
    body = push_body(name="later")
    resp = ENDPOINT.handle(hop(body), body)
    assert resp.status == 503 and resp.header("retry-after") == "2"
    body = push_body(name="boom")
    resp = ENDPOINT.handle(hop(body), body)
    assert resp.status == 500
    assert resp.json()["error"]["message"] == "ValueError: no such customer"
    check_answer_signed(resp.status, dict(resp.headers), resp.body)


@pytest.fixture()
def wsgi_server() -> Iterator[str]:
    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    srv = make_server("127.0.0.1", 0, wsgi_app(ENDPOINT), handler_class=Quiet)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()


def post(addr: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/signet/push", body=body, headers=headers)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def test_wsgi_adapter_over_a_real_server(wsgi_server: str) -> None:
    body = push_body()
    status, headers, answer = post(wsgi_server, hop(body), body)
    assert status == 200 and json.loads(answer) == {"sum": 5, "attempt": 2}
    check_answer_signed(status, headers, answer)
    status, _, _ = post(wsgi_server, hop(body, secret="whsec_" + "A" * 32), body)
    assert status == 401
    tampered = push_body(tamper=b'{"a":9,"b":9}')
    status, _, answer = post(wsgi_server, hop(tampered), tampered)
    assert status == 422 and json.loads(answer)["dead"]["reason"] == "signature-invalid"


def run_asgi(headers: dict[str, str], body: bytes, method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    app = asgi_app(ENDPOINT)
    sent: list[dict[str, Any]] = []
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http", "method": method, "path": "/push",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start, end = sent
    return (
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        end["body"],
    )


def test_asgi_adapter() -> None:
    body = push_body()
    status, headers, answer = run_asgi(hop(body), body)
    assert status == 200 and json.loads(answer)["sum"] == 5
    check_answer_signed(status, headers, answer)
    status, _, _ = run_asgi(hop(body), body, method="GET")
    assert status == 405


def test_answers_are_not_signed_with_a_public_key_only() -> None:
    public = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
    endpoint = PushEndpoint(secret=public, keys=RING, handlers=HANDLERS)
    body = push_body()
    resp = endpoint.handle(hop(body), body)  # an HMAC hop against an Ed25519 key
    assert resp.status == 401
    assert resp.json()["error"]["reason"] == "algorithm-mismatch"
    assert resp.header("webhook-signature") is None


def test_an_ed25519_target_verifies_the_hop_and_signs_answers_v1a() -> None:
    whsk = (
        "whsk_YVIhDl/2CCj0VlvlVGEAyX7+HiAZJlFkgCtA68Z+zjnA35iOKyQmYf/kVMAebaX8dW6N4jrvsiu"
        "WyX1mh1heKw=="
    )
    whpk = "whpk_wN+YjiskJmH/5FTAHm2l/HVujeI677Irlsl9ZodYXis="
    endpoint = PushEndpoint(secret=whsk, keys=RING, handlers=HANDLERS)
    body = push_body()
    resp = endpoint.handle(hop(body, secret=whsk), body)
    assert resp.status == 200
    signature = resp.header("webhook-signature")
    assert signature is not None and signature.startswith("v1a,")
    verify_webhook(dict(resp.headers), resp.body, whpk)


def test_a_webhook_id_that_does_not_name_the_task_is_400() -> None:
    # A correctly signed hop whose id names another task than the body's.
    body = push_body()
    ts = int(time.time())
    headers = {
        "webhook-id": "task_other",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(SECRET, "task_other", ts, body),
    }
    ran: list[object] = []
    endpoint = PushEndpoint(secret=SECRET, keys=RING, handlers={"add": ran.append})
    resp = endpoint.handle(headers, body)
    assert resp.status == 400
    assert resp.json()["error"]["message"] == "webhook-id does not name the task in the body"
    assert ran == []
    assert resp.header("webhook-id") == "task_other"  # still a signed answer
    verify_webhook(dict(resp.headers), resp.body, SECRET)


def test_the_answer_is_signed_with_the_time_it_is_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    arrived = int(time.time())
    clock = [float(arrived)]
    monkeypatch.setattr(time, "time", lambda: clock[0])

    def slow(args: object) -> str:
        clock[0] += 400  # a handler that ran longer than the 5-minute tolerance
        return "done"

    endpoint = PushEndpoint(secret=SECRET, keys=RING, handlers={"add": slow})
    body = push_body()
    resp = endpoint.handle(hop(body, ts=arrived), body)
    assert resp.status == 200
    assert resp.header("webhook-timestamp") == str(arrived + 400)
    verify_webhook(dict(resp.headers), resp.body, SECRET)  # not too-old at the dispatcher


@pytest.mark.parametrize("length", ["-1", "-100"])
def test_wsgi_refuses_a_negative_content_length(length: str) -> None:
    import io

    body = push_body()
    started: list[str] = []
    stream = io.BytesIO(body + b"x" * 100)
    environ = {
        "REQUEST_METHOD": "POST", "CONTENT_LENGTH": length, "wsgi.input": stream,
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in hop(body).items()},
    }
    out = b"".join(wsgi_app(ENDPOINT)(environ, lambda status, headers: started.append(status)))
    assert started == ["400 Bad Request"]
    assert json.loads(out)["error"]["code"] == "bad-length"
    assert stream.tell() == 0  # nothing read
