"""The task envelope ``signet.task.v1``: the signed, immutable part of a
task, and its canonical bytes (docs/task-envelope.md; mirrors
``signet-sign``'s ``envelope.rs``).

Delivery state (attempt, state, lease, priority, errors) is not part of it,
so retries and replays never need re-signing. ``args`` are the exact bytes
the producer serialised: never parse and re-encode them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import UnsupportedError, quote

#: The 14-byte tag that starts the canonical bytes.
ENVELOPE_TAG = b"signet.task.v1"
#: The header that carries an envelope's signature (``v1,<b64>`` / ``v1a,<b64>``).
SIGNATURE_HEADER = "signet-signature"
#: The header that carries the id of the key that signed.
SIGNATURE_KEY_HEADER = "signet-signature-key"
#: Header names never signed themselves.
SIGNATURE_HEADERS = (SIGNATURE_HEADER, SIGNATURE_KEY_HEADER)

_ABSENT = 0xFFFFFFFF
_TOKEN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
)
_I64 = (-(2**63), 2**63 - 1)
_U32 = (0, 2**32 - 1)


def normalise_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """Lower-cases header names, drops the signature headers, and refuses
    (UnsupportedError) duplicates (two names equal after lower-casing) and
    names or values that are not valid header text."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for raw_name, value in items:
        name = raw_name.translate(_LOWER)
        if not name or any(c not in _TOKEN for c in name):
            raise UnsupportedError(
                f"header name {quote(name)} is not a valid token; use letters, digits and - _ ."
            )
        if not isinstance(value, str):
            raise UnsupportedError(f"header {quote(name)} has a value that is not a string")
        if any(c in "\r\n\0" for c in value):
            raise UnsupportedError(
                f"header {quote(name)} has a value with CR, LF or NUL; remove them"
            )
        if name in SIGNATURE_HEADERS:
            continue
        if name in out:
            raise UnsupportedError(
                f"header {quote(name)} is given twice (names are case-insensitive); send it once"
            )
        out[name] = value
    return out


# ASCII-only lower-casing, as Rust's to_ascii_lowercase (str.lower() would
# also fold non-ASCII letters, which are refused anyway).
_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


@dataclass(frozen=True, kw_only=True)
class TaskEnvelope:
    """The signed fields of a task. Build ``headers`` with
    :func:`normalise_headers` (names must be lower-case to encode)."""

    #: Task id (``task_…``).
    id: str
    #: Queue name.
    queue: str
    #: Task (handler) name.
    name: str
    #: The exact bytes the producer serialised (normally JSON).
    args: bytes
    #: Creation time, unix milliseconds.
    created_at_ms: int
    #: Attempts allowed, the first one included (unsigned 32-bit).
    max_attempts: int
    #: Headers: lower-case names; signature headers are never signed.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Not to run before this time, unix milliseconds.
    not_before_ms: int | None = None
    #: Not to run after this time, unix milliseconds.
    expires_at_ms: int | None = None
    #: Where to send a signed callback when the task finishes.
    callback_url: str | None = None

    def __post_init__(self) -> None:
        # A read-only copy, so a signed envelope cannot change under its signature.
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        if isinstance(self.args, (bytearray, memoryview)):
            object.__setattr__(self, "args", bytes(self.args))

    def canonical_bytes(self) -> bytes:
        """The bytes that are signed. Raises UnsupportedError for a field
        that cannot be encoded (wrong type, out of range, an upper-case
        header name, longer than 4 GiB − 2 bytes)."""
        out = bytearray(ENVELOPE_TAG)
        _field(out, _text("id", self.id))
        _field(out, _text("queue", self.queue))
        _field(out, _text("name", self.name))
        if not isinstance(self.args, bytes):
            raise UnsupportedError(
                "args must be bytes: the exact bytes the producer serialised "
                "(for JSON, encode once and keep those bytes)"
            )
        _field(out, self.args)
        headers = sorted(
            (_text("header name", k), _header_value(k, v))
            for k, v in self.headers.items()
            if k not in SIGNATURE_HEADERS
        )
        out += struct.pack(">I", _length(len(headers)))
        for name, value in headers:
            if any(0x41 <= b <= 0x5A for b in name):
                raise UnsupportedError(
                    f"header name {quote(name.decode())} is not lower-case; "
                    "build headers with normalise_headers"
                )
            _field(out, name)
            _field(out, value)
        _field(out, _number("created_at_ms", self.created_at_ms, _I64))
        _optional(out, _opt_number("not_before_ms", self.not_before_ms))
        _optional(out, _opt_number("expires_at_ms", self.expires_at_ms))
        _field(out, _number("max_attempts", self.max_attempts, _U32))
        _optional(
            out, None if self.callback_url is None else _text("callback_url", self.callback_url)
        )
        return bytes(out)


def _text(what: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise UnsupportedError(f"{what} must be a string, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsupportedError(f"{what} is not valid Unicode text (a lone surrogate)") from None


def _header_value(name: str, value: object) -> bytes:
    # The message (naming the header) is only built when it is needed.
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            pass
    return _text(f"header {quote(name)}", value)


def _number(what: str, value: object, bounds: tuple[int, int]) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnsupportedError(f"{what} must be an integer, not {type(value).__name__}")
    if not bounds[0] <= value <= bounds[1]:
        raise UnsupportedError(f"{what} is {value}; it must be from {bounds[0]} to {bounds[1]}")
    return str(value).encode("ascii")


def _opt_number(what: str, value: object) -> bytes | None:
    return None if value is None else _number(what, value, _I64)


def _length(n: int) -> int:
    if n >= _ABSENT:
        raise UnsupportedError(
            f"a field of {n} bytes is too long to sign; the limit is 4 GiB - 2"
        )
    return n


def _field(out: bytearray, data: bytes) -> None:
    out += struct.pack(">I", _length(len(data)))
    out += data


def _optional(out: bytearray, data: bytes | None) -> None:
    if data is None:
        out += struct.pack(">I", _ABSENT)
    else:
        _field(out, data)
