"""Keys and the key ring (mirrors ``signet-sign``'s ``key.rs`` and ``keyring.rs``).

A key is an id plus material: an HMAC-SHA256 secret, an Ed25519 private
key (it signs and verifies) or an Ed25519 public key (it only verifies).
``repr()`` and ``str()`` of a key or ring show ids, algorithms and
fingerprints only, never a secret.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from . import _ed25519
from .errors import ConfigError, MalformedSignature, SignatureMismatch, UnsupportedError, quote

__all__ = ["Algorithm", "Key", "KeyRing", "validate_key_id", "MAX_KEY_ID_LEN"]

MAX_KEY_ID_LEN = 64
_KEY_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


class Algorithm(enum.Enum):
    """A signing algorithm. ``value`` is its name (``hmac-sha256``, ``ed25519``)."""

    HMAC_SHA256 = "hmac-sha256"
    ED25519 = "ed25519"

    def __str__(self) -> str:
        return self.value

    @property
    def version(self) -> str:
        """The ``signet-signature`` version: ``v1`` (HMAC) or ``v1a`` (Ed25519)."""
        return "v1" if self is Algorithm.HMAC_SHA256 else "v1a"

    @property
    def signature_len(self) -> int:
        """Signature length in bytes: 32 (HMAC-SHA256) or 64 (Ed25519)."""
        return 32 if self is Algorithm.HMAC_SHA256 else 64

    @classmethod
    def from_version(cls, version: str) -> Algorithm | None:
        """``v1`` → HMAC-SHA256, ``v1a`` → Ed25519, anything else ``None``."""
        return {"v1": cls.HMAC_SHA256, "v1a": cls.ED25519}.get(version)

    @classmethod
    def parse(cls, text: str) -> Algorithm:
        """Parses an algorithm name as the Rust side does (case-insensitive;
        ``hmac_sha256`` and ``hmacsha256`` are accepted too)."""
        name = text.strip().lower()
        if name in ("hmac-sha256", "hmac_sha256", "hmacsha256"):
            return cls.HMAC_SHA256
        if name == "ed25519":
            return cls.ED25519
        raise ConfigError(
            f'unknown signing algorithm {quote(name)}; use "hmac-sha256" or "ed25519"'
        )


def validate_key_id(key_id: str) -> str:
    """Returns ``key_id`` when it is 1 to 64 of ``A-Z a-z 0-9 . _ -``;
    raises ConfigError otherwise."""
    if not key_id:
        raise ConfigError("key id is empty; use 1 to 64 characters of A-Z a-z 0-9 . _ -")
    size = len(key_id.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_ID_LEN:
        raise ConfigError(
            f"key id is {size} characters long; the limit is {MAX_KEY_ID_LEN}"
        )
    for c in key_id:
        if c not in _KEY_ID_CHARS:
            shown = "'\\''" if c == "'" else repr(c)
            raise ConfigError(
                f"key id {quote(key_id)} contains {shown}; use only A-Z a-z 0-9 . _ -"
            )
    return key_id


def fingerprint(data: bytes) -> str:
    """``sha256:`` and the first 8 bytes of SHA-256, in hex (as the Rust side)."""
    return "sha256:" + hashlib.sha256(data).digest()[:8].hex()


class Key:
    """One key: an id and its material. Build with :meth:`hmac`,
    :meth:`ed25519_private` or :meth:`ed25519_public`."""

    __slots__ = ("_id", "_alg", "_secret", "_private", "_public", "_public_bytes")

    _id: str
    _alg: Algorithm
    _secret: bytes | None
    _private: Ed25519PrivateKey | None
    _public: Ed25519PublicKey | None
    _public_bytes: bytes | None

    def __init__(self) -> None:
        raise TypeError("use Key.hmac, Key.ed25519_private or Key.ed25519_public")

    @classmethod
    def _make(
        cls,
        key_id: str,
        alg: Algorithm,
        secret: bytes | None = None,
        private: Ed25519PrivateKey | None = None,
        public_bytes: bytes | None = None,
    ) -> Key:
        key = object.__new__(cls)
        object.__setattr__(key, "_id", validate_key_id(key_id))
        object.__setattr__(key, "_alg", alg)
        object.__setattr__(key, "_secret", secret)
        object.__setattr__(key, "_private", private)
        public = Ed25519PublicKey.from_public_bytes(public_bytes) if public_bytes else None
        object.__setattr__(key, "_public", public)
        object.__setattr__(key, "_public_bytes", public_bytes)
        return key

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("keys are immutable")

    @classmethod
    def hmac(cls, key_id: str, secret: bytes) -> Key:
        """An HMAC-SHA256 key. Any non-empty secret is accepted here; the
        ``SIGNET_SIGNING_KEYS`` loader requires 16 bytes (32 recommended)."""
        if not secret:
            raise ConfigError("HMAC secret is empty")
        return cls._make(key_id, Algorithm.HMAC_SHA256, secret=bytes(secret))

    @classmethod
    def ed25519_private(cls, key_id: str, private: bytes) -> Key:
        """An Ed25519 key that signs: the 32-byte seed, or 64 bytes seed ‖ public key."""
        private = bytes(private)
        if len(private) == 64:
            key = Ed25519PrivateKey.from_private_bytes(private[:32])
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            if not hmac.compare_digest(public, private[32:]):
                raise ConfigError(
                    "Ed25519 key pair's public half does not match its private seed"
                )
        elif len(private) == 32:
            key = Ed25519PrivateKey.from_private_bytes(private)
        else:
            raise ConfigError(
                f"Ed25519 private key is {len(private)} bytes; it must be 32 (seed) "
                "or 64 (seed ‖ public key)"
            )
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls._make(key_id, Algorithm.ED25519, private=key, public_bytes=public)

    @classmethod
    def ed25519_public(cls, key_id: str, public: bytes) -> Key:
        """An Ed25519 public key: verifies only. Refuses keys that are not
        32 bytes, not a curve point, not canonically encoded or of small order."""
        public = bytes(public)
        problem = _ed25519.public_key_problem(public)
        if problem is not None:
            raise ConfigError(problem)
        return cls._make(key_id, Algorithm.ED25519, public_bytes=public)

    @property
    def id(self) -> str:
        """The key id."""
        return self._id

    @property
    def algorithm(self) -> Algorithm:
        """The key's algorithm."""
        return self._alg

    @property
    def can_sign(self) -> bool:
        """False only for an Ed25519 public key."""
        return self._secret is not None or self._private is not None

    @property
    def public_bytes(self) -> bytes | None:
        """The 32-byte Ed25519 public key; None for HMAC keys."""
        return self._public_bytes

    @property
    def fingerprint(self) -> str:
        """``sha256:…`` of the HMAC secret or of the Ed25519 public key."""
        if self._secret is not None:
            return fingerprint(self._secret)
        assert self._public_bytes is not None
        return fingerprint(self._public_bytes)

    def secret_bytes(self) -> bytes:
        """The secret (HMAC secret or Ed25519 seed). Handle with care."""
        if self._secret is not None:
            return self._secret
        if self._private is not None:
            return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raise UnsupportedError(f"key {quote(self._id)} is a public key and has no secret")

    def to_verifying(self) -> Key:
        """The key a verifier needs: an Ed25519 private key becomes its public key."""
        if self._private is not None:
            return Key._make(self._id, Algorithm.ED25519, public_bytes=self._public_bytes)
        return self

    def sign(self, message: bytes) -> bytes:
        """Signs ``message``: a 32-byte HMAC tag or a 64-byte Ed25519 signature."""
        if self._secret is not None:
            return hmac.new(self._secret, message, hashlib.sha256).digest()
        if self._private is not None:
            return self._private.sign(message)
        raise UnsupportedError(
            f"key {quote(self._id)} is an Ed25519 public key and cannot sign; "
            "configure its private key"
        )

    def verify(self, message: bytes, signature: bytes) -> None:
        """Checks ``signature`` over ``message``: HMAC tags in constant time,
        Ed25519 strictly (docs/ed25519-policy.md). Raises MalformedSignature
        for a wrong length, SignatureMismatch when it does not verify."""
        expected = self._alg.signature_len
        if len(signature) != expected:
            raise MalformedSignature(
                f"signature is {len(signature)} bytes; {self._alg} signatures are {expected}"
            )
        if self._secret is not None:
            tag = hmac.new(self._secret, message, hashlib.sha256).digest()
            ok = hmac.compare_digest(tag, signature)
        else:
            assert self._public is not None
            ok = _ed25519.signature_encoding_ok(signature)
            if ok:
                try:
                    self._public.verify(signature, message)
                except InvalidSignature:
                    ok = False
        if not ok:
            raise SignatureMismatch(f"signature does not match key {quote(self._id)}")

    def __repr__(self) -> str:
        role = "" if self.can_sign else " verify-only"
        return f"Key({self._id}, {self._alg}, {self.fingerprint}{role})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("keys are secrets and are not pickled")


def _describe_ids(keys: Sequence[Key]) -> str:
    shown = 8
    if not keys:
        return "the ring has no keys"
    out = "keys: " + ", ".join(k.id for k in keys[:shown])
    if len(keys) > shown:
        out += f" and {len(keys) - shown} more"
    return out


class KeyRing:
    """Signing and verifying keys with one optional active key.

    The active key signs; every key verifies. During a rotation overlap more
    keys may be marked to sign beside the active one (for HTTP signatures; a
    task carries one signature, by the active key). A verify-only ring has no
    active key.
    """

    __slots__ = ("_keys", "_active", "_also_signs")

    def __init__(self, keys: Iterable[Key], active: str | None = None) -> None:
        """Refuses two keys with one id, an active id that is not in the
        ring, and an active key that cannot sign (ConfigError)."""
        self._keys: list[Key] = list(keys)
        seen: set[str] = set()
        for key in self._keys:
            if key.id in seen:
                raise ConfigError(
                    f"key id {quote(key.id)} appears twice in the key ring; "
                    "give each key its own id"
                )
            seen.add(key.id)
        self._active: int | None = None
        if active is not None:
            index = next((i for i, k in enumerate(self._keys) if k.id == active), None)
            if index is None:
                raise ConfigError(
                    f"active key {quote(active)} is not in the key ring "
                    f"({_describe_ids(self._keys)}); add it or pick one of those"
                )
            if not self._keys[index].can_sign:
                raise ConfigError(
                    f"active key {quote(active)} is an Ed25519 public key and cannot sign; "
                    "give its private key or leave the active key unset for a verify-only ring"
                )
            self._active = index
        self._also_signs: list[bool] = [False] * len(self._keys)

    @classmethod
    def single(cls, key: Key) -> KeyRing:
        """A ring of one key, active when it can sign."""
        return cls([key], key.id if key.can_sign else None)

    @property
    def keys(self) -> tuple[Key, ...]:
        """All keys, in the order given."""
        return tuple(self._keys)

    @property
    def active(self) -> Key | None:
        """The key that signs, if any."""
        return None if self._active is None else self._keys[self._active]

    def get(self, key_id: str) -> Key | None:
        """The key with this id."""
        return next((k for k in self._keys if k.id == key_id), None)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return isinstance(key_id, str) and self.get(key_id) is not None

    def signers(self) -> list[Key]:
        """The active key first, then the overlap keys in ring order."""
        active = self.active
        if active is None:
            return []
        return [active] + [
            k for i, k in enumerate(self._keys) if self._also_signs[i] and i != self._active
        ]

    def set_also_signs(self, key_id: str, yes: bool = True) -> None:
        """Marks key ``key_id`` to sign beside the active key (rotation overlap)."""
        index = next((i for i, k in enumerate(self._keys) if k.id == key_id), None)
        if index is None:
            raise ConfigError(
                f"key {quote(key_id)} is not in the key ring ({_describe_ids(self._keys)}); "
                "it cannot sign during the overlap"
            )
        if yes and not self._keys[index].can_sign:
            raise ConfigError(
                f"key {quote(key_id)} is an Ed25519 public key and cannot sign during "
                "the overlap; give its private key"
            )
        self._also_signs[index] = yes

    def verify_only(self) -> KeyRing:
        """The ring a verifier needs: Ed25519 private keys become public
        keys, HMAC secrets stay; no active key."""
        return KeyRing([k.to_verifying() for k in self._keys])

    def describe(self) -> str:
        """``keys: a, b`` (at most eight ids) or ``the ring has no keys``."""
        return _describe_ids(self._keys)

    def __repr__(self) -> str:
        entries = []
        for i, k in enumerate(self._keys):
            text = f"{k.id} ({k.algorithm}, {k.fingerprint}"
            text += ", active" if i == self._active else ""
            text += ", also signs" if self._also_signs[i] else ""
            text += ")" + ("" if k.can_sign else " verify-only")
            entries.append(text)
        return "KeyRing[" + ", ".join(entries) + "]"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("key rings hold secrets and are not pickled")
