"""Ed25519 strictness checks (docs/ed25519-policy.md) that OpenSSL does not
make on its own: public keys must decode to a curve point, be canonically
encoded and not of small order; a signature's R must not be of small order
and its S must be reduced. The curve arithmetic here only checks encodings
and never touches a secret, so it need not be constant time."""

from __future__ import annotations

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int]


def decode_point(data: bytes) -> tuple[Point, bool] | None:
    """The affine point an encoding names and whether the encoding is
    canonical; ``None`` when it is not a curve point."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    canonical = y < P
    y %= P
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    # x = sqrt(u / v) (RFC 8032 §5.1.3).
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        x = (x * SQRT_M1) % P
        if (v * x * x - u) % P != 0:
            return None
    if x == 0 and sign:
        canonical = False
    if (x & 1) != sign:
        x = (P - x) % P
    return (x, y), canonical


def _double(pt: Point) -> Point:
    x, y = pt
    xy = x * y % P
    denominator_x = (1 + D * xy * xy) % P
    denominator_y = (1 - D * xy * xy) % P
    x3 = (2 * xy) * pow(denominator_x, P - 2, P) % P
    y3 = (y * y + x * x) * pow(denominator_y, P - 2, P) % P
    return x3, y3


def is_small_order(pt: Point) -> bool:
    """Whether 8·pt is the identity (order 1, 2, 4 or 8)."""
    for _ in range(3):
        pt = _double(pt)
    return pt == (0, 1)


def public_key_problem(data: bytes) -> str | None:
    """Why these bytes are not an acceptable Ed25519 public key, or None."""
    if len(data) != 32:
        return f"Ed25519 public key is {len(data)} bytes; it must be 32"
    decoded = decode_point(data)
    if decoded is None:
        return "Ed25519 public key is not a valid curve point"
    point, canonical = decoded
    if not canonical:
        return (
            "Ed25519 public key is not canonically encoded (the point has a shorter, "
            "canonical encoding); re-export the key"
        )
    if is_small_order(point):
        return "Ed25519 public key is of small order and would accept forged signatures"
    return None


#: The canonical encodings of the eight points of small order. With R
#: canonical (see below), R is of small order exactly when it is one of these.
SMALL_ORDER_ENCODINGS = frozenset(
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    )
)


def signature_encoding_ok(sig: bytes) -> bool:
    """The policy's signature rules that OpenSSL does not check itself:
    S < ℓ (OpenSSL checks it too; kept explicit), and R not of small order.
    A non-canonical or undecodable R never verifies: OpenSSL compares R's
    bytes with the canonical encoding of the recomputed point. Constant
    cost, so verification stays fast."""
    if len(sig) != 64:
        return False
    if int.from_bytes(sig[32:], "little") >= L:
        return False
    return sig[:32] not in SMALL_ORDER_ENCODINGS
