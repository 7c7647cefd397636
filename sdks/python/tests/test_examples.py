"""The push endpoint examples: flask_push.py through Flask's test client,
fastapi_push.py as an ASGI app (both frameworks are test extras)."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
from types import ModuleType
from typing import Any

import pytest

from signet_sdk import verify_webhook

from conftest import SDK
from test_push import SECRET, TASK_KEY, hop, push_body

EXAMPLES = SDK / "examples"


def load_example(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("SIGNET_PUSH_SECRET", SECRET)
    monkeypatch.setenv(
        "SIGNET_SIGNING_KEYS", f"{TASK_KEY.id}:{base64.b64encode(b't' * 32).decode()}"
    )
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_flask_example(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("flask")
    app = load_example("flask_push", monkeypatch).app
    client = app.test_client()
    body = push_body("email.send", b'{"to": "ada@example.com"}')
    resp = client.post("/signet/push", data=body, headers=hop(body))
    assert resp.status_code == 200
    assert json.loads(resp.data) == {"sent_to": "ada@example.com"}
    verify_webhook(dict(resp.headers), resp.data, SECRET)  # the answer is signed
    busy = push_body("email.send", b'{"to": "x@example.invalid"}')
    resp = client.post("/signet/push", data=busy, headers=hop(busy))
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "60"
    forged = hop(body, ts=int(time.time()) - 3600)
    assert client.post("/signet/push", data=body, headers=forged).status_code == 401
    tampered = push_body("email.send", b'{"to": "a@b.c"}', tamper=b'{"to": "evil@b.c"}')
    resp = client.post("/signet/push", data=tampered, headers=hop(tampered))
    assert resp.status_code == 422
    assert json.loads(resp.data)["dead"]["reason"] == "signature-invalid"


def test_fastapi_example_answers_at_the_bound_path(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    import asyncio

    app = load_example("fastapi_push", monkeypatch).app

    def post(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        sent: list[dict[str, Any]] = []
        chunks = [body]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": chunks.pop() if chunks else b"",
                    "more_body": False}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "server": ("127.0.0.1", 8791),
            "client": ("127.0.0.1", 50000),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        asyncio.run(app(scope, receive, send))
        start = sent[0]
        out = b"".join(m.get("body", b"") for m in sent[1:])
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, out

    body = push_body("report.build", b'{"month": "2026-11"}')
    # The exact path of the binding's URL: no redirect (the dispatcher
    # does not follow one), the handler's result, signed.
    status, headers, answer = post("/signet/push", hop(body), body)
    assert status == 200, (status, headers, answer)
    assert json.loads(answer) == {"month": "2026-11", "attempt": 2}
    verify_webhook(headers, answer, SECRET)
    tampered = push_body("report.build", b'{"month": "1"}', tamper=b'{"month": "2"}')
    status, _, answer = post("/signet/push", hop(tampered), tampered)
    assert status == 422 and json.loads(answer)["dead"]["reason"] == "signature-invalid"
