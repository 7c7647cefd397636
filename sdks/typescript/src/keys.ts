/**
 * Key material as types (mirrors `signet-sign`'s `key.rs` and `keyring.rs`):
 * algorithms, key ids, HMAC-SHA256 secrets, Ed25519 key pairs and public
 * keys, and the key ring.
 *
 * Secrets live in `#private` fields and are never printed: `toString`,
 * `toJSON` and `util.inspect` show the id, the algorithm and a fingerprint.
 */
import { createHash, createHmac, timingSafeEqual, type KeyObject } from "node:crypto";

import { SignetError, quote } from "./errors.js";
import { ed25519Sign, ed25519VerifyStrict, privateKeyObject, publicBytesOf, publicKeyObject } from "./ed25519.js";

const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/** A signature algorithm: `hmac-sha256` or `ed25519`. */
export type Algorithm = "hmac-sha256" | "ed25519";

/** The Standard Webhooks signature version of an algorithm: `v1` or `v1a`. */
export function algorithmVersion(alg: Algorithm): "v1" | "v1a" {
  return alg === "hmac-sha256" ? "v1" : "v1a";
}

/** The algorithm of a version tag (`v1`, `v1a`), if known. */
export function algorithmFromVersion(version: string): Algorithm | undefined {
  if (version === "v1") return "hmac-sha256";
  if (version === "v1a") return "ed25519";
  return undefined;
}

/** Signature length in bytes: 32 (HMAC-SHA256) or 64 (Ed25519). */
export function signatureLength(alg: Algorithm): number {
  return alg === "hmac-sha256" ? 32 : 64;
}

/** Parses an algorithm name as the Rust side does (trimmed, case-insensitive). */
export function parseAlgorithm(text: string): Algorithm {
  const s = text.trim().toLowerCase();
  if (s === "hmac-sha256" || s === "hmac_sha256" || s === "hmacsha256") return "hmac-sha256";
  if (s === "ed25519") return "ed25519";
  throw SignetError.config(`unknown signing algorithm ${quote(s)}; use "hmac-sha256" or "ed25519"`);
}

/** The longest key id accepted. */
export const MAX_KEY_ID_LEN = 64;

/**
 * Validates a key id: 1 to 64 characters of `A-Z a-z 0-9 . _ -`. Returns it;
 * throws a `config` {@link SignetError} otherwise.
 */
export function checkKeyId(id: string): string {
  if (id.length === 0) {
    throw SignetError.config("key id is empty; use 1 to 64 characters of A-Z a-z 0-9 . _ -");
  }
  const bytes = Buffer.byteLength(id, "utf8");
  if (bytes > MAX_KEY_ID_LEN) {
    throw SignetError.config(`key id is ${bytes} characters long; the limit is ${MAX_KEY_ID_LEN}`);
  }
  for (const c of id) {
    if (!/^[A-Za-z0-9._-]$/.test(c)) {
      throw SignetError.config(`key id ${quote(id)} contains ${rustChar(c)}; use only A-Z a-z 0-9 . _ -`);
    }
  }
  return id;
}

/** A character as Rust's `{:?}` shows a `char`: `' '`, `'\''`. */
function rustChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = quote(c);
  return `'${q.slice(1, -1)}'`;
}

/** `sha256:` and the first 8 bytes of SHA-256 in hex: safe to log. */
export function fingerprint(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`;
}

/** What every key can do. */
interface KeyCommon {
  readonly id: string;
  readonly algorithm: Algorithm;
  readonly canSign: boolean;
  readonly fingerprint: string;
  /** Signs `message`; throws `unsupported` for an Ed25519 public key. */
  sign(message: Uint8Array): Uint8Array;
  /**
   * Verifies `signature` over `message`: HMAC in constant time, Ed25519
   * strictly. Wrong length → `malformed`; no match → `mismatch`.
   */
  verify(message: Uint8Array, signature: Uint8Array): void;
  /** The verify-only form: HMAC keys stay as they are, Ed25519 private keys become public keys. */
  toVerifying(): Key;
}

function describeKey(key: KeyCommon): string {
  return `${key.constructor.name}(${key.id}, ${key.algorithm}, ${key.fingerprint}${key.canSign ? "" : ", verify-only"})`;
}

function lengthCheck(alg: Algorithm, signature: Uint8Array): void {
  const expected = signatureLength(alg);
  if (signature.length !== expected) {
    throw SignetError.malformed(`signature is ${signature.length} bytes; ${alg} signatures are ${expected}`);
  }
}

function mismatchOf(id: string): SignetError {
  return SignetError.mismatch(`signature does not match key ${quote(id)}`);
}

/** An HMAC-SHA256 key. Only emptiness is refused here; length rules live in the configuration. */
export class HmacKey implements KeyCommon {
  readonly id: string;
  readonly algorithm = "hmac-sha256" as const;
  readonly canSign = true;
  readonly fingerprint: string;
  readonly #secret: Buffer;

  constructor(id: string, secret: Uint8Array) {
    this.id = checkKeyId(id);
    if (secret.length === 0) throw SignetError.config("HMAC secret is empty");
    // Its own allocation, not a slice of Node's shared Buffer pool.
    this.#secret = Buffer.alloc(secret.length);
    this.#secret.set(secret);
    this.fingerprint = fingerprint(this.#secret);
  }

  /** Length of the secret in bytes (not secret). */
  get length(): number {
    return this.#secret.length;
  }

  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(createHmac("sha256", this.#secret).update(message).digest());
  }

  verify(message: Uint8Array, signature: Uint8Array): void {
    lengthCheck(this.algorithm, signature);
    const tag = createHmac("sha256", this.#secret).update(message).digest();
    if (!timingSafeEqual(tag, signature)) throw mismatchOf(this.id);
  }

  toVerifying(): Key {
    return this;
  }

  toString(): string {
    return describeKey(this);
  }
  toJSON(): object {
    return { id: this.id, algorithm: this.algorithm, fingerprint: this.fingerprint, secret: "redacted" };
  }
  [INSPECT](): string {
    return `${describeKey(this)} [secret redacted]`;
  }
}

/** An Ed25519 public key: verifies only. Checked by the strictness policy when built. */
export class Ed25519PublicKey implements KeyCommon {
  readonly id: string;
  readonly algorithm = "ed25519" as const;
  readonly canSign = false;
  readonly fingerprint: string;
  /** The 32 encoded bytes (public). */
  readonly publicKey: Uint8Array;
  readonly #key: KeyObject;

  constructor(id: string, publicKey: Uint8Array) {
    this.id = checkKeyId(id);
    try {
      this.#key = publicKeyObject(publicKey);
    } catch (e) {
      throw SignetError.config(e instanceof Error ? e.message : String(e));
    }
    this.publicKey = new Uint8Array(publicKey);
    this.fingerprint = fingerprint(this.publicKey);
  }

  sign(): Uint8Array {
    throw SignetError.unsupported(
      `key ${quote(this.id)} is an Ed25519 public key and cannot sign; configure its private key`,
    );
  }

  verify(message: Uint8Array, signature: Uint8Array): void {
    lengthCheck(this.algorithm, signature);
    if (!ed25519VerifyStrict(this.#key, message, signature)) throw mismatchOf(this.id);
  }

  toVerifying(): Key {
    return this;
  }

  toString(): string {
    return describeKey(this);
  }
  toJSON(): object {
    return { id: this.id, algorithm: this.algorithm, publicKey: Buffer.from(this.publicKey).toString("base64") };
  }
  [INSPECT](): string {
    return describeKey(this);
  }
}

/** An Ed25519 private key (from the 32-byte seed, or 64 bytes seed ‖ public). */
export class Ed25519PrivateKey implements KeyCommon {
  readonly id: string;
  readonly algorithm = "ed25519" as const;
  readonly canSign = true;
  readonly fingerprint: string;
  /** The 32 public-key bytes. */
  readonly publicKey: Uint8Array;
  readonly #key: KeyObject;
  readonly #public: Ed25519PublicKey;

  constructor(id: string, seed: Uint8Array) {
    this.id = checkKeyId(id);
    let seedBytes: Uint8Array;
    if (seed.length === 32) {
      seedBytes = seed;
    } else if (seed.length === 64) {
      seedBytes = seed.subarray(0, 32);
    } else {
      throw SignetError.config(
        `Ed25519 private key is ${seed.length} bytes; it must be 32 (seed) or 64 (seed ‖ public key)`,
      );
    }
    this.#key = privateKeyObject(seedBytes);
    this.publicKey = publicBytesOf(this.#key);
    if (seed.length === 64 && !timingSafeEqual(Buffer.from(this.publicKey), Buffer.from(seed.subarray(32)))) {
      throw SignetError.config("Ed25519 key pair's public half does not match its private seed");
    }
    this.#public = new Ed25519PublicKey(this.id, this.publicKey);
    this.fingerprint = this.#public.fingerprint;
  }

  sign(message: Uint8Array): Uint8Array {
    return ed25519Sign(this.#key, message);
  }

  verify(message: Uint8Array, signature: Uint8Array): void {
    this.#public.verify(message, signature);
  }

  toVerifying(): Key {
    return this.#public;
  }

  toString(): string {
    return describeKey(this);
  }
  toJSON(): object {
    return {
      id: this.id,
      algorithm: this.algorithm,
      publicKey: Buffer.from(this.publicKey).toString("base64"),
      privateKey: "redacted",
    };
  }
  [INSPECT](): string {
    return `${describeKey(this)} [private key redacted]`;
  }
}

/** Any key. */
export type Key = HmacKey | Ed25519PublicKey | Ed25519PrivateKey;

/** `the ring has no keys` or `keys: a, b` (at most eight ids, then `and N more`). */
function describeIds(keys: readonly Key[]): string {
  if (keys.length === 0) return "the ring has no keys";
  let out = `keys: ${keys
    .slice(0, 8)
    .map((k) => k.id)
    .join(", ")}`;
  if (keys.length > 8) out += ` and ${keys.length - 8} more`;
  return out;
}

/**
 * Signing and verifying keys with one optional active key. A verify-only
 * ring (public keys, or any ring after {@link KeyRing.verifyOnly}) has none.
 */
export class KeyRing {
  readonly #keys: readonly Key[];
  readonly #active: Key | undefined;
  readonly #alsoSigns: Set<string>;

  /**
   * A ring of `keys` with `active` (an id) as the signing key. Throws a
   * `config` error naming the id when two keys share an id, when `active`
   * is not in the ring, or when it is a public key.
   */
  constructor(keys: readonly Key[], active?: string, alsoSigns: Iterable<string> = []) {
    const seen = new Set<string>();
    for (const key of keys) {
      if (seen.has(key.id)) {
        throw SignetError.config(
          `key id ${quote(key.id)} appears twice in the key ring; give each key its own id`,
        );
      }
      seen.add(key.id);
    }
    this.#keys = [...keys];
    if (active !== undefined) {
      const key = keys.find((k) => k.id === active);
      if (key === undefined) {
        throw SignetError.config(
          `active key ${quote(active)} is not in the key ring (${describeIds(keys)}); add it or pick one of those`,
        );
      }
      if (!key.canSign) {
        throw SignetError.config(
          `active key ${quote(active)} is an Ed25519 public key and cannot sign; give its private key or leave the active key unset for a verify-only ring`,
        );
      }
      this.#active = key;
    }
    this.#alsoSigns = new Set();
    for (const id of alsoSigns) {
      const key = keys.find((k) => k.id === id);
      if (key === undefined) {
        throw SignetError.config(
          `key ${quote(id)} is not in the key ring (${describeIds(keys)}); it cannot sign during the overlap`,
        );
      }
      if (!key.canSign) {
        throw SignetError.config(
          `key ${quote(id)} is an Ed25519 public key and cannot sign during the overlap; give its private key`,
        );
      }
      this.#alsoSigns.add(id);
    }
  }

  /** A ring of one key, active when it can sign. */
  static single(key: Key): KeyRing {
    return new KeyRing([key], key.canSign ? key.id : undefined);
  }

  /** The keys, in the order given. */
  get keys(): readonly Key[] {
    return this.#keys;
  }

  /** The active (signing) key, if any. */
  get active(): Key | undefined {
    return this.#active;
  }

  /** The algorithm of the active key, if any. */
  get algorithm(): Algorithm | undefined {
    return this.#active?.algorithm;
  }

  /** The key with this id. */
  get(id: string): Key | undefined {
    return this.#keys.find((k) => k.id === id);
  }

  /** The keys that sign now: the active key first, then the overlap keys in ring order. */
  signers(): Key[] {
    if (this.#active === undefined) return [];
    const active = this.#active;
    return [active, ...this.#keys.filter((k) => k !== active && this.#alsoSigns.has(k.id))];
  }

  /** The ring a verifier needs: public keys for Ed25519, HMAC as is, no active key. */
  verifyOnly(): KeyRing {
    return new KeyRing(this.#keys.map((k) => k.toVerifying()));
  }

  /** `keys: a, b` for messages. */
  describe(): string {
    return describeIds(this.#keys);
  }

  toString(): string {
    const entries = this.#keys.map((k) => {
      const flags = `${k === this.#active ? ", active" : ""}${this.#alsoSigns.has(k.id) ? ", also signs" : ""}`;
      return `${k.id} (${k.algorithm}, ${k.fingerprint}${flags})${k.canSign ? "" : " verify-only"}`;
    });
    return `KeyRing[${entries.join(", ")}]`;
  }
  toJSON(): object {
    return { keys: this.#keys.map((k) => k.toJSON()), active: this.#active?.id ?? null };
  }
  [INSPECT](): string {
    return this.toString();
  }
}
