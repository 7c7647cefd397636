"""Sending a long list as batch requests: the one loop behind
:meth:`Producer.enqueue_batch <signet_sdk.Producer.enqueue_batch>` and
:meth:`MessagePublisher.publish_batch <signet_sdk.MessagePublisher.publish_batch>`.

Items arrive already encoded (the JSON bytes of one item each). They are
sent in parts of at most :data:`MAX_BATCH` items whose body stays under a
byte budget; a part the server finds too large (``413``) is halved until it
fits. Each part is one request, stored all or nothing, in order. The first
part refused stops the loop: ``refused`` turns the server's error into the
caller's exception, knowing where the part started, how long it was and
what the parts before it stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .client import ApiError, Client

#: Most items in one batch request (the server's limit, tasks and messages).
MAX_BATCH = 1000
#: Largest batch body sent, bytes: under the server's default 1 MiB limit.
DEFAULT_BATCH_BYTES = 1_000_000

#: Builds the exception for a refused part: ``(error, offset, length,
#: stored)``, where ``offset`` is the index of the part's first item among
#: all the items, ``length`` its item count and ``stored`` the views the
#: earlier parts got back, in order.
Refused = Callable[[ApiError, int, int, list[dict[str, Any]]], Exception]
#: Whether a part may be sent again after a ``503``: ``(offset, length)``
#: of the part among all the items. A ``503`` may come from a proxy after
#: the server stored the part, so only a part that is safe to repeat (every
#: item idempotent) should say yes.
Repeatable = Callable[[int, int], bool]


def post_in_parts(
    client: Client,
    path: str,
    list_name: str,
    bodies: Iterable[bytes],
    *,
    batch_bytes: int,
    refused: Refused,
    repeatable: Repeatable | None = None,
) -> list[dict[str, Any]]:
    """POSTs ``{"<list_name>": [...]}`` to ``path`` part by part and returns
    every view the server answered (its ``list_name`` list), in order.
    ``bodies`` is consumed lazily, so items are encoded as they are sent.
    A part the server answers ``503`` is retried (as the client retries)
    only when ``repeatable`` says yes for it; without ``repeatable``, always.
    ``429`` is always retried."""
    out: list[dict[str, Any]] = []
    offset = 0
    head = b'{"' + list_name.encode() + b'":['

    def send(part: list[bytes]) -> None:
        nonlocal offset
        body = head + b",".join(part) + b"]}"
        try:
            answer = client.call(
                "POST", path, raw=body,
                retry_unavailable=repeatable is None or repeatable(offset, len(part)),
            )
        except ApiError as e:
            if e.status == 413 and len(part) > 1:
                # Over this server's body limit: halve until it fits.
                send(part[: len(part) // 2])
                send(part[len(part) // 2 :])
                return
            raise refused(e, offset, len(part), out) from None
        out.extend(answer[list_name])
        offset += len(part)

    part: list[bytes] = []
    size = 0
    for item in bodies:
        if part and (len(part) >= MAX_BATCH or size + len(item) + 16 > batch_bytes):
            send(part)
            part, size = [], 0
        part.append(item)
        size += len(item) + 1
    if part:
        send(part)
    return out
