"""Base64 as the Rust side reads it. Error texts say what is wrong by
position only, never quoting the input (it may be a secret)."""

from __future__ import annotations

import base64
import binascii
import re

STANDARD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
URL_SAFE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# Text that is only alphabet characters then '=' padding: the common case,
# checked in C; anything else takes the character loop that names the
# position.
_WELL_FORMED = {
    STANDARD_ALPHABET: re.compile(r"[A-Za-z0-9+/]*=*"),
    URL_SAFE_ALPHABET: re.compile(r"[A-Za-z0-9_-]*=*"),
}


class Base64Error(ValueError):
    """Why a text is not base64, without quoting it."""


def encode(data: bytes) -> str:
    """Standard alphabet, ``=`` padded (what Signet writes)."""
    return base64.b64encode(data).decode("ascii")


def _decode(text: str, alphabet: str, strict_bits: bool) -> bytes:
    # Positions as the Rust base64 decoder reports them: a character that is
    # neither in the alphabet nor '=', else an '=' before the final run, else
    # (after the length check) an '=' too many.
    if _WELL_FORMED[alphabet].fullmatch(text) is None:
        allowed = set(alphabet)
        for i, c in enumerate(text):
            if c not in allowed and c != "=":
                raise Base64Error(f"character {i + 1} is not in the base64 alphabet")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if "=" in body:
        raise Base64Error(f"character {body.index('=') + 1} is not in the base64 alphabet")
    rem = len(body) % 4
    if rem == 1:
        raise Base64Error("its length is not a possible base64 length")
    # Padding is optional; when present it may not exceed what the
    # remainder needs (the Rust decoders' "indifferent" padding mode).
    if padding > (4 - rem) % 4:
        raise Base64Error(f"character {len(body) + 1} is not in the base64 alphabet")
    if rem:
        last = alphabet.index(body[-1])
        unused = 0x0F if rem == 2 else 0x03
        if strict_bits and last & unused:
            raise Base64Error(
                f"character {len(body)} has bits set past the end of the data"
            )
    std = body
    if alphabet is URL_SAFE_ALPHABET:
        std = body.translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(std + "=" * ((4 - rem) % 4), validate=True)
    except binascii.Error as e:  # pragma: no cover - checked above
        raise Base64Error("it is not valid base64") from e


def decode_key(text: str) -> bytes:
    """Key material: standard or (when it holds ``-`` or ``_``) URL-safe
    alphabet, padding optional, stray low bits in the last character allowed."""
    text = text.strip()
    alphabet = URL_SAFE_ALPHABET if ("-" in text or "_" in text) else STANDARD_ALPHABET
    return _decode(text, alphabet, strict_bits=False)


def decode_signature(text: str) -> bytes:
    """Signatures: standard alphabet, padding optional, canonical last character."""
    return _decode(text, STANDARD_ALPHABET, strict_bits=True)
