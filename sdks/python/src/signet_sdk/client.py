"""A small HTTP client for Signet's API over ``http.client``.

One kept-alive connection per thread, a timeout on every request, the API
key sent as ``Authorization: Bearer``. Errors the server answers as
``{"error": {"code", "message"}}`` become :class:`ApiError`; ``429`` and
``503`` are retried with backoff (honouring ``Retry-After``, bounded),
``503`` only where the caller says a repeat is safe. The API key never
appears in an error, a log line or ``repr()``.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from . import __version__ as _version
from .errors import ConfigError, SignetError

__all__ = ["ApiError", "Client", "TransportError"]

log = logging.getLogger("signet_sdk.client")

#: Statuses retried with backoff: the server asked to slow down or was busy.
RETRY_STATUSES = frozenset({429, 503})
_STALE = (
    http.client.RemoteDisconnected,
    http.client.BadStatusLine,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


class ApiError(SignetError):
    """The server refused a request: ``status``, its ``code`` (e.g.
    ``lease_lost``, ``invalid_value``) and ``message``."""

    reason = "api"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.server_message = message


class TransportError(SignetError):
    """The server could not be reached or the connection broke."""

    reason = "transport"


class Client:
    """Talks to one Signet server. ``base_url`` is ``http(s)://host:port``
    (a path prefix is kept); ``api_key`` is an ``sk_…`` key. Thread-safe:
    each thread gets its own kept-alive connection.

    ``retries`` bounds how often a ``429``/``503`` (or a connection the
    server closed while idle) is retried; each wait is the ``Retry-After``
    the server gave, else exponential backoff with jitter, at most
    ``max_backoff`` seconds. A ``429`` is refused before anything is
    stored, so it is always safe to retry; a ``503`` may come from a proxy
    after the server stored the request, so a caller whose request is not
    safe to repeat passes ``retry_unavailable=False``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        max_backoff: float = 10.0,
        user_agent: str | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(
                f"the server URL must be http(s)://host[:port], got {base_url[:100]!r}"
            )
        if not api_key or not api_key.strip():
            raise ConfigError("the API key is empty; create one with `signet api-keys create`")
        if not all("!" <= c <= "~" for c in api_key.strip()):
            # http.client would refuse it later with the value in the message.
            raise ConfigError(
                "the API key holds a space, a control or a non-ASCII character; "
                "give the sk_… value exactly as `signet api-keys create` printed it"
            )
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self.base_url = f"{url.scheme}://{url.netloc}{self._prefix}"
        self._auth = f"Bearer {api_key.strip()}"
        self.timeout = timeout
        self.retries = retries
        self.max_backoff = max_backoff
        self._agent = user_agent or f"signet-sdk-python/{_version}"
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        # Re-entrant: abort() may run in a signal handler on a thread that
        # holds it.
        self._lock = threading.RLock()
        self._aborted = False

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, api_key=<hidden>)"

    # -- connections -------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            self._local.used = False
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
        self._local.conn = None

    def abort(self) -> None:
        """Shuts down every connection's socket (any thread's): a request in
        flight, such as a long-poll claim, fails at once with TransportError.
        Used for a prompt shutdown: the client sends nothing after it."""
        with self._lock:
            self._aborted = True
            conns = list(self._all)
        for conn in conns:
            sock = conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Closes this thread's connection (others close when their threads end)."""
        self._drop()

    # -- requests ----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retry_unavailable: bool = True,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Sends one request (retrying as the class says) and returns
        ``(status, headers, body)`` of the final answer, whatever its
        status. Raises TransportError when the server cannot be reached.

        ``retry_unavailable=False`` retries only ``429`` and returns a
        ``503`` at once: for a request that the server may have stored
        before a proxy answered ``503``, and that would do its work twice
        if sent again (a publish without an idempotency key)."""
        sent: dict[str, str] = {
            "authorization": self._auth,
            "user-agent": self._agent,
            "accept": "application/json",
        }
        if body is not None:
            sent["content-type"] = "application/json"
        if headers:
            sent.update({k.lower(): v for k, v in headers.items()})
        attempt = 0
        while True:
            if self._aborted:
                raise TransportError(f"{method} {path}: the client was shut down")
            conn = self._connection()
            reused = bool(getattr(self._local, "used", False))
            conn.timeout = timeout if timeout is not None else self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request(method, self._prefix + path, body=body, headers=sent)
                resp = conn.getresponse()
                data = resp.read()
            except _STALE as e:
                self._drop()
                # A kept-alive connection the server closed while idle: the
                # request never reached it, send it again on a new one.
                if reused and attempt == 0:
                    attempt += 1
                    continue
                raise TransportError(
                    f"{method} {path}: the connection to {self.base_url} broke ({type(e).__name__})"
                ) from None
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                what = "timed out" if isinstance(e, TimeoutError) else type(e).__name__
                raise TransportError(f"{method} {path}: {self.base_url} {what}: {e}") from None
            self._local.used = True
            if resp.will_close:
                self._drop()
            answer = {k.lower(): v for k, v in resp.getheaders()}
            if (
                resp.status in RETRY_STATUSES
                and (retry_unavailable or resp.status != 503)
                and attempt < self.retries
            ):
                wait = self._backoff(attempt, answer.get("retry-after"))
                log.info(
                    "%s %s answered %s; retrying in %.2fs", method, path, resp.status, wait
                )
                time.sleep(wait)
                attempt += 1
                continue
            return resp.status, answer, data

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after.strip()), 0.0), self.max_backoff)
            except ValueError:
                pass
        wait: float = min(self.max_backoff, 0.1 * 2**attempt)
        return wait * (0.5 + random.random() / 2)

    def call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retry_unavailable: bool = True,
    ) -> Any:
        """Sends JSON (``payload``, or the already-encoded ``raw`` bytes) and
        returns the parsed JSON answer of a 2xx. Anything else raises
        ApiError with the server's code and message. ``retry_unavailable``
        is :meth:`request`'s: ``False`` retries ``429`` only."""
        body = raw
        if body is None and payload is not None:
            body = json.dumps(payload, separators=(",", ":")).encode()
        status, _, data = self.request(
            method, path, body, headers=headers, timeout=timeout,
            retry_unavailable=retry_unavailable,
        )
        if 200 <= status < 300:
            return json.loads(data) if data else None
        raise api_error(status, data)


def client_for(url: str | Client, api_key: str | None, *, timeout: float) -> Client:
    """The client a producer or publisher talks through: ``url`` itself when
    it is a :class:`Client`, else a new one for the server at ``url`` with
    ``api_key`` (which it then needs: ``publish`` scope or higher)."""
    if isinstance(url, Client):
        return url
    if api_key is None:
        raise ConfigError("an API key is required (publish scope or higher)")
    return Client(url, api_key, timeout=timeout)


def api_error(status: int, data: bytes) -> ApiError:
    """The ApiError of a non-2xx answer: the server's ``{"error": {code,
    message}}``, or an excerpt of whatever else it sent."""
    try:
        err = json.loads(data)["error"]
        return ApiError(status, str(err["code"]), str(err["message"]))
    except (ValueError, KeyError, TypeError):
        text = data[:200].decode("utf-8", "replace")
        return ApiError(status, "http_error", text or http.client.responses.get(status, ""))
