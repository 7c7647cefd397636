"""Ed25519 strictness (docs/ed25519-policy.md) against Wycheproof: every
`invalid` case is rejected and every `valid` one accepted, through the
same Key.verify that envelope verification uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signet_sdk import ConfigError, Key, SignatureMismatch, MalformedSignature

from conftest import WYCHEPROOF_ED25519


def cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    data = json.loads(WYCHEPROOF_ED25519.read_text())
    return [
        (f"tc{t['tcId']}", g["publicKey"], t) for g in data["testGroups"] for t in g["tests"]
    ]


CASES = cases()


def test_the_file_has_only_valid_and_invalid() -> None:
    assert {t["result"] for _, _, t in CASES} == {"valid", "invalid"}


@pytest.mark.parametrize("public,case", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_case(public: dict[str, Any], case: dict[str, Any]) -> None:
    key = Key.ed25519_public("w", bytes.fromhex(public["pk"]))
    msg, sig = bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"])
    if case["result"] == "valid":
        key.verify(msg, sig)
    else:
        with pytest.raises((SignatureMismatch, MalformedSignature)):
            key.verify(msg, sig)


def test_small_order_and_non_canonical_keys_are_refused() -> None:
    small = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ]
    for hex_key in small:
        with pytest.raises(ConfigError, match="small order"):
            Key.ed25519_public("s", bytes.fromhex(hex_key))
    # The identity with the sign bit set: x = 0 must have sign 0.
    with pytest.raises(ConfigError, match="not canonically encoded"):
        Key.ed25519_public("s", bytes.fromhex("01" + "00" * 30 + "80"))
    # y = 2 is not on the curve.
    with pytest.raises(ConfigError, match="not a valid curve point"):
        Key.ed25519_public("s", bytes.fromhex("02" + "00" * 31))


def test_the_small_order_table_is_the_small_order_points() -> None:
    """The constant-time table of small-order R encodings agrees with the
    curve arithmetic, for the table and for random encodings."""
    import random

    from signet_sdk import _ed25519

    for enc in _ed25519.SMALL_ORDER_ENCODINGS:
        decoded = _ed25519.decode_point(enc)
        assert decoded is not None and decoded[1] and _ed25519.is_small_order(decoded[0])
    rng = random.Random(7)
    for _ in range(300):
        enc = rng.randbytes(32)
        decoded = _ed25519.decode_point(enc)
        if decoded is not None and decoded[1]:
            assert _ed25519.is_small_order(decoded[0]) == (enc in _ed25519.SMALL_ORDER_ENCODINGS)
