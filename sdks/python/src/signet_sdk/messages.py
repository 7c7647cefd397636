"""Publishing messages: signed HTTP deliveries (webhooks) that Signet makes
for you, with retries (``POST /v1/messages``, ``POST /v1/messages/batch``).

Nothing is signed here: the server signs every delivery, with the target's
secret when the message names a target, else with its own key ring (a
Standard Webhooks signature a receiver checks with :func:`verify_webhook
<signet_sdk.verify_webhook>`). The SDK checks locally only what it can
know for certain (a message is a mapping with known fields, its body is
JSON, a batch is not empty); every field rule is the server's, and its
``422`` names the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._batch import DEFAULT_BATCH_BYTES, post_in_parts
from .client import ApiError, Client, api_error, client_for
from .errors import SignetError

__all__ = ["BatchPublishError", "MessagePublisher", "MessageRequest"]


@dataclass
class MessageRequest:
    """One message to publish (an item of
    :meth:`MessagePublisher.publish_batch`; the keywords of
    :meth:`MessagePublisher.publish`).

    - ``url``: where to deliver, ``http://`` or ``https://``.
    - ``body``: a ``str`` is sent as it is (``bytes`` too, when UTF-8); any
      other JSON value is sent as its compact JSON text with
      ``content-type: application/json`` unless ``headers`` set one.
      ``None``: no body.
    - ``target``: a target id (``tgt_…``) or name; its secret signs and its
      limits apply. Without one the server's own key signs.
    - ``headers``: sent with the request (the server refuses signature,
      ``Host``, ``Content-Length`` and hop-by-hop headers).
    - ``signature_profile``: ``standard`` (the server's default), ``svix``,
      or, with a target, ``stromboli``, ``krafter``, ``github``, ``stripe``.
    - ``callback_url``: a signed callback goes there when the message is
      delivered or dead.
    - ``delay_ms`` or ``not_before`` (unix ms, an RFC 3339 string, or an
      aware ``datetime``): no attempt before then.
    - ``max_attempts`` (1–100) and ``retry_schedule_ms`` (the waits between
      attempts): the server's defaults when left out.
    - ``method``: the HTTP method, ``POST`` when left out.
    - ``idempotency_key``: a repeat with the same key and request answers
      the first message (``existing``), with another request ``409``.
    """

    url: str
    body: Any = None
    target: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    signature_profile: str | None = None
    callback_url: str | None = None
    delay_ms: int | None = None
    not_before: int | str | datetime | None = None
    max_attempts: int | None = None
    retry_schedule_ms: Sequence[int] | None = None
    method: str | None = None
    idempotency_key: str | None = None


_FIELDS = frozenset(MessageRequest.__dataclass_fields__)
#: The item a batch error names at the start of its message: ``messages[3]``.
_ITEM = re.compile(r"^messages\[(\d+)\]")


def _request(index: int, item: MessageRequest | Mapping[str, Any]) -> MessageRequest:
    """Item ``index`` of a batch as a MessageRequest, or why it cannot be one."""
    if isinstance(item, MessageRequest):
        return item
    if not isinstance(item, Mapping):
        raise SignetError(
            f"messages[{index}] is a {type(item).__name__}; give each message as a "
            "MessageRequest or a mapping of its fields"
        )
    unknown = sorted(str(k) for k in set(item) - _FIELDS)
    if unknown:
        raise SignetError(
            f"messages[{index}]: unknown field(s) {', '.join(unknown)}; a message takes "
            f"{', '.join(sorted(_FIELDS))}"
        )
    if "url" not in item:
        raise SignetError(
            f"messages[{index}]: url is missing; every message needs the URL to deliver to"
        )
    return MessageRequest(**item)


def _keyed(req: MessageRequest) -> bool:
    """Whether sending ``req`` again is safe: with an idempotency key a
    repeat answers the first message instead of publishing another."""
    return bool(req.idempotency_key)


def _not_before(value: int | str | datetime, name: str) -> int | str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise SignetError(
                f"{name}: a naive datetime; give it a time zone "
                "(datetime.now(timezone.utc) + …) so the instant is certain"
            )
        return int(value.timestamp() * 1000)
    return value


def encode_message(req: MessageRequest, where: str = "") -> bytes:
    """The JSON of one message as the server takes it (compact, UTF-8),
    fields left as ``None`` omitted. ``where`` names the message in local
    errors (a batch item's ``messages[i]``), as the server names it."""
    named = f"{where}.{{}}" if where else "{}"
    fields: dict[str, Any] = {"url": req.url}
    if req.method is not None:
        fields["method"] = req.method
    if req.headers:
        # Anything but a mapping goes as it is, for the server to name.
        fields["headers"] = dict(req.headers) if isinstance(req.headers, Mapping) else req.headers
    body = req.body
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise SignetError(
                f"{named.format('body')}: the bytes are not UTF-8 text; a message body is "
                "sent as text, so base64-encode binary data (or pass the JSON value itself)"
            ) from None
    if body is not None:
        fields["body"] = body
    for name in ("target", "signature_profile", "callback_url", "delay_ms"):
        value = getattr(req, name)
        if value is not None:
            fields[name] = value
    if req.not_before is not None:
        fields["not_before"] = _not_before(req.not_before, named.format("not_before"))
    if req.max_attempts is not None:
        fields["max_attempts"] = req.max_attempts
    if req.retry_schedule_ms is not None:
        fields["retry_schedule_ms"] = list(req.retry_schedule_ms)
    if req.idempotency_key is not None:
        fields["idempotency_key"] = req.idempotency_key
    try:
        return json.dumps(
            fields, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as e:
        what = f"{where}: the message" if where else "the message"
        raise SignetError(f"{what} cannot be serialised to JSON: {e}") from None


class BatchPublishError(SignetError):
    """A part of :meth:`MessagePublisher.publish_batch` was refused; it and
    the parts after it are not published, the parts before it are.

    - ``index``: the message refused, counted from 0 over the whole batch
      (``None`` when the server named none, e.g. a ``503``: then the whole
      part from ``offset`` was refused).
    - ``offset``: the index of the refused part's first message.
    - ``published``: the views of the messages published by earlier parts,
      in order (messages ``0`` to ``offset - 1``).
    - ``error``: the server's :class:`ApiError`, its message naming the item
      by its index in the whole batch (``messages[1003].url: …``).
    """

    reason = "api"

    def __init__(
        self, error: ApiError, index: int | None, offset: int, published: list[dict[str, Any]]
    ) -> None:
        which = f"message {index}" if index is not None else f"the part from message {offset}"
        super().__init__(
            f"batch refused at {which} ({len(published)} earlier messages are published, "
            f"none from {offset} on): {error}"
        )
        self.error = error
        self.index = index
        self.offset = offset
        self.published = published


def _refused(
    error: ApiError, offset: int, length: int, published: list[dict[str, Any]]
) -> BatchPublishError:
    """The BatchPublishError of a part: the server's item index re-based
    from the part to the whole batch."""
    index: int | None = None
    message = error.server_message
    m = _ITEM.match(message)
    if m:
        index = offset + int(m.group(1))
        message = f"messages[{index}]{message[m.end():]}"
    elif length == 1:
        index = offset
    rebased = ApiError(error.status, error.code, message)
    return BatchPublishError(rebased, index, offset, published)


class MessagePublisher:
    """Publishes messages: Signet delivers each to its URL, signed, with
    retries. ``url`` is the server (``SIGNET_URL``) or a :class:`Client`;
    ``api_key`` (``SIGNET_API_KEY``) needs the ``publish`` scope or higher.
    Needs no signing keys: the server signs. Thread-safe, as the client is.

    Retries: a ``429`` is always retried (the server refused the request
    before storing anything). A ``503`` may come from a proxy after the
    server stored the message, and the server picks message ids, so sending
    it again could publish it twice: a publish is retried on ``503`` only
    when its message, or for a batch part every message of that part, has
    an ``idempotency_key`` (a repeat then answers the first message).
    Without one the ``503`` is raised at once; publish again with a key to
    be sure the message is there exactly once.
    """

    def __init__(
        self,
        url: str | Client,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.client = client_for(url, api_key, timeout=timeout)
        self.batch_bytes = batch_bytes

    def __repr__(self) -> str:
        return f"MessagePublisher({self.client.base_url!r})"

    def publish(
        self,
        url: str,
        *,
        body: Any = None,
        target: str | None = None,
        headers: Mapping[str, str] | None = None,
        signature_profile: str | None = None,
        callback_url: str | None = None,
        delay_ms: int | None = None,
        not_before: int | str | datetime | None = None,
        max_attempts: int | None = None,
        retry_schedule_ms: Sequence[int] | None = None,
        method: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Publishes one message (the fields are :class:`MessageRequest`'s)
        and returns the server's view of it (``id`` ``msg_…``, ``state``
        ``available`` or ``scheduled``, …) with ``existing``: ``False`` when
        it was created now, ``True`` when ``idempotency_key`` was used before
        with the same request and this is that first message. Raises
        ApiError when the server refuses it: ``422`` naming the field,
        ``409`` ``idempotency_conflict`` for a key used with another request.
        A ``503`` is retried only with an ``idempotency_key`` (see the class).
        """
        req = MessageRequest(
            url, body, target, headers or {}, signature_profile, callback_url, delay_ms,
            not_before, max_attempts, retry_schedule_ms, method, idempotency_key,
        )
        status, _, data = self.client.request(
            "POST", "/v1/messages", encode_message(req),
            # Without a key a repeat after a proxy's 503 could publish twice.
            retry_unavailable=_keyed(req),
        )
        if not 200 <= status < 300:
            raise api_error(status, data)
        view: dict[str, Any] = json.loads(data)
        # 201: created now; 200: the key's first message.
        view["existing"] = status != 201
        return view

    def publish_batch(
        self, messages: Iterable[MessageRequest | Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Publishes many messages, in order, in requests of at most 1 000
        messages and ``batch_bytes`` (halved when the server answers
        ``413``), each request all or nothing. Items are MessageRequest or
        mappings of its fields, each with its own ``idempotency_key`` if
        any. Returns the message views in order, each with ``existing``.

        Raises SignetError, before sending anything, for an item that is no
        message (not a mapping, an unknown field, no url, a body that
        is not JSON) or an empty batch; BatchPublishError when the server
        refuses a part (``index`` the refused message, ``published`` what
        earlier parts published). A part is retried on ``503`` only when
        every message of it has an ``idempotency_key`` (see the class)."""
        if isinstance(messages, (Mapping, MessageRequest, str, bytes)):
            raise SignetError(
                f"publish_batch takes a list of messages, not one {type(messages).__name__}; "
                "wrap it in a list, or call publish() for a single message"
            )
        # Every item is encoded before the first request, so a local mistake
        # in message 1500 publishes nothing rather than the first 1000.
        bodies: list[bytes] = []
        # Whether each message may be sent again after a 503 (it has a key).
        keyed: list[bool] = []
        for i, item in enumerate(messages):
            req = _request(i, item)
            bodies.append(encode_message(req, f"messages[{i}]"))
            keyed.append(_keyed(req))
        if not bodies:
            raise SignetError("no messages to publish: publish_batch needs at least one message")
        return post_in_parts(
            self.client, "/v1/messages/batch", "messages", bodies,
            batch_bytes=self.batch_bytes, refused=_refused,
            repeatable=lambda offset, length: all(keyed[offset : offset + length]),
        )

    def close(self) -> None:
        """Closes this thread's connection."""
        self.client.close()
