"""Every vector of docs/vectors/task-envelope.json: canonical bytes, both
signatures, both header forms, and verification with a ring that holds only
the Ed25519 public key."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from signet_sdk import (
    Algorithm,
    EnvelopeSignature,
    Key,
    KeyRing,
    sign_envelope,
    verify_envelope,
    verify_envelope_headers,
)

from conftest import envelope_from, load_vectors

CASES = load_vectors()["vectors"]
IDS = [c["name"] for c in CASES]


def test_file_is_the_format_and_has_the_cases(vectors: dict[str, Any]) -> None:
    assert vectors["format"] == "signet.task.v1"
    assert len(CASES) >= 5


def test_ed25519_public_key_matches_seed(vectors: dict[str, Any], ed_key: Key) -> None:
    assert ed_key.public_bytes is not None
    assert ed_key.public_bytes.hex() == vectors["ed25519_key"]["public_hex"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_canonical_bytes(case: dict[str, Any]) -> None:
    assert envelope_from(case["envelope"]).canonical_bytes().hex() == case["canonical_hex"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hmac_signature_and_header(case: dict[str, Any], hmac_key: Key) -> None:
    env = envelope_from(case["envelope"])
    sig = sign_envelope(env, KeyRing.single(hmac_key))
    want = case["hmac_sha256"]
    assert sig.alg is Algorithm.HMAC_SHA256
    assert sig.key_id == want["key_id"]
    assert sig.sig.hex() == want["sig_hex"]
    assert sig.header_value() == want["header"]
    assert sig.headers() == {
        "signet-signature": want["header"],
        "signet-signature-key": want["key_id"],
    }


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ed25519_signature_and_header(case: dict[str, Any], ed_key: Key) -> None:
    env = envelope_from(case["envelope"])
    sig = sign_envelope(env, KeyRing.single(ed_key))
    want = case["ed25519"]
    assert sig.alg is Algorithm.ED25519
    assert sig.key_id == want["key_id"]
    assert sig.sig.hex() == want["sig_hex"]
    assert sig.header_value() == want["header"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("alg", ["hmac_sha256", "ed25519"])
@pytest.mark.parametrize("padded", [True, False])
def test_published_headers_verify(
    case: dict[str, Any], alg: str, padded: bool, vectors: dict[str, Any]
) -> None:
    """The published header value (and its unpadded form) verifies with a
    ring holding only what a verifier has: the HMAC secret, or only the
    Ed25519 public key."""
    env = envelope_from(case["envelope"])
    ring = KeyRing(
        [
            Key.hmac(vectors["hmac_key"]["id"], bytes.fromhex(vectors["hmac_key"]["secret_hex"])),
            Key.ed25519_public(
                vectors["ed25519_key"]["id"], bytes.fromhex(vectors["ed25519_key"]["public_hex"])
            ),
        ]
    )
    header = case[alg]["header"] if padded else case[alg]["header"].rstrip("=")
    headers = {"Signet-Signature": header, "Signet-Signature-Key": case[alg]["key_id"]}
    assert verify_envelope_headers(env, headers, ring) == case[alg]["key_id"]
    parsed = EnvelopeSignature.from_headers(header, case[alg]["key_id"])
    assert parsed.sig.hex() == case[alg]["sig_hex"]
    stored = {"alg": parsed.alg.value, "key_id": parsed.key_id,
              "sig": base64.b64encode(parsed.sig).decode()}
    assert EnvelopeSignature.from_dict(stored) == parsed
    assert parsed.to_dict() == stored
    assert verify_envelope(env, parsed, ring) == case[alg]["key_id"]
