"""The HTTP client against a scripted local server: typed errors, bounded
429/503 retries honouring Retry-After, kept-alive connections, and the
API key never shown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from signet_sdk import ApiError, Client, ConfigError, TransportError

KEY = "sk_secret_do_not_show"


class Script:
    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.seen: list[dict[str, Any]] = []


@pytest.fixture()
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            script.seen.append({
                "path": self.path, "body": self.rfile.read(length),
                "auth": self.headers.get("authorization"), "port": self.client_address[1],
                "at": time.monotonic(),
            })
            status, headers, body = script.answers.pop(0)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/api", script
    finally:
        srv.shutdown()
        srv.server_close()


def err(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def test_errors_are_typed_and_never_show_the_key(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers.append((409, {}, err("lease_lost", "the lease is no longer yours")))
    client = Client(url, KEY)
    with pytest.raises(ApiError) as caught:
        client.call("POST", "/v1/work/complete", {"lease": "lt_x"})
    e = caught.value
    assert (e.status, e.code, e.server_message) == (409, "lease_lost", "the lease is no longer yours")
    assert KEY not in str(e) + repr(e) + repr(client)
    assert script.seen[0]["auth"] == f"Bearer {KEY}"
    assert script.seen[0]["path"] == "/api/v1/work/complete"


def test_429_and_503_are_retried_honouring_retry_after(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers += [
        (429, {"retry-after": "1"}, err("rate_limited", "slow down")),
        (503, {}, err("unavailable", "busy")),
        (200, {}, b'{"ok":true}'),
    ]
    client = Client(url, KEY)
    assert client.call("POST", "/x", {}) == {"ok": True}
    waits = [b["at"] - a["at"] for a, b in zip(script.seen, script.seen[1:])]
    assert waits[0] >= 0.95  # Retry-After: 1
    assert waits[1] < 0.5  # backoff from 0.1 s
    # All three on one kept-alive connection.
    assert len({s["port"] for s in script.seen}) == 1


def test_retry_unavailable_false_retries_429_but_not_503(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers += [
        (429, {"retry-after": "0"}, err("rate_limited", "slow down")),
        (503, {"retry-after": "0"}, err("unavailable", "busy")),
        (200, {}, b'{"ok":true}'),
    ]
    client = Client(url, KEY)
    with pytest.raises(ApiError) as caught:
        client.call("POST", "/x", {}, retry_unavailable=False)
    assert caught.value.status == 503 and len(script.seen) == 2
    status, _, _ = client.request("POST", "/x", b"{}", retry_unavailable=False)
    assert status == 200 and len(script.seen) == 3


def test_retries_are_bounded(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers += [(503, {"retry-after": "0"}, err("unavailable", "busy"))] * 3
    client = Client(url, KEY, retries=2)
    with pytest.raises(ApiError) as caught:
        client.call("POST", "/x", {})
    assert caught.value.status == 503 and len(script.seen) == 3


def test_a_non_json_error_is_still_an_api_error(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.answers.append((502, {}, b"<html>bad gateway</html>"))
    with pytest.raises(ApiError) as caught:
        Client(url, KEY).call("POST", "/x", {})
    assert caught.value.code == "http_error" and "bad gateway" in str(caught.value)


def test_unreachable_and_misconfigured() -> None:
    with pytest.raises(TransportError):
        Client("http://127.0.0.1:1", KEY, timeout=2).call("POST", "/x", {})
    with pytest.raises(ConfigError):
        Client("ftp://example.com", KEY)
    with pytest.raises(ConfigError):
        Client("http://example.com", " ")
    with pytest.raises(ConfigError) as caught:
        Client("http://example.com", "sk_abc\r\nX-Injected: 1")
    assert "sk_abc" not in str(caught.value)
