"""The push endpoint example in examples/flask_push.py, driven through
Flask's test client (Flask is a test extra, not a dependency)."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
from types import ModuleType

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
