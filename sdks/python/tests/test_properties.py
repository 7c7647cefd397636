"""Property-style checks over random envelopes (a fixed seed per run, so
a failure can be reproduced; set SIGNET_PROPERTY_SEED to vary it):
distinct envelopes give distinct bytes (the bytes decode back to the
envelope), and sign → verify succeeds with either algorithm."""

from __future__ import annotations

import os
import random
import struct

from signet_sdk import Key, KeyRing, TaskEnvelope, sign_envelope, verify_envelope

SEED = int(os.environ.get("SIGNET_PROPERTY_SEED", "20261207"))
CASES = 400
TOKEN = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
TEXT = ["", "a", "é", "世界", "🌍", ",", ":", "\x00", "\xff", "task_", "default"]


def text(rng: random.Random, limit: int = 6) -> str:
    return "".join(rng.choice(TEXT) for _ in range(rng.randrange(limit)))


def maybe_int(rng: random.Random) -> int | None:
    return None if rng.random() < 0.4 else rng.choice([0, -1, 2**63 - 1, -(2**63), rng.getrandbits(41)])


def envelope(rng: random.Random) -> TaskEnvelope:
    headers = {
        "".join(rng.choice(TOKEN) for _ in range(rng.randrange(1, 5))): text(rng)
        for _ in range(rng.randrange(4))
    }
    return TaskEnvelope(
        id=text(rng),
        queue=text(rng),
        name=text(rng),
        args=rng.randbytes(rng.randrange(12)),
        headers=headers,
        created_at_ms=rng.choice([0, -1, 2**63 - 1, rng.getrandbits(41)]),
        not_before_ms=maybe_int(rng),
        expires_at_ms=maybe_int(rng),
        max_attempts=rng.choice([0, 1, 5, 2**32 - 1]),
        callback_url=None if rng.random() < 0.4 else text(rng),
    )


def decode(data: bytes) -> TaskEnvelope:
    """The inverse of canonical_bytes: proves the encoding is injective."""
    assert data[:14] == b"signet.task.v1"
    at = 14

    def u32() -> int:
        nonlocal at
        (n,) = struct.unpack_from(">I", data, at)
        at += 4
        return int(n)

    def field() -> bytes:
        nonlocal at
        n = u32()
        assert n != 0xFFFFFFFF
        out = data[at : at + n]
        assert len(out) == n
        at += n
        return out

    def optional() -> bytes | None:
        nonlocal at
        (n,) = struct.unpack_from(">I", data, at)
        if n == 0xFFFFFFFF:
            at += 4
            return None
        return field()

    id_, queue, name, args = field(), field(), field(), field()
    headers = {}
    names = []
    for _ in range(u32()):
        k = field().decode()
        headers[k] = field().decode()
        names.append(k.encode())
    assert names == sorted(names)
    created = int(field())
    nb, ex = optional(), optional()
    attempts = int(field())
    cb = optional()
    assert at == len(data)
    return TaskEnvelope(
        id=id_.decode(), queue=queue.decode(), name=name.decode(), args=args, headers=headers,
        created_at_ms=created, not_before_ms=None if nb is None else int(nb),
        expires_at_ms=None if ex is None else int(ex), max_attempts=attempts,
        callback_url=None if cb is None else cb.decode(),
    )


def key_of(env: TaskEnvelope) -> tuple[object, ...]:
    return (env.id, env.queue, env.name, env.args, tuple(sorted(env.headers.items())),
            env.created_at_ms, env.not_before_ms, env.expires_at_ms, env.max_attempts,
            env.callback_url)


def test_distinct_envelopes_give_distinct_bytes() -> None:
    rng = random.Random(SEED)
    by_bytes: dict[bytes, tuple[object, ...]] = {}
    for _ in range(CASES * 5):
        env = envelope(rng)
        data = env.canonical_bytes()
        assert key_of(decode(data)) == key_of(env)
        assert by_bytes.setdefault(data, key_of(env)) == key_of(env)
    # Fields that only differ in where a boundary falls still differ.
    a = TaskEnvelope(id="ab", queue="c", name="", args=b"", created_at_ms=0, max_attempts=0)
    b = TaskEnvelope(id="a", queue="bc", name="", args=b"", created_at_ms=0, max_attempts=0)
    c = TaskEnvelope(id="a", queue="bc", name="", args=b"", created_at_ms=0, max_attempts=0,
                     callback_url="")
    assert len({a.canonical_bytes(), b.canonical_bytes(), c.canonical_bytes()}) == 3


def test_sign_then_verify() -> None:
    rng = random.Random(SEED + 1)
    for i in range(CASES):
        if i % 2:
            key = Key.hmac(f"h{i}", rng.randbytes(rng.randrange(16, 64)))
        else:
            key = Key.ed25519_private(f"e{i}", rng.randbytes(32))
        ring = KeyRing.single(key)
        env = envelope(rng)
        sig = sign_envelope(env, ring)
        assert verify_envelope(env, sig, ring.verify_only()) == key.id
        assert verify_envelope(decode(env.canonical_bytes()), sig, ring) == key.id
