"""Signing and verifying task envelopes (mirrors ``signet-sign``'s
``envelope.rs``).

A signature is stored beside the envelope as ``{alg, key_id, sig}`` and
carried on the wire as two headers::

    signet-signature: v1,<base64 of the 32-byte HMAC>      (hmac-sha256)
    signet-signature: v1a,<base64 of the 64-byte Ed25519>  (ed25519)
    signet-signature-key: <key id>

Verification outcomes are exceptions with the Rust side's reason codes:
``missing``, ``malformed``, ``unknown-key``, ``algorithm-mismatch``,
``mismatch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _b64
from .envelope import SIGNATURE_HEADER, SIGNATURE_KEY_HEADER, TaskEnvelope
from .errors import (
    AlgorithmMismatch,
    ConfigError,
    MalformedSignature,
    MissingSignature,
    SignatureMismatch,
    UnknownKey,
    quote,
)
from .keys import Algorithm, Key, KeyRing, validate_key_id

__all__ = ["EnvelopeSignature", "sign_envelope", "verify_envelope", "verify_envelope_headers"]


@dataclass(frozen=True)
class EnvelopeSignature:
    """An envelope's signature: ``{alg, key_id, sig}``."""

    #: The algorithm that made it.
    alg: Algorithm
    #: The id of the key that made it.
    key_id: str
    #: 32 bytes (HMAC-SHA256) or 64 (Ed25519).
    sig: bytes

    def header_value(self) -> str:
        """The ``signet-signature`` value: ``v1,<base64>`` or ``v1a,<base64>``."""
        return f"{self.alg.version},{_b64.encode(self.sig)}"

    def headers(self) -> dict[str, str]:
        """Both wire headers: ``signet-signature`` and ``signet-signature-key``."""
        return {SIGNATURE_HEADER: self.header_value(), SIGNATURE_KEY_HEADER: self.key_id}

    def to_dict(self) -> dict[str, str]:
        """The stored form: ``{"alg": "hmac-sha256", "key_id": …, "sig": base64}``
        (what ``signet tasks show --json`` prints)."""
        return {"alg": self.alg.value, "key_id": self.key_id, "sig": _b64.encode(self.sig)}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> EnvelopeSignature:
        """Parses the stored form. Raises MalformedSignature when a field is
        absent or wrong (``alg`` unknown, ``sig`` not base64, ``key_id``
        not a key id). The length is checked by :func:`verify_envelope`."""
        alg_text, key_id, sig_text = value.get("alg"), value.get("key_id"), value.get("sig")
        if not (isinstance(alg_text, str) and isinstance(key_id, str) and isinstance(sig_text, str)):
            raise MalformedSignature(
                'a stored signature is {"alg": …, "key_id": …, "sig": base64}; a field is '
                "missing or not a string"
            )
        try:
            alg = Algorithm.parse(alg_text)
        except ConfigError:
            raise MalformedSignature(
                f'signature algorithm {quote(alg_text[:32])} is unknown; expected '
                '"hmac-sha256" or "ed25519"'
            ) from None
        try:
            validate_key_id(key_id)
        except ConfigError as e:
            raise MalformedSignature(f"signature key_id is not a valid key id: {e}") from None
        try:
            sig = _b64.decode_signature(sig_text)
        except _b64.Base64Error as e:
            raise MalformedSignature(f"signature is not valid base64: {e}") from None
        return cls(alg, key_id, sig)

    @classmethod
    def from_headers(cls, signature: str | None, key_id: str | None) -> EnvelopeSignature:
        """Parses the ``signet-signature`` and ``signet-signature-key``
        values. Absent or empty → MissingSignature; unknown version, bad
        base64 (padding optional), wrong length or invalid key id →
        MalformedSignature."""
        signature = (signature or "").strip()
        key_id = (key_id or "").strip()
        if not signature:
            raise MissingSignature(
                f"{SIGNATURE_HEADER} header is missing or empty; the task was not signed"
            )
        if not key_id:
            raise MissingSignature(
                f"{SIGNATURE_KEY_HEADER} header is missing or empty; it must name the key "
                "that signed the task"
            )
        if "," not in signature:
            raise MalformedSignature(
                f'{SIGNATURE_HEADER} has no \',\'; expected "v1,<base64>" or "v1a,<base64>"'
            )
        version, value = signature.split(",", 1)
        alg = Algorithm.from_version(version)
        if alg is None:
            raise MalformedSignature(
                f"{SIGNATURE_HEADER} version {quote(version[:16])} is unknown; expected v1 "
                "(hmac-sha256) or v1a (ed25519)"
            )
        try:
            sig = _b64.decode_signature(value)
        except _b64.Base64Error as e:
            raise MalformedSignature(f"{SIGNATURE_HEADER} is not valid base64: {e}") from None
        if len(sig) != alg.signature_len:
            raise MalformedSignature(
                f"{SIGNATURE_HEADER} ({version}) is {len(sig)} bytes; {alg} signatures are "
                f"{alg.signature_len}"
            )
        try:
            validate_key_id(key_id)
        except ConfigError as e:
            raise MalformedSignature(
                f"{SIGNATURE_KEY_HEADER} is not a valid key id: {e}"
            ) from None
        return cls(alg, key_id, sig)

    def __repr__(self) -> str:
        return f"EnvelopeSignature({self.alg}, {self.key_id!r}, {_b64.encode(self.sig)!r})"


def sign_envelope(envelope: TaskEnvelope, ring: KeyRing) -> EnvelopeSignature:
    """Signs the canonical bytes with the ring's active key. Raises
    ConfigError when the ring has no active key (a verify-only ring) and
    UnsupportedError when the envelope cannot be encoded."""
    key = ring.active
    if key is None:
        raise ConfigError(
            f"the key ring has no active key ({ring.describe()}); set one that can sign "
            "to enqueue signed tasks"
        )
    data = envelope.canonical_bytes()
    return EnvelopeSignature(key.algorithm, key.id, key.sign(data))


def _resolve(alg: Algorithm, key_id: str, sig: bytes, ring: KeyRing) -> Key:
    key = ring.get(key_id)
    if key is None:
        raise UnknownKey(
            f"task is signed with key {quote(key_id[:64])}, which is not in the key ring "
            f"({ring.describe()}); add that key (its public key is enough for ed25519) or "
            "re-sign the task"
        )
    if key.algorithm is not alg:
        raise AlgorithmMismatch(
            f"task signature is {alg} but key {quote(key_id)} is a {key.algorithm} key; "
            "the signature cannot be from that key"
        )
    if len(sig) != alg.signature_len:
        raise MalformedSignature(
            f"task signature is {len(sig)} bytes; {alg} signatures are {alg.signature_len}"
        )
    return key


def verify_envelope(
    envelope: TaskEnvelope, signature: EnvelopeSignature | None, ring: KeyRing
) -> str:
    """Verifies ``signature`` over the envelope with ``ring`` and returns
    the id of the key that made it. Raises MissingSignature (None),
    UnknownKey, AlgorithmMismatch, MalformedSignature (wrong length) or
    SignatureMismatch. HMAC tags are compared in constant time; Ed25519 is
    verified strictly. This does not look at dev mode: a worker that honours
    ``SIGNET_DEV`` skips the call itself."""
    if signature is None:
        raise MissingSignature(
            f"task {quote(envelope.id)} has no signature; it was enqueued without a signing key"
        )
    key = _resolve(signature.alg, signature.key_id, signature.sig, ring)
    data = envelope.canonical_bytes()
    try:
        key.verify(data, signature.sig)
    except SignatureMismatch:
        raise SignatureMismatch(
            f"task signature does not match key {quote(key.id)} ({len(data)} canonical bytes); "
            "was the task changed after it was signed?"
        ) from None
    return key.id


def verify_envelope_headers(
    envelope: TaskEnvelope, headers: Mapping[str, str], ring: KeyRing
) -> str:
    """Verifies the envelope against its wire headers (names matched
    case-insensitively) and returns the key id; see :func:`verify_envelope`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = EnvelopeSignature.from_headers(
        lowered.get(SIGNATURE_HEADER), lowered.get(SIGNATURE_KEY_HEADER)
    )
    return verify_envelope(envelope, signature, ring)


