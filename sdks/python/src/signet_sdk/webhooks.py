"""Standard Webhooks: signing and verifying ``webhook-*`` headers as Signet
sends them (mirrors ``signet-sign``'s ``standard.rs``).

The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``;
``webhook-signature`` is a space-separated list of ``v1,<base64 HMAC-SHA256>``
and ``v1a,<base64 Ed25519>`` entries, and a message verifies when any entry
matches any key. Secrets: ``whsec_…`` (HMAC; base64 without a prefix too),
``whsk_…`` (Ed25519 seed ‖ public, signs) and ``whpk_…`` (Ed25519 public,
verifies only).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import _b64
from .errors import ConfigError, SignatureMismatch, VerificationError
from .keys import Algorithm, Key

__all__ = [
    "DEFAULT_TOLERANCE_SECS",
    "WebhookError",
    "WebhookVerified",
    "parse_webhook_secret",
    "sign_webhook",
    "verify_webhook",
    "webhook_keys",
]

#: Largest accepted |now − webhook-timestamp|, in seconds, both directions.
DEFAULT_TOLERANCE_SECS = 300

_PREFIXES = {
    "whsec_": "secret (whsec_)",
    "whsk_": "Ed25519 private key (whsk_)",
    "whpk_": "Ed25519 public key (whpk_)",
}


class WebhookError(VerificationError):
    """A webhook did not verify. ``reason`` is one of ``missing``,
    ``malformed``, ``too-old``, ``too-new``, ``algorithm-mismatch``,
    ``mismatch`` (as the Rust side names them)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class WebhookVerified:
    """A verified webhook: its id, timestamp, and which key matched (its
    position among the secrets given, from 1, and its algorithm)."""

    id: str
    timestamp: int
    key: int
    algorithm: Algorithm


def parse_webhook_secret(text: str, name: str = "secret") -> Key:
    """A key from a Standard Webhooks secret: ``whsec_`` + base64 (HMAC),
    ``whsk_`` + base64(seed ‖ public) (Ed25519, signs), ``whpk_`` +
    base64(public) (Ed25519, verifies only), or base64 without a prefix
    (HMAC). Padding is optional. Raises ConfigError naming the form, never
    the secret."""
    text = text.strip()
    form, payload = "", text
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            form, payload = prefix, text[len(prefix) :]
            break
    what = _PREFIXES.get(form, "secret")
    if not payload:
        raise ConfigError(
            f"{what} is empty; give the whsec_, whsk_ or whpk_ value issued for this endpoint"
        )
    try:
        material = _b64.decode_key(payload)
    except _b64.Base64Error as e:
        raise ConfigError(f"{what} is not valid base64: {e}") from None
    key_id = name if name else "secret"
    if form == "whsk_":
        if len(material) != 64:
            raise ConfigError(f"{what} is {len(material)} bytes; it must be 64 (seed ‖ public)")
        return Key.ed25519_private(key_id, material)
    if form == "whpk_":
        return Key.ed25519_public(key_id, material)
    return Key.hmac(key_id, material)


def webhook_keys(secrets: str | Key | Iterable[str | Key]) -> list[Key]:
    """Keys from one secret or several (a rotation), in order."""
    items: Sequence[str | Key] = (
        [secrets] if isinstance(secrets, (str, Key)) else list(secrets)
    )
    if not items:
        raise ConfigError("no webhook secret given; pass the whsec_, whsk_ or whpk_ value")
    return [
        s if isinstance(s, Key) else parse_webhook_secret(s, f"secret-{i}")
        for i, s in enumerate(items, 1)
    ]


def _content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    return b"".join((msg_id.encode(), b".", timestamp.encode(), b".", body))


def sign_webhook(
    secrets: str | Key | Iterable[str | Key], msg_id: str, timestamp: int, body: bytes
) -> str:
    """The ``webhook-signature`` value: one ``v1,…``/``v1a,…`` entry per key
    that can sign, space-separated. Raises ConfigError when none can
    (only ``whpk_`` public keys)."""
    if not msg_id:
        raise ConfigError("the webhook id is empty; every webhook needs one")
    if timestamp < 0:
        raise ConfigError(f"timestamp {timestamp} is negative; use unix seconds")
    content = _content(msg_id, str(timestamp), body)
    entries = [
        f"{k.algorithm.version},{_b64.encode(k.sign(content))}"
        for k in webhook_keys(secrets)
        if k.can_sign
    ]
    if not entries:
        raise ConfigError("no key can sign: a whpk_ public key only verifies")
    return " ".join(entries)


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return ""


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secrets: str | Key | Iterable[str | Key],
    *,
    tolerance_secs: int = DEFAULT_TOLERANCE_SECS,
    now: int | None = None,
) -> WebhookVerified:
    """Verifies a Standard Webhooks request: ``headers`` as received (names
    matched case-insensitively), ``body`` the raw bytes (never a
    re-serialised object), ``secrets`` one or several (rotation). Checks, in
    order: the headers are there, the timestamp is whole seconds within
    ``tolerance_secs`` of ``now`` (default: the clock), some entry matches
    some key. Raises WebhookError with the reason; returns which key
    matched. Remember ``webhook-id`` after this to drop duplicates."""
    keys = webhook_keys(secrets)
    msg_id = _header(headers, "webhook-id").strip()
    ts_text = _header(headers, "webhook-timestamp").strip()
    sig_header = _header(headers, "webhook-signature")
    if not msg_id:
        raise WebhookError("missing", "webhook-id header is missing or empty")
    if not ts_text:
        raise WebhookError("missing", "webhook-timestamp header is missing or empty")
    if not sig_header.strip():
        raise WebhookError("missing", "webhook-signature header is missing or empty")
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 18:
        raise WebhookError(
            "malformed", "webhook-timestamp is not a whole number of unix seconds"
        )
    ts = int(ts_text)
    clock = int(time.time()) if now is None else now
    if clock - ts > tolerance_secs:
        raise WebhookError(
            "too-old",
            f"webhook-timestamp is {clock - ts} s old; the limit is {tolerance_secs} s "
            "(a replay, or a clock off)",
        )
    if ts - clock > tolerance_secs:
        raise WebhookError(
            "too-new",
            f"webhook-timestamp is {ts - clock} s in the future; the limit is "
            f"{tolerance_secs} s (is a clock off?)",
        )
    content = _content(msg_id, ts_text, body)
    readable = 0
    versions_seen = set()
    for entry in sig_header.split():
        version, _, value = entry.partition(",")
        alg = Algorithm.from_version(version)
        if alg is None:
            continue
        versions_seen.add(alg)
        try:
            sig = _b64.decode_signature(value)
        except _b64.Base64Error:
            continue
        if len(sig) != alg.signature_len:
            continue
        readable += 1
        for position, key in enumerate(keys, 1):
            if key.algorithm is not alg:
                continue
            try:
                key.verify(content, sig)
            except (SignatureMismatch, VerificationError):
                continue
            return WebhookVerified(msg_id, ts, position, alg)
    if not versions_seen:
        raise WebhookError(
            "malformed", "webhook-signature has no v1 or v1a entry; expected \"v1,<base64>\""
        )
    if not any(k.algorithm in versions_seen for k in keys):
        have = ", ".join(sorted({str(k.algorithm) for k in keys}))
        raise WebhookError(
            "algorithm-mismatch",
            f"webhook-signature is signed with {', '.join(sorted(map(str, versions_seen)))} "
            f"but the secrets given are {have}",
        )
    if readable == 0:
        raise WebhookError(
            "malformed", "no webhook-signature entry is valid base64 of the right length"
        )
    raise WebhookError(
        "mismatch",
        f"the signature did not match the secret (body {len(body)} bytes; was the body "
        "re-serialised, or is the secret wrong?)",
    )
