/**
 * The task envelope `signet.task.v1` (docs/task-envelope.md; the reference
 * is `signet-sign`'s `envelope.rs`): the signed, immutable part of a task,
 * its canonical bytes, and signing and verifying them.
 */
import { decodeSignature, encodeBase64, Base64Error } from "./b64.js";
import { SignetError, quote } from "./errors.js";
import { algorithmFromVersion, algorithmVersion, signatureLength, type Algorithm, type Key, type KeyRing } from "./keys.js";

/** The 14-byte tag that starts the canonical bytes. */
export const ENVELOPE_TAG = "signet.task.v1";
/** The header that carries the signature: `v1,<b64>` or `v1a,<b64>`. */
export const SIGNATURE_HEADER = "signet-signature";
/** The header that carries the id of the key that signed. */
export const SIGNATURE_KEY_HEADER = "signet-signature-key";
/** Headers that carry signatures and so are never signed. */
export const SIGNATURE_HEADERS: readonly string[] = [SIGNATURE_HEADER, SIGNATURE_KEY_HEADER];

const ABSENT = 0xffffffff;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const TAG_BYTES = Buffer.from(ENVELOPE_TAG, "utf8");
/** Marks a bare u32 count in the writer's parts (compared by identity). */
const COUNT_MARK = new Uint8Array(0);

/** Unix milliseconds: a safe-integer `number`, or a `bigint` for the whole signed 64-bit range. */
export type Millis = number | bigint;

/** The signed fields of a task. */
export interface TaskEnvelope {
  /** Task id (`task_…`). */
  readonly id: string;
  /** Queue name. */
  readonly queue: string;
  /** Task (handler) name. */
  readonly name: string;
  /** The exact bytes the producer serialised (a string is taken as its UTF-8 bytes). Never re-serialised. */
  readonly args: Uint8Array | string;
  /** Headers: lower-case names, signature headers excluded. Build with {@link normaliseHeaders}. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Creation time, unix milliseconds. */
  readonly createdAtMs: Millis;
  /** Not to run before this time, unix milliseconds. */
  readonly notBeforeMs?: Millis | null | undefined;
  /** Not to run after this time, unix milliseconds. */
  readonly expiresAtMs?: Millis | null | undefined;
  /** Attempts allowed, the first one included (unsigned 32-bit). */
  readonly maxAttempts: number;
  /** Where to send a signed callback when the task finishes. An empty string is present, not absent. */
  readonly callbackUrl?: string | null | undefined;
}

/** Header names and values: an object, a `Map`, or `[name, value]` pairs. */
export type HeaderInput =
  | Readonly<Record<string, string>>
  | ReadonlyMap<string, string>
  | Iterable<readonly [string, string]>;

const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

/**
 * Lower-cases header names, drops signature headers, and rejects
 * duplicates (two names equal after lower-casing) and names or values that
 * are not valid header text (`unsupported`).
 */
export function normaliseHeaders(headers: HeaderInput): Record<string, string> {
  const pairs: Iterable<readonly [string, string]> =
    Symbol.iterator in headers
      ? (headers as Iterable<readonly [string, string]>)
      : Object.entries(headers as Readonly<Record<string, string>>);
  const out = new Map<string, string>();
  for (const [rawName, value] of pairs) {
    const name = rawName.replace(/[A-Z]/g, (c) => c.toLowerCase());
    if (!TOKEN.test(name)) {
      throw SignetError.unsupported(
        `header name ${quote(name)} is not a valid token; use letters, digits and - _ .`,
      );
    }
    if (/[\r\n\0]/.test(value)) {
      throw SignetError.unsupported(`header ${quote(name)} has a value with CR, LF or NUL; remove them`);
    }
    if (SIGNATURE_HEADERS.includes(name)) continue;
    if (out.has(name)) {
      throw SignetError.unsupported(
        `header ${quote(name)} is given twice (names are case-insensitive); send it once`,
      );
    }
    out.set(name, value);
  }
  const sorted: Record<string, string> = {};
  for (const name of [...out.keys()].sort(compareBytes)) sorted[name] = out.get(name) ?? "";
  return sorted;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function decimal(value: Millis, field: string): string {
  if (typeof value === "bigint") {
    if (value < I64_MIN || value > I64_MAX) {
      throw SignetError.unsupported(`${field} ${value} is outside the signed 64-bit range`);
    }
    return value.toString();
  }
  if (!Number.isSafeInteger(value)) {
    throw SignetError.unsupported(
      `${field} ${String(value)} is not a safe integer; pass a bigint for values beyond 2^53`,
    );
  }
  return value.toString();
}

/**
 * Accumulates length-prefixed fields, then writes them into one buffer:
 * text is measured with `Buffer.byteLength` and written in place, so a
 * verify costs one allocation (this runs for every task a worker claims).
 */
class Writer {
  readonly #parts: Array<string | Uint8Array | null> = [];
  #length = TAG_BYTES.length;

  #add(part: string | Uint8Array, length: number): void {
    if (length >= ABSENT) {
      throw SignetError.unsupported(`a field of ${length} bytes is too long to sign; the limit is 4 GiB - 2`);
    }
    this.#parts.push(part);
    this.#length += 4 + length;
  }

  /** A bare count (the number of headers). */
  count(n: number): void {
    this.#parts.push(COUNT_MARK, String(n));
    this.#length += 4;
  }

  field(bytes: Uint8Array): void {
    this.#add(bytes, bytes.length);
  }

  text(s: string): void {
    this.#add(s, Buffer.byteLength(s, "utf8"));
  }

  optional(s: string | null | undefined): void {
    if (s === null || s === undefined) {
      this.#parts.push(null);
      this.#length += 4;
    } else this.text(s);
  }

  finish(): Uint8Array {
    const out = Buffer.allocUnsafe(this.#length);
    let at = TAG_BYTES.copy(out, 0);
    const parts = this.#parts;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p === null || p === undefined) {
        at = out.writeUInt32BE(ABSENT, at);
      } else if (p === COUNT_MARK) {
        at = out.writeUInt32BE(Number(parts[++i]), at);
      } else if (typeof p === "string") {
        const n = out.write(p, at + 4, "utf8");
        out.writeUInt32BE(n, at);
        at += 4 + n;
      } else {
        at = out.writeUInt32BE(p.length, at);
        out.set(p, at);
        at += p.length;
      }
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }
}

/**
 * The canonical bytes that are signed (docs/task-envelope.md). Throws
 * `unsupported` for an upper-case header name (build headers with
 * {@link normaliseHeaders}), a time that is not an integer in range,
 * `maxAttempts` outside 0..2³²−1, or a field longer than 4 GiB − 2.
 */
export function canonicalBytes(envelope: TaskEnvelope): Uint8Array {
  const w = new Writer();
  w.text(envelope.id);
  w.text(envelope.queue);
  w.text(envelope.name);
  if (typeof envelope.args === "string") w.text(envelope.args);
  else w.field(envelope.args);
  const headers = Object.entries(envelope.headers ?? {})
    .filter(([name]) => !SIGNATURE_HEADERS.includes(name))
    .sort(([a], [b]) => compareBytes(a, b));
  w.count(headers.length);
  for (const [name, value] of headers) {
    // Lower-casing here would break the sort order and could merge two
    // names into one, so two different envelopes would share bytes.
    if (/[A-Z]/.test(name)) {
      throw SignetError.unsupported(
        `header name ${quote(name)} is not lower-case; build headers with normaliseHeaders`,
      );
    }
    w.text(name);
    w.text(value);
  }
  w.text(decimal(envelope.createdAtMs, "createdAtMs"));
  const opt = (v: Millis | null | undefined, field: string): string | undefined =>
    v === null || v === undefined ? undefined : decimal(v, field);
  w.optional(opt(envelope.notBeforeMs, "notBeforeMs"));
  w.optional(opt(envelope.expiresAtMs, "expiresAtMs"));
  if (!Number.isInteger(envelope.maxAttempts) || envelope.maxAttempts < 0 || envelope.maxAttempts > 0xffffffff) {
    throw SignetError.unsupported(
      `maxAttempts ${String(envelope.maxAttempts)} is not an unsigned 32-bit integer`,
    );
  }
  w.text(envelope.maxAttempts.toString());
  w.optional(envelope.callbackUrl);
  return w.finish();
}

/** An envelope's signature as stored beside it: `{alg, key_id, sig}`. */
export interface EnvelopeSignature {
  /** The algorithm that made it. */
  readonly alg: Algorithm;
  /** The id of the key that made it. */
  readonly keyId: string;
  /** The signature bytes: 32 (HMAC-SHA256) or 64 (Ed25519). */
  readonly sig: Uint8Array;
}

/** The two wire headers of a signature. */
export interface SignatureHeaders {
  readonly "signet-signature": string;
  readonly "signet-signature-key": string;
}

/** The `signet-signature` header value: `v1,<base64>` or `v1a,<base64>`. */
export function signatureHeaderValue(signature: EnvelopeSignature): string {
  return `${algorithmVersion(signature.alg)},${encodeBase64(signature.sig)}`;
}

/** Both wire headers of a signature. */
export function signatureHeaders(signature: EnvelopeSignature): SignatureHeaders {
  return {
    [SIGNATURE_HEADER]: signatureHeaderValue(signature),
    [SIGNATURE_KEY_HEADER]: signature.keyId,
  } as SignatureHeaders;
}

/** Whether `id` is 1–64 of `A-Z a-z 0-9 . _ -`, with the Rust side's reason when not. */
function keyIdProblem(id: string): string | undefined {
  if (id.length === 0) return "key id is empty; use 1 to 64 characters of A-Z a-z 0-9 . _ -";
  const bytes = Buffer.byteLength(id, "utf8");
  if (bytes > 64) return `key id is ${bytes} characters long; the limit is 64`;
  const bad = [...id].find((c) => !/^[A-Za-z0-9._-]$/.test(c));
  if (bad !== undefined) {
    const shown = bad === "'" ? "'\\''" : `'${quote(bad).slice(1, -1)}'`;
    return `key id ${quote(id)} contains ${shown}; use only A-Z a-z 0-9 . _ -`;
  }
  return undefined;
}

/**
 * Parses the `signet-signature` and `signet-signature-key` header values.
 * Absent or empty → `missing`; no comma, an unknown version, bad base64, a
 * wrong length or an invalid key id → `malformed`.
 */
export function parseSignatureHeaders(
  signature: string | null | undefined,
  keyId: string | null | undefined,
): EnvelopeSignature {
  const sigText = (signature ?? "").trim();
  const idText = (keyId ?? "").trim();
  if (sigText.length === 0) {
    throw SignetError.missing(`${SIGNATURE_HEADER} header is missing or empty; the task was not signed`);
  }
  if (idText.length === 0) {
    throw SignetError.missing(
      `${SIGNATURE_KEY_HEADER} header is missing or empty; it must name the key that signed the task`,
    );
  }
  const comma = sigText.indexOf(",");
  if (comma < 0) {
    throw SignetError.malformed(
      `${SIGNATURE_HEADER} has no ','; expected "v1,<base64>" or "v1a,<base64>"`,
    );
  }
  const version = sigText.slice(0, comma);
  const alg = algorithmFromVersion(version);
  if (alg === undefined) {
    const shown = [...version].slice(0, 16).join("");
    throw SignetError.malformed(
      `${SIGNATURE_HEADER} version ${quote(shown)} is unknown; expected v1 (hmac-sha256) or v1a (ed25519)`,
    );
  }
  let sig: Uint8Array;
  try {
    sig = decodeSignature(sigText.slice(comma + 1));
  } catch (e) {
    const why = e instanceof Base64Error ? e.message : "it cannot be decoded";
    throw SignetError.malformed(`${SIGNATURE_HEADER} is not valid base64: ${why}`);
  }
  if (sig.length !== signatureLength(alg)) {
    throw SignetError.malformed(
      `${SIGNATURE_HEADER} (${version}) is ${sig.length} bytes; ${alg} signatures are ${signatureLength(alg)}`,
    );
  }
  const problem = keyIdProblem(idText);
  if (problem !== undefined) {
    throw SignetError.malformed(`${SIGNATURE_KEY_HEADER} is not a valid key id: ${problem}`);
  }
  return { alg, keyId: idText, sig };
}

/**
 * A stored signature as `signet tasks show --json` and the API print it:
 * `{"alg": "ed25519", "key_id": "k1", "sig": "<base64>"}`. Bad input is
 * `malformed` (a `null` signature is `missing`).
 */
export function parseStoredSignature(stored: unknown): EnvelopeSignature {
  if (stored === null || stored === undefined) {
    throw SignetError.missing("the task has no signature; it was enqueued without a signing key");
  }
  if (typeof stored !== "object") throw SignetError.malformed("the stored signature is not an object");
  const { alg, key_id: keyId, sig } = stored as Record<string, unknown>;
  if (alg !== "hmac-sha256" && alg !== "ed25519") {
    throw SignetError.malformed(`the stored signature's alg is not "hmac-sha256" or "ed25519"`);
  }
  if (typeof keyId !== "string" || typeof sig !== "string") {
    throw SignetError.malformed("the stored signature needs a key_id and a base64 sig");
  }
  return parseSignatureHeaders(`${algorithmVersion(alg)},${sig}`, keyId);
}

/** The stored JSON form of a signature (`{alg, key_id, sig}`). */
export function storedSignature(signature: EnvelopeSignature): { alg: Algorithm; key_id: string; sig: string } {
  return { alg: signature.alg, key_id: signature.keyId, sig: encodeBase64(signature.sig) };
}

/**
 * Signs the canonical bytes with the ring's active key. A verify-only ring
 * (no active key) is a `config` error.
 */
export function signEnvelope(envelope: TaskEnvelope, ring: KeyRing): EnvelopeSignature {
  const key = ring.active;
  if (key === undefined) {
    throw SignetError.config(
      `the key ring has no active key (${ring.describe()}); set one that can sign to enqueue signed tasks`,
    );
  }
  const bytes = canonicalBytes(envelope);
  return { alg: key.algorithm, keyId: key.id, sig: key.sign(bytes) };
}

function resolve(signature: EnvelopeSignature, ring: KeyRing): Key {
  const key = ring.get(signature.keyId);
  if (key === undefined) {
    const shown = [...signature.keyId].slice(0, 64).join("");
    throw SignetError.unknownKey(
      `task is signed with key ${quote(shown)}, which is not in the key ring (${ring.describe()}); add that key (its public key is enough for ed25519) or re-sign the task`,
    );
  }
  if (key.algorithm !== signature.alg) {
    throw SignetError.algorithmMismatch(
      `task signature is ${signature.alg} but key ${quote(signature.keyId)} is a ${key.algorithm} key; the signature cannot be from that key`,
    );
  }
  const expected = signatureLength(signature.alg);
  if (signature.sig.length !== expected) {
    throw SignetError.malformed(
      `task signature is ${signature.sig.length} bytes; ${signature.alg} signatures are ${expected}`,
    );
  }
  return key;
}

/**
 * Verifies a signature against the ring and returns the id of the key that
 * made it. Throws {@link SignetError} with reason `unknown-key`,
 * `algorithm-mismatch`, `malformed` (wrong length) or `mismatch` (Ed25519
 * strictly; HMAC compared in constant time).
 */
export function verifyEnvelope(envelope: TaskEnvelope, signature: EnvelopeSignature, ring: KeyRing): string {
  const key = resolve(signature, ring);
  const bytes = canonicalBytes(envelope);
  try {
    key.verify(bytes, signature.sig);
  } catch (e) {
    if (e instanceof SignetError && e.reason === "mismatch") {
      throw SignetError.mismatch(
        `task signature does not match key ${quote(key.id)} (${bytes.length} canonical bytes); was the task changed after it was signed?`,
      );
    }
    throw e;
  }
  return key.id;
}

/**
 * Verifies an envelope carried with the two wire headers (`missing` and
 * `malformed` come from parsing them; then as {@link verifyEnvelope}).
 */
export function verifyEnvelopeHeaders(
  envelope: TaskEnvelope,
  headers: { readonly [name: string]: string | undefined },
  ring: KeyRing,
): string {
  const find = (name: string): string | undefined => {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
    return undefined;
  };
  const signature = parseSignatureHeaders(find(SIGNATURE_HEADER), find(SIGNATURE_KEY_HEADER));
  return verifyEnvelope(envelope, signature, ring);
}

/** The outcome of {@link checkEnvelope}: ok with the key id, or the reason and message. */
export type VerifyResult =
  | { readonly ok: true; readonly keyId: string }
  | { readonly ok: false; readonly reason: SignetError["reason"]; readonly message: string };

/**
 * {@link verifyEnvelope} without throwing for verification failures; a
 * `null` signature is `missing`. Configuration and encoding errors still throw.
 */
export function checkEnvelope(
  envelope: TaskEnvelope,
  signature: EnvelopeSignature | null | undefined,
  ring: KeyRing,
): VerifyResult {
  try {
    if (signature === null || signature === undefined) {
      throw SignetError.missing(
        `task ${quote(envelope.id)} has no signature; it was enqueued without a signing key`,
      );
    }
    return { ok: true, keyId: verifyEnvelope(envelope, signature, ring) };
  } catch (e) {
    if (e instanceof SignetError && e.isVerification) {
      return { ok: false, reason: e.reason, message: e.message };
    }
    throw e;
  }
}
