/**
 * Ed25519 with Signet's strictness policy (docs/ed25519-policy.md) on top of
 * `node:crypto`.
 *
 * `node:crypto` (OpenSSL) already rejects a signature whose S is not
 * reduced and an R whose encoding is not the canonical encoding of the
 * recomputed point. The rest of `ed25519-dalek`'s `verify_strict` is added
 * here: public keys must decompress, be canonically encoded and not be of
 * small order (checked once, when a key is loaded), and a signature's R must
 * not be a point of small order. The curve arithmetic below runs only on
 * key load; the per-signature R check is a table look-up.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from "node:crypto";

const P = (1n << 255n) - 19n;
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
const SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752n;
/** The group order ℓ. */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;

/** The y coordinates of the eight points of small order (orders 1, 2, 4 and 8). */
const SMALL_ORDER_Y = new Set<bigint>([
  0n,
  1n,
  P - 1n,
  2707385501144840649318225287225658788936804267575313519463743609750303402022n,
  P - 2707385501144840649318225287225658788936804267575313519463743609750303402022n,
]);

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

function mod(a: bigint): bigint {
  const r = a % P;
  return r >= 0n ? r : r + P;
}

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

function inv(a: bigint): bigint {
  return pow(a, P - 2n);
}

/** Little-endian bytes as an unsigned integer. */
export function leInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0);
  return n;
}

interface Point {
  x: bigint;
  y: bigint;
}

/** The y coordinate an encoding gives (sign bit cleared, not reduced). */
function encodedY(bytes: Uint8Array): bigint {
  return leInt(bytes) & ((1n << 255n) - 1n);
}

/** Decompresses like `curve25519-dalek` (y taken mod p); `undefined` when not a point. */
export function decompress(bytes: Uint8Array): { point: Point; canonical: boolean } | undefined {
  const yRaw = encodedY(bytes);
  const sign = ((bytes[31] ?? 0) >> 7) & 1;
  const y = mod(yRaw);
  const y2 = (y * y) % P;
  const u = mod(y2 - 1n);
  const v = mod(D * y2 + 1n);
  const v3 = (v * v * v) % P;
  const v7 = (v3 * v3 * v) % P;
  let x = (u * v3 * pow(u * v7, (P - 5n) / 8n)) % P;
  const vx2 = (v * x * x) % P;
  if (vx2 === u) {
    // x is a square root
  } else if (vx2 === mod(-u)) {
    x = (x * SQRT_M1) % P;
  } else {
    return undefined;
  }
  if (Number(x & 1n) !== sign) x = mod(-x);
  const canonical = yRaw < P && !(x === 0n && sign === 1);
  return { point: { x, y }, canonical };
}

function add(a: Point, b: Point): Point {
  const t = (D * a.x * b.x % P) * (a.y * b.y % P) % P;
  const x = mod((a.x * b.y + a.y * b.x) * inv(1n + t));
  const y = mod((a.y * b.y + a.x * b.x) * inv(mod(1n - t)));
  return { x, y };
}

/** Whether [8]P is the identity, i.e. P has order 1, 2, 4 or 8. */
export function isSmallOrder(p: Point): boolean {
  let q = p;
  for (let i = 0; i < 3; i++) q = add(q, q);
  return q.x === 0n && q.y === 1n;
}

/**
 * Checks 32 bytes of an Ed25519 public key by Signet's policy and returns
 * the `KeyObject`; throws `Error` with the Rust side's message otherwise.
 */
export function publicKeyObject(bytes: Uint8Array): KeyObject {
  if (bytes.length !== 32) {
    throw new Error(`Ed25519 public key is ${bytes.length} bytes; it must be 32`);
  }
  const decoded = decompress(bytes);
  if (decoded === undefined) {
    throw new Error("Ed25519 public key is not a valid curve point");
  }
  if (!decoded.canonical) {
    throw new Error(
      "Ed25519 public key is not canonically encoded (the point has a shorter, canonical encoding); re-export the key",
    );
  }
  if (isSmallOrder(decoded.point)) {
    throw new Error("Ed25519 public key is of small order and would accept forged signatures");
  }
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, bytes]), format: "der", type: "spki" });
}

/** A private `KeyObject` from the 32-byte seed (PKCS#8 DER). */
export function privateKeyObject(seed: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, seed]);
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
}

/** The 32 public-key bytes of a private `KeyObject`. */
export function publicBytesOf(key: KeyObject): Uint8Array {
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

export function ed25519Sign(key: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, key));
}

/**
 * Strict verification: 64 bytes, S < ℓ, R canonical and not of small
 * order, then the signature equation (node:crypto, which also compares R's
 * bytes with the recomputed point's canonical encoding).
 */
export function ed25519VerifyStrict(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const r = signature.subarray(0, 32);
  const s = leInt(signature.subarray(32, 64));
  if (s >= L) return false;
  const ry = encodedY(r);
  if (ry >= P || SMALL_ORDER_Y.has(ry)) return false;
  try {
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}
