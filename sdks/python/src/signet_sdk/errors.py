"""The errors of the SDK, with the same reason codes as the Rust side.

Every error has a stable, lower-case ``reason`` (``missing``, ``malformed``,
``unknown-key``, ``algorithm-mismatch``, ``mismatch``, ``config``,
``unsupported``) for a dead-letter detail or a metric label, and a message
that says what to fix. No message ever contains secret material.
"""

from __future__ import annotations


class SignetError(Exception):
    """Base class of every error this package raises."""

    reason: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"


class ConfigError(SignetError):
    """Keys or configuration are invalid. The message names the variable or
    key id, never the secret."""

    reason = "config"


class UnsupportedError(SignetError):
    """The input cannot be signed or encoded (an invalid or duplicate header,
    a field too long, a verify-only key asked to sign)."""

    reason = "unsupported"


class VerificationError(SignetError):
    """A signature did not verify. ``reason`` says why."""


class MissingSignature(VerificationError):
    """No signature (or no key id) was present."""

    reason = "missing"


class MalformedSignature(VerificationError):
    """Unknown version, bad base64, wrong signature length or key id."""

    reason = "malformed"


class UnknownKey(VerificationError):
    """The signature names a key id the ring does not hold."""

    reason = "unknown-key"


class AlgorithmMismatch(VerificationError):
    """The signature's algorithm is not the algorithm of the key it names."""

    reason = "algorithm-mismatch"


class SignatureMismatch(VerificationError):
    """Well formed, from a known key, but it does not verify."""

    reason = "mismatch"


def quote(text: str) -> str:
    """A string quoted the way the Rust side's messages quote it (``{:?}``)."""
    out = ['"']
    for c in text:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\0":
            out.append("\\0")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{{{ord(c):x}}}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)
