"""A producer: signs tasks locally with the loaded keys and enqueues them
over HTTP (``POST /v1/tasks``, ``POST /v1/tasks/batch``).

The args are serialised to JSON once; those exact bytes are signed and
sent, and the server stores them and the signature unchanged. The task id
(``task_`` + a UUIDv7) and creation time are chosen here, since they are
signed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._batch import DEFAULT_BATCH_BYTES, post_in_parts
from .client import ApiError, Client, client_for
from .config import SigningConfig
from .envelope import TaskEnvelope, normalise_headers
from .errors import ConfigError, SignetError
from .keys import KeyRing
from .loader import LoadedKeys, load_keys
from .sign import sign_envelope

__all__ = ["BatchEnqueueError", "Producer", "TaskRequest", "new_task_id"]

log = logging.getLogger("signet_sdk.producer")

#: Default attempts of a task (the server's default).
DEFAULT_MAX_ATTEMPTS = 25


def new_task_id(now_ms: int | None = None) -> str:
    """``task_`` and a UUIDv7 in lower-case hex (time-ordered, random)."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    return f"task_{value:032x}"


def encode_args(args: Any) -> bytes:
    """The args as JSON bytes, serialised once (compact, UTF-8). ``None``
    is ``{}`` (what the server stores for no args)."""
    if args is None:
        return b"{}"
    try:
        return json.dumps(args, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise SignetError(f"args cannot be serialised to JSON: {e}") from None


@dataclass
class TaskRequest:
    """One task to enqueue (an item of :meth:`Producer.enqueue_batch`).
    ``raw_args`` (JSON bytes, sent and signed as they are) replaces
    ``args`` when given."""

    queue: str
    name: str
    args: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    not_before_ms: int | None = None
    expires_at_ms: int | None = None
    callback_url: str | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    raw_args: bytes | None = None


_FIELDS = frozenset(TaskRequest.__dataclass_fields__)


def _request(item: Mapping[str, Any]) -> TaskRequest:
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise SignetError(
            f"unknown task field(s) {', '.join(unknown)}; a task takes {', '.join(sorted(_FIELDS))}"
        )
    try:
        return TaskRequest(**item)
    except TypeError as e:
        raise SignetError(f"a task needs queue and name: {e}") from None


class BatchEnqueueError(SignetError):
    """A chunk of a batch was refused. The chunks before it are stored
    (``enqueued``, their task views, in order); the refused chunk and those
    after it are not. ``error`` is the server's answer; its message names
    the item in the chunk (``tasks[i]``), the chunk started at ``offset``."""

    reason = "api"

    def __init__(self, error: ApiError, offset: int, enqueued: list[dict[str, Any]]) -> None:
        super().__init__(
            f"batch refused at the chunk starting with item {offset} "
            f"({len(enqueued)} earlier items are stored): {error}"
        )
        self.error = error
        self.offset = offset
        self.enqueued = enqueued


class Producer:
    """Enqueues signed tasks. ``keys`` defaults to :func:`load_keys` (the
    ``SIGNET_SIGNING_*`` variables, or ``SIGNET_KEYS_FILE``, or the key file
    beside ``SIGNET_DATABASE_URL``'s SQLite database); a
    :class:`~signet_sdk.KeyRing` or :class:`~signet_sdk.SigningConfig` also
    works. A ring that cannot sign is refused unless ``unsigned=True``:
    then tasks are sent without a client signature (the server signs them
    if it has a key) and a warning is logged.
    """

    def __init__(
        self,
        url: str | Client,
        api_key: str | None = None,
        *,
        keys: LoadedKeys | SigningConfig | KeyRing | None = None,
        unsigned: bool = False,
        timeout: float = 30.0,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.client = client_for(url, api_key, timeout=timeout)
        self.batch_bytes = batch_bytes
        self.ring: KeyRing | None
        if unsigned:
            log.warning(
                "producer: unsigned=True: tasks are sent WITHOUT a client signature; "
                "only the server's own key (if any) signs them"
            )
            self.ring = None
            return
        if keys is None:
            loaded = load_keys()
            for w in loaded.all_warnings():
                log.warning("producer: %s", w)
            keys = loaded
        if isinstance(keys, LoadedKeys):
            keys = keys.signing
        ring = keys.ring if isinstance(keys, SigningConfig) else keys
        if ring.active is None:
            raise ConfigError(
                f"the key ring cannot sign ({ring.describe()}); give the producer a key that "
                "signs (SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS with "
                "SIGNET_SIGNING_ACTIVE_KEY, or the key file), or pass unsigned=True on purpose"
            )
        self.ring = ring

    def __repr__(self) -> str:
        signer = self.ring.active.id if self.ring and self.ring.active else "unsigned"
        return f"Producer({self.client.base_url!r}, signs with {signer})"

    def _body(self, req: TaskRequest, now_ms: int) -> bytes:
        """The JSON of one task request, the args spliced in as the exact
        bytes that were signed."""
        args = req.raw_args if req.raw_args is not None else encode_args(req.args)
        fields: dict[str, Any] = {"queue": req.queue, "task": req.name}
        headers = normalise_headers(req.headers)
        if headers:
            fields["headers"] = headers
        fields["max_attempts"] = req.max_attempts
        if req.not_before_ms is not None:
            fields["not_before"] = req.not_before_ms
        if req.expires_at_ms is not None:
            fields["expires_at"] = req.expires_at_ms
        if req.callback_url is not None:
            fields["callback_url"] = req.callback_url
        if req.priority is not None:
            fields["priority"] = req.priority
        if req.idempotency_key is not None:
            fields["idempotency_key"] = req.idempotency_key
        if self.ring is not None:
            envelope = TaskEnvelope(
                id=new_task_id(now_ms),
                queue=req.queue,
                name=req.name,
                args=args,
                headers=headers,
                created_at_ms=now_ms,
                not_before_ms=req.not_before_ms,
                expires_at_ms=req.expires_at_ms,
                max_attempts=req.max_attempts,
                callback_url=req.callback_url,
            )
            fields["id"] = envelope.id
            fields["created_at"] = now_ms
            fields["signature"] = sign_envelope(envelope, self.ring).to_dict()
        rest = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
        return b'{"args":' + args + b"," + rest[1:]

    def enqueue(
        self,
        queue: str,
        name: str,
        args: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        not_before_ms: int | None = None,
        expires_at_ms: int | None = None,
        callback_url: str | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
        raw_args: bytes | None = None,
    ) -> dict[str, Any]:
        """Signs and enqueues one task; returns the server's task view
        (``id``, ``state``, ``signature``, …). Raises ApiError when the
        server refuses it (the message names the field)."""
        req = TaskRequest(
            queue, name, args, headers or {}, max_attempts, not_before_ms, expires_at_ms,
            callback_url, priority, idempotency_key, raw_args,
        )
        view: dict[str, Any] = self.client.call(
            "POST", "/v1/tasks", raw=self._body(req, int(time.time() * 1000))
        )
        return view

    def enqueue_batch(
        self, items: Iterable[TaskRequest | Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Signs and enqueues many tasks, in chunks of at most 1 000 (and
        under ``batch_bytes``; halved when the server answers 413), each
        chunk all or nothing. Items are
        TaskRequest or mappings of its fields. Returns the task views in
        order (``existing: true`` for an item whose idempotency key was
        used before with the same request). A refused chunk raises
        BatchEnqueueError holding the views of the chunks stored before."""
        now_ms = int(time.time() * 1000)
        bodies = (
            self._body(item if isinstance(item, TaskRequest) else _request(item), now_ms)
            for item in items
        )
        return post_in_parts(
            self.client, "/v1/tasks/batch", "tasks", bodies, batch_bytes=self.batch_bytes,
            refused=lambda error, offset, _length, stored: BatchEnqueueError(
                error, offset, stored
            ),
        )

    def close(self) -> None:
        """Closes this thread's connection."""
        self.client.close()
