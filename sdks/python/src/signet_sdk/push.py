"""Push endpoints: a queue bound to an HTTP endpoint has its tasks POSTed
there by Signet's dispatcher (`signet queues bind`). This module turns such
a request into a response, with no framework: :class:`PushEndpoint` (or the
one-shot :func:`handle_push`) takes the headers and raw body and gives a
:class:`PushResponse`; :func:`wsgi_app` and :func:`asgi_app` wrap it for
any WSGI or ASGI server (Flask, Django; FastAPI/Starlette route it with
``add_route``).

Every request is checked twice before the handler runs: the hop (Standard
Webhooks ``webhook-*`` headers, the target's secret, ±5 minutes) and the
producer (the envelope's signature with the task key ring, over the
producer's bytes). The answer:

=========================  ========================================================
hop invalid                ``401`` (the dispatcher retries: it may be a clock off)
not a push request, or     ``400`` (the body's task id must be the ``webhook-id``)
another task than the id
envelope invalid           ``422`` ``{"dead": {"reason": "signature-invalid", …}}``
expired / no handler /     ``422`` dead ``expired`` / ``unknown-task`` /
args not JSON              ``payload-invalid``
handler returned ``r``     ``200`` with ``r`` as JSON (the task's result)
handler raised ``Retry``   ``503`` with ``Retry-After`` (seconds)
handler raised             ``500`` ``{"error": …}`` (a failed attempt, retried)
=========================  ========================================================

Every answer to a request that names its ``webhook-id`` is signed
(``webhook-timestamp`` and ``webhook-signature`` over
``{request webhook-id}.{timestamp}.{response body}`` with the same secret),
so a binding can require signed answers.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from .config import SigningConfig
from .errors import ConfigError
from .keys import Key, KeyRing
from .loader import LoadedKeys
from .tasks import Dead, Handler, Handlers, Retry, check_task, describe_error, signing_config
from .webhooks import (
    DEFAULT_TOLERANCE_SECS,
    WebhookError,
    sign_webhook,
    verify_webhook,
    webhook_keys,
)

__all__ = ["PushEndpoint", "PushResponse", "asgi_app", "handle_push", "wsgi_app"]

log = logging.getLogger("signet_sdk.push")

#: Largest request body read by the adapters, bytes (args appear twice,
#: as base64 and as JSON, so this is well above the server's 1 MiB).
DEFAULT_MAX_BODY = 8 * 1024 * 1024

#: The status of a dead-on-purpose answer.
DEAD_STATUS = 422


@dataclass(frozen=True)
class PushResponse:
    """What to answer: status, headers (name, value pairs) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body) if self.body else None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _error(code: str, message: str, **extra: str) -> bytes:
    return _json({"error": {"code": code, **extra, "message": message}})


class PushEndpoint:
    """A configured push endpoint. ``secret``: the target's ``whsec_…``
    (or ``whsk_``/``whpk_``; several during a rotation, the first one that
    can sign signs the answers). ``keys``: the task key ring to verify
    envelopes (default :func:`~signet_sdk.load_keys`). ``handlers``: a
    :class:`~signet_sdk.tasks.Handlers` or a mapping of task name to
    function taking ``(args)`` or ``(args, task)``."""

    def __init__(
        self,
        *,
        secret: str | Key | Iterable[str | Key],
        handlers: Handlers | Mapping[str, Handler],
        keys: LoadedKeys | SigningConfig | KeyRing | None = None,
        tolerance_secs: int = DEFAULT_TOLERANCE_SECS,
        max_body_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._keys = webhook_keys(secret)
        self._signers = [k for k in self._keys if k.can_sign]
        self.signing = signing_config(keys)
        self.handlers = Handlers.of(handlers)
        self.tolerance_secs = tolerance_secs
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"PushEndpoint({len(self._keys)} secret(s), tasks={sorted(self.handlers)})"

    def handle(
        self, headers: Mapping[str, str], body: bytes, *, now: int | None = None
    ) -> PushResponse:
        """Verifies one push request, runs its handler, and returns the
        signed answer. ``now`` (unix seconds) is for tests."""
        clock = int(time.time()) if now is None else now
        msg_id = ""
        for k, v in headers.items():
            if k.lower() == "webhook-id":
                msg_id = v.strip()
        status, extra, out = self._answer(headers, body, clock, msg_id)
        resp_headers = [("content-type", "application/json"), *extra]
        if msg_id and self._signers:
            # Signed with the time of signing, not of arrival: a slow
            # handler must not make its own answer look stale.
            signed_at = int(time.time()) if now is None else now
            resp_headers += [
                ("webhook-id", msg_id),
                ("webhook-timestamp", str(signed_at)),
                ("webhook-signature", sign_webhook(self._signers, msg_id, signed_at, out)),
            ]
        return PushResponse(status, resp_headers, out)

    def _answer(
        self, headers: Mapping[str, str], body: bytes, now: int, msg_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            verify_webhook(
                headers, body, self._keys, tolerance_secs=self.tolerance_secs, now=now
            )
        except WebhookError as e:
            log.warning("push: request refused, hop signature %s: %s", e.reason, e)
            return 401, [], _error("signature-invalid", str(e), reason=e.reason)
        try:
            claimed = json.loads(body)
            if not isinstance(claimed, dict):
                raise ValueError("the body is not a JSON object")
        except (UnicodeDecodeError, ValueError) as e:
            return 400, [], _error("malformed-body", f"the body is not a push request: {e}")
        envelope = claimed.get("envelope")
        if isinstance(envelope, dict) and envelope.get("id") != msg_id:
            # The hop signature covers this body under this webhook-id: a
            # body naming another task is not what the dispatcher sent.
            return 400, [], _error(
                "malformed-body", "webhook-id does not name the task in the body"
            )
        checked = check_task(claimed, self.signing, self.handlers, now_ms=now * 1000)
        if isinstance(checked, Dead):
            log.warning("push: task dead %s: %s", checked.reason, checked.detail)
            return DEAD_STATUS, [], _json(
                {"dead": {"reason": checked.reason, "detail": checked.detail}}
            )
        try:
            result = self.handlers.run(checked)
        except Retry as r:
            extra = []
            if r.after_ms is not None:
                extra.append(("retry-after", str(math.ceil(r.after_ms / 1000))))
            return 503, extra, _error("retry", r.message)
        except Exception as e:
            log.warning("push: task %s (%s) failed: %s", checked.id, checked.name, describe_error(e))
            return 500, [], _error("handler-failed", describe_error(e))
        try:
            return 200, [], _json(result)
        except (TypeError, ValueError) as e:
            return 500, [], _error("handler-failed", f"the result is not JSON: {e}")


def handle_push(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | Key | Iterable[str | Key],
    handlers: Handlers | Mapping[str, Handler],
    keys: LoadedKeys | SigningConfig | KeyRing | None = None,
    tolerance_secs: int = DEFAULT_TOLERANCE_SECS,
    now: int | None = None,
) -> PushResponse:
    """One push request to its answer; see :class:`PushEndpoint` (build
    that once instead when handling many requests: keys are parsed once)."""
    endpoint = PushEndpoint(
        secret=secret, handlers=handlers, keys=keys, tolerance_secs=tolerance_secs
    )
    return endpoint.handle(headers, body, now=now)


def _status_line(status: int) -> str:
    return f"{status} {http.client.responses.get(status, 'Unknown')}"


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(endpoint: PushEndpoint) -> WsgiApp:
    """A WSGI application answering push requests at any path (mount it
    where the binding's URL points). Only ``POST`` is served."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def plain(status: int, body: bytes) -> Iterable[bytes]:
            start_response(_status_line(status), [("content-type", "application/json")])
            return [body]

        if environ.get("REQUEST_METHOD") != "POST":
            return plain(405, _error("method-not-allowed", "push requests are POST"))
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return plain(400, _error("bad-length", "Content-Length is not a number"))
        if length < 0:
            # read(-1) would read to the end, past any limit.
            return plain(400, _error("bad-length", f"Content-Length is {length}, not a size"))
        if length > endpoint.max_body_bytes:
            return plain(413, _error("body-too-large", f"the limit is {endpoint.max_body_bytes} bytes"))
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        resp = endpoint.handle(headers, body)
        start_response(_status_line(resp.status), resp.headers)
        return [resp.body]

    return app


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _AsgiApp:
    """The ASGI application as an object, not a function: Starlette (and
    so FastAPI) takes a plain function given to ``add_route`` for a
    ``request -> response`` endpoint, an object for an ASGI app."""

    __slots__ = ("_app",)

    def __init__(self, app: AsgiApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def asgi_app(endpoint: PushEndpoint) -> AsgiApp:
    """An ASGI application answering push requests at any path. Handlers
    run in a worker thread (``asyncio.to_thread``), so a blocking handler
    does not stall the event loop. In FastAPI/Starlette route it to the
    binding's exact path, ``app.add_route("/signet/push", asgi_app(e),
    methods=["POST"])``: ``app.mount`` serves only paths *below* its
    prefix, so a POST to the prefix itself is redirected (307) and the
    dispatcher does not follow redirects."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise ConfigError(f"the push endpoint serves HTTP, not {scope['type']}")

        async def answer(status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            await send({
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            })
            await send({"type": "http.response.body", "body": body})

        json_type = [("content-type", "application/json")]
        if scope.get("method") != "POST":
            await answer(405, json_type, _error("method-not-allowed", "push requests are POST"))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > endpoint.max_body_bytes:
                await answer(413, json_type, _error(
                    "body-too-large", f"the limit is {endpoint.max_body_bytes} bytes"
                ))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        resp = await asyncio.to_thread(endpoint.handle, headers, b"".join(chunks))
        await answer(resp.status, resp.headers, resp.body)

    return _AsgiApp(app)
