"""Every verification outcome, and every signed field tampered with."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from signet_sdk import (
    AlgorithmMismatch,
    ConfigError,
    EnvelopeSignature,
    Key,
    KeyRing,
    MalformedSignature,
    MissingSignature,
    SignatureMismatch,
    TaskEnvelope,
    UnknownKey,
    UnsupportedError,
    VerificationError,
    normalise_headers,
    sign_envelope,
    verify_envelope,
    verify_envelope_headers,
)
from signet_sdk._ed25519 import L

TAMPERS: list[tuple[str, dict[str, Any]]] = [
    ("id", {"id": "task_other"}),
    ("queue", {"queue": "other"}),
    ("name", {"name": "email.sent"}),
    ("args", {"args": b'{"to":"eve@example.com","template":"welcome"}'}),
    ("args-whitespace", {"args": b'{"to": "ada@example.com","template":"welcome"}'}),
    ("header-value", {"headers": {"tenant": "evil", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-request-id": "req-42"}}),
    ("header-added", {"headers": {"tenant": "acme", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-request-id": "req-42", "x-more": "1"}}),
    ("header-removed", {"headers": {"tenant": "acme"}}),
    ("created_at", {"created_at_ms": 1767225600001}),
    ("not_before-absent", {"not_before_ms": None}),
    ("expires_at", {"expires_at_ms": 1767312000001}),
    ("max_attempts", {"max_attempts": 26}),
    ("callback_url-empty", {"callback_url": ""}),
    ("callback_url-absent", {"callback_url": None}),
]


def rings(hmac_key: Key, ed_key: Key) -> list[KeyRing]:
    return [KeyRing.single(hmac_key), KeyRing.single(ed_key)]


@pytest.mark.parametrize("change", [t[1] for t in TAMPERS], ids=[t[0] for t in TAMPERS])
@pytest.mark.parametrize("alg", ["hmac", "ed25519"])
def test_any_signed_field_changed_is_a_mismatch(
    sample: TaskEnvelope, hmac_key: Key, ed_key: Key, change: dict[str, Any], alg: str
) -> None:
    ring = KeyRing.single(hmac_key if alg == "hmac" else ed_key)
    sig = sign_envelope(sample, ring)
    assert verify_envelope(sample, sig, ring.verify_only()) == sig.key_id
    changed = dataclasses.replace(sample, **change)
    with pytest.raises(SignatureMismatch) as caught:
        verify_envelope(changed, sig, ring.verify_only())
    assert caught.value.reason == "mismatch"
    assert str(caught.value) == (
        f'task signature does not match key "{sig.key_id}" '
        f"({len(changed.canonical_bytes())} canonical bytes); was the task changed after it "
        "was signed?"
    )


def test_delivery_state_is_not_signed(sample: TaskEnvelope, hmac_key: Key) -> None:
    """Signature headers among the headers are never signed."""
    ring = KeyRing.single(hmac_key)
    sig = sign_envelope(sample, ring)
    with_sig = dataclasses.replace(sample, headers={**sample.headers, **sig.headers()})
    assert with_sig.canonical_bytes() == sample.canonical_bytes()
    assert verify_envelope(with_sig, sig, ring) == sig.key_id


@pytest.mark.parametrize("alg", ["hmac", "ed25519"])
def test_flipped_signature_bit_is_a_mismatch(
    sample: TaskEnvelope, hmac_key: Key, ed_key: Key, alg: str
) -> None:
    ring = KeyRing.single(hmac_key if alg == "hmac" else ed_key)
    sig = sign_envelope(sample, ring)
    for i in (0, len(sig.sig) - 1):
        bad = bytearray(sig.sig)
        bad[i] ^= 1
        with pytest.raises(SignatureMismatch):
            verify_envelope(sample, dataclasses.replace(sig, sig=bytes(bad)), ring)


def test_ed25519_malleated_s_is_rejected(sample: TaskEnvelope, ed_key: Key) -> None:
    """S + ℓ verifies under a lax verifier; the strict policy refuses it."""
    ring = KeyRing.single(ed_key)
    sig = sign_envelope(sample, ring)
    s = int.from_bytes(sig.sig[32:], "little") + L
    assert s < 2**256
    bad = sig.sig[:32] + s.to_bytes(32, "little")
    with pytest.raises(SignatureMismatch):
        verify_envelope(sample, dataclasses.replace(sig, sig=bad), ring)


def test_missing(sample: TaskEnvelope, hmac_key: Key) -> None:
    ring = KeyRing.single(hmac_key)
    with pytest.raises(MissingSignature) as caught:
        verify_envelope(sample, None, ring)
    assert caught.value.reason == "missing"
    assert str(caught.value) == (
        'task "task_01JD8X3V9Q2M4N5P6R7S8T9V0W" has no signature; it was enqueued without a '
        "signing key"
    )
    sig = sign_envelope(sample, ring)
    for headers, message in [
        ({}, "signet-signature header is missing or empty; the task was not signed"),
        ({"signet-signature": " ", "signet-signature-key": "k"},
         "signet-signature header is missing or empty; the task was not signed"),
        ({"signet-signature": sig.header_value()},
         "signet-signature-key header is missing or empty; it must name the key that signed "
         "the task"),
    ]:
        with pytest.raises(MissingSignature) as caught:
            verify_envelope_headers(sample, headers, ring)
        assert str(caught.value) == message


MALFORMED = [
    ("no-comma", "v1AAAA", "k", "signet-signature has no ','; expected \"v1,<base64>\" or \"v1a,<base64>\""),
    ("unknown-version", "v2,AAAA", "k", 'signet-signature version "v2" is unknown; expected v1 (hmac-sha256) or v1a (ed25519)'),
    ("bad-base64", "v1,AA*A", "k", "signet-signature is not valid base64: character 3 is not in the base64 alphabet"),
    ("trailing-bits", "v1,AB", "k", "signet-signature is not valid base64: character 2 has bits set past the end of the data"),
    ("too-much-padding", "v1,AA===", "k", "signet-signature is not valid base64: character 3 is not in the base64 alphabet"),
    ("short", "v1,AAAA", "k", "signet-signature (v1) is 3 bytes; hmac-sha256 signatures are 32"),
    ("hmac-length-under-v1a", "v1a," + base64.b64encode(bytes(32)).decode(), "k", "signet-signature (v1a) is 32 bytes; ed25519 signatures are 64"),
    ("bad-key-id", "v1," + base64.b64encode(bytes(32)).decode(), "k y", 'signet-signature-key is not a valid key id: key id "k y" contains \' \'; use only A-Z a-z 0-9 . _ -'),
    ("long-key-id", "v1," + base64.b64encode(bytes(32)).decode(), "k" * 65, "signet-signature-key is not a valid key id: key id is 65 characters long; the limit is 64"),
]


@pytest.mark.parametrize("sig,key_id,message", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_headers(sig: str, key_id: str, message: str) -> None:
    with pytest.raises(MalformedSignature) as caught:
        EnvelopeSignature.from_headers(sig, key_id)
    assert caught.value.reason == "malformed"
    assert str(caught.value) == message


def test_malformed_stored_length(sample: TaskEnvelope, hmac_key: Key) -> None:
    ring = KeyRing.single(hmac_key)
    sig = sign_envelope(sample, ring)
    with pytest.raises(MalformedSignature) as caught:
        verify_envelope(sample, dataclasses.replace(sig, sig=sig.sig[:31]), ring)
    assert str(caught.value) == "task signature is 31 bytes; hmac-sha256 signatures are 32"
    with pytest.raises(MalformedSignature):
        EnvelopeSignature.from_dict({"alg": "rsa", "key_id": "k", "sig": ""})
    with pytest.raises(MalformedSignature):
        EnvelopeSignature.from_dict({"alg": "ed25519", "key_id": "k"})


def test_unknown_key(sample: TaskEnvelope, hmac_key: Key, ed_key: Key) -> None:
    sig = sign_envelope(sample, KeyRing.single(hmac_key))
    ring = KeyRing.single(ed_key).verify_only()
    with pytest.raises(UnknownKey) as caught:
        verify_envelope(sample, sig, ring)
    assert caught.value.reason == "unknown-key"
    assert str(caught.value) == (
        'task is signed with key "vectors-hmac", which is not in the key ring (keys: '
        "vectors-ed25519); add that key (its public key is enough for ed25519) or re-sign the task"
    )


def test_algorithm_mismatch(sample: TaskEnvelope, hmac_key: Key, ed_key: Key) -> None:
    sig = sign_envelope(sample, KeyRing.single(ed_key))
    # An Ed25519 signature that names the HMAC key's id.
    forged = EnvelopeSignature(sig.alg, "vectors-hmac", sig.sig)
    ring = KeyRing([hmac_key, ed_key.to_verifying()])
    with pytest.raises(AlgorithmMismatch) as caught:
        verify_envelope(sample, forged, ring)
    assert caught.value.reason == "algorithm-mismatch"
    assert isinstance(caught.value, VerificationError)
    assert str(caught.value) == (
        'task signature is ed25519 but key "vectors-hmac" is a hmac-sha256 key; the signature '
        "cannot be from that key"
    )


def test_a_verify_only_ring_cannot_sign(sample: TaskEnvelope, ed_key: Key) -> None:
    ring = KeyRing.single(ed_key).verify_only()
    with pytest.raises(ConfigError) as caught:
        sign_envelope(sample, ring)
    assert str(caught.value) == (
        "the key ring has no active key (keys: vectors-ed25519); set one that can sign to "
        "enqueue signed tasks"
    )
    with pytest.raises(UnsupportedError):
        ring.keys[0].sign(b"x")


def test_ring_refusals(hmac_key: Key, ed_key: Key) -> None:
    with pytest.raises(ConfigError, match='key id "vectors-hmac" appears twice'):
        KeyRing([hmac_key, hmac_key])
    with pytest.raises(ConfigError, match='active key "nope" is not in the key ring'):
        KeyRing([hmac_key], "nope")
    with pytest.raises(ConfigError, match="is an Ed25519 public key and cannot sign"):
        KeyRing([ed_key.to_verifying()], "vectors-ed25519")


def test_header_rules() -> None:
    assert normalise_headers({"Tenant": "a", "Signet-Signature": "v1,x", "X-B": ""}) == {
        "tenant": "a",
        "x-b": "",
    }
    for headers, message in [
        ([("A", "1"), ("a", "2")], 'header "a" is given twice (names are case-insensitive); send it once'),
        ([("a b", "1")], 'header name "a b" is not a valid token; use letters, digits and - _ .'),
        ([("", "1")], 'header name "" is not a valid token; use letters, digits and - _ .'),
        ([("é", "1")], 'header name "é" is not a valid token; use letters, digits and - _ .'),
        ([("a", "x\r\ny")], 'header "a" has a value with CR, LF or NUL; remove them'),
    ]:
        with pytest.raises(UnsupportedError) as caught:
            normalise_headers(headers)
        assert str(caught.value) == message


def test_what_cannot_be_encoded(sample: TaskEnvelope) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"headers": {"Tenant": "x"}}, 'header name "Tenant" is not lower-case; build headers with normalise_headers'),
        ({"args": "text"}, "args must be bytes: the exact bytes the producer serialised (for JSON, encode once and keep those bytes)"),
        ({"max_attempts": 2**32}, "max_attempts is 4294967296; it must be from 0 to 4294967295"),
        ({"max_attempts": -1}, "max_attempts is -1; it must be from 0 to 4294967295"),
        ({"created_at_ms": 2**63}, f"created_at_ms is {2**63}; it must be from {-2**63} to {2**63 - 1}"),
        ({"expires_at_ms": True}, "expires_at_ms must be an integer, not bool"),
        ({"queue": None}, "queue must be a string, not NoneType"),
        ({"name": "\ud800"}, "name is not valid Unicode text (a lone surrogate)"),
    ]
    for change, message in cases:
        with pytest.raises(UnsupportedError) as caught:
            dataclasses.replace(sample, **change).canonical_bytes()
        assert str(caught.value) == message


def test_envelopes_are_immutable(sample: TaskEnvelope) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.args = b"{}"  # type: ignore[misc]
    with pytest.raises(TypeError):
        sample.headers["tenant"] = "evil"  # type: ignore[index]
