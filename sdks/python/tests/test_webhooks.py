"""Standard Webhooks receiving: the published vectors (vectors/
standard_webhooks.json) and what `signet sign` (SIGNET_BIN) prints, for
HMAC ``whsec_`` and Ed25519 ``whsk_``/``whpk_``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from signet_sdk import ConfigError, WebhookError, sign_webhook, verify_webhook
from signet_sdk.webhooks import parse_webhook_secret

from conftest import SDK
from signet_server import BIN, needs_server

VECTORS = json.loads((SDK / "../../vectors/standard_webhooks.json").read_text(encoding="utf-8"))


def vector(name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in VECTORS["vectors"] if v["name"] == name)
    return found


def headers(v: dict[str, Any], signature: str) -> dict[str, str]:
    return {
        "webhook-id": v["msg_id"],
        "webhook-timestamp": str(v["timestamp"]),
        "webhook-signature": signature,
    }


@pytest.mark.parametrize("name", ["sw_hmac_sign_official", "sw_hmac_sign_rust_lib"])
def test_hmac_vectors_sign_and_verify(name: str) -> None:
    v = vector(name)
    body = v["payload"].encode()
    assert sign_webhook(v["secret"], v["msg_id"], v["timestamp"], body) == v["expected_signature"]
    ok = verify_webhook(headers(v, v["expected_signature"]), body, v["secret"], now=v["timestamp"])
    assert ok.id == v["msg_id"] and ok.key == 1


def test_ed25519_vector_signs_with_whsk_and_verifies_with_whpk() -> None:
    v = vector("svix_ed25519_sign")
    body = v["payload"].encode()
    assert sign_webhook(v["secret_key"], v["msg_id"], v["timestamp"], body) == v["expected_signature"]
    verify_webhook(headers(v, v["expected_signature"]), body, v["public_key"], now=v["timestamp"])


@pytest.mark.parametrize(
    "name", ["sw_hmac_wrong_signature", "sw_hmac_multi_signature_one_valid",
             "sw_hmac_multi_signature_none_valid"]
)
def test_signature_list_vectors(name: str) -> None:
    v = vector(name)
    h = headers(v, v["signature_header"])
    if v["valid"]:
        verify_webhook(h, v["payload"].encode(), v["secret"], now=v["timestamp"])
    else:
        with pytest.raises(WebhookError):
            verify_webhook(h, v["payload"].encode(), v["secret"], now=v["timestamp"])


def test_partial_signatures_never_verify() -> None:
    v = vector("sw_hmac_partial_signature")
    for sig in v["signature_header_cases_all_invalid"]:
        with pytest.raises(WebhookError):
            verify_webhook(headers(v, sig), v["payload"].encode(), v["secret"], now=v["timestamp"])


def test_secret_with_or_without_prefix_and_padding() -> None:
    v = vector("sw_hmac_sign_official")
    bare = v["secret"].removeprefix("whsec_")
    body = v["payload"].encode()
    for secret in (v["secret"], bare, bare.rstrip("=")):
        verify_webhook(headers(v, v["expected_signature"]), body, secret, now=v["timestamp"])


def test_freshness_both_ways_and_reasons() -> None:
    v = vector("sw_hmac_sign_official")
    h = headers(v, v["expected_signature"])
    body = v["payload"].encode()
    ts = v["timestamp"]
    verify_webhook(h, body, v["secret"], now=ts + 300)
    verify_webhook(h, body, v["secret"], now=ts - 300)
    for now, reason in ((ts + 301, "too-old"), (ts - 301, "too-new")):
        with pytest.raises(WebhookError) as caught:
            verify_webhook(h, body, v["secret"], now=now)
        assert caught.value.reason == reason
    with pytest.raises(WebhookError) as caught:
        verify_webhook(h, body + b" ", v["secret"], now=ts)
    assert caught.value.reason == "mismatch"
    with pytest.raises(WebhookError) as caught:
        verify_webhook({**h, "webhook-signature": ""}, body, v["secret"], now=ts)
    assert caught.value.reason == "missing"
    with pytest.raises(WebhookError) as caught:
        verify_webhook({**h, "webhook-timestamp": "12a"}, body, v["secret"], now=ts)
    assert caught.value.reason == "malformed"


def test_bad_secrets_are_refused_without_showing_them() -> None:
    for bad in ("", "whsec_", "whsec_!!!notbase64", "whpk_AAAA"):
        with pytest.raises(ConfigError) as caught:
            parse_webhook_secret(bad)
        assert "notbase64" not in str(caught.value)


def run_sign(tmp_path: Path, body: bytes, *secrets: str, ts: int = 1_700_000_000) -> dict[str, str]:
    f = tmp_path / "body.json"
    f.write_bytes(body)
    argv = [BIN, "sign", "--id", "msg_from_rust", "--timestamp", str(ts), "--body-file", str(f)]
    for s in secrets:
        argv += ["--secret", s]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=30,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert out.returncode == 0, out.stderr
    return dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)


def generate_pair() -> tuple[str, str]:
    out = subprocess.run(
        [BIN, "keys", "generate", "--format", "standard", "--algorithm", "ed25519"],
        capture_output=True, text=True, timeout=30,
    ).stdout.split()
    secret = next(w for w in out if w.startswith("whsk_"))
    public = next(w for w in out if w.startswith("whpk_"))
    return secret, public


@needs_server
def test_what_signet_sign_prints_verifies(tmp_path: Path) -> None:
    body = b'{"order": 42,  "spaces": "kept"}'
    hmac_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signed = run_sign(tmp_path, body, hmac_secret)
    verify_webhook(signed, body, hmac_secret, now=1_700_000_000)
    assert signed["webhook-signature"] == sign_webhook(hmac_secret, "msg_from_rust", 1_700_000_000, body)
    whsk, whpk = generate_pair()
    signed = run_sign(tmp_path, body, whsk)
    ok = verify_webhook(signed, body, whpk, now=1_700_000_000)
    assert ok.algorithm.value == "ed25519"
    assert signed["webhook-signature"] == sign_webhook(whsk, "msg_from_rust", 1_700_000_000, body)
    # A rotation: two secrets sign, a receiver holding either one accepts.
    other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    signed = run_sign(tmp_path, body, hmac_secret, other)
    assert verify_webhook(signed, body, [other], now=1_700_000_000).key == 1
    with pytest.raises(WebhookError):
        verify_webhook(signed, body + b"x", [other, hmac_secret], now=1_700_000_000)
