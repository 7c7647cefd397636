/**
 * Property-style tests over random envelopes (seeded, so a failure can be
 * replayed with SIGNET_PROPERTY_SEED): the bytes decode back to the envelope
 * (so distinct envelopes never share bytes), and sign → verify holds for
 * both algorithms while any change to the envelope breaks the signature.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Ed25519PrivateKey,
  HmacKey,
  KeyRing,
  canonicalBytes,
  checkEnvelope,
  signEnvelope,
  type TaskEnvelope,
} from "../src/index.js";

const seed = Number(process.env["SIGNET_PROPERTY_SEED"] ?? Date.now() % 2 ** 31);
const CASES = 400;

/** mulberry32: small, seeded, good enough to pick test inputs. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function generator(random: () => number) {
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const text = (alphabet: readonly string[], max: number): string =>
    Array.from({ length: int(max + 1) }, () => pick(alphabet)).join("");
  const chars = ["a", "b", "0", ".", "_", "-", ":", ",", " ", "é", "世", "🌍", "\u0000", "\uffff"];
  const tokenChars = ["a", "b", "z", "0", "-", "_", ".", "~", "!"];
  const millis = (): number | bigint =>
    pick<() => number | bigint>([
      () => 0,
      () => -1,
      () => int(2 ** 41),
      () => Number.MAX_SAFE_INTEGER,
      () => (1n << 63n) - 1n,
      () => -(1n << 63n),
      () => BigInt(int(1000)) * 10n ** 15n,
    ])();
  return (): TaskEnvelope => {
    const headers: Record<string, string> = {};
    for (let i = int(4); i > 0; i--) headers[text(tokenChars, 6) || "h"] = text(chars, 5);
    const args = new Uint8Array(int(12));
    for (let i = 0; i < args.length; i++) args[i] = int(256);
    return {
      id: text(chars, 8),
      queue: text(chars, 4),
      name: text(chars, 6),
      args: random() < 0.3 ? text(chars, 8) : args,
      headers,
      createdAtMs: millis(),
      notBeforeMs: random() < 0.5 ? null : millis(),
      expiresAtMs: random() < 0.5 ? undefined : millis(),
      maxAttempts: pick([0, 1, 5, 25, 0xffffffff, int(2 ** 32)]),
      callbackUrl: pick([null, undefined, "", "https://x.example/cb", text(chars, 5)]),
    };
  };
}

/** Decodes canonical bytes back into fields: the layout is injective if this inverts it. */
function decode(bytes: Uint8Array): unknown[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 14;
  assert.equal(Buffer.from(bytes.subarray(0, 14)).toString("latin1"), "signet.task.v1");
  const u32 = (): number => {
    const n = view.getUint32(at, false);
    at += 4;
    return n;
  };
  const field = (): string => {
    const n = u32();
    assert.notEqual(n, 0xffffffff);
    const out = Buffer.from(bytes.subarray(at, at + n)).toString("hex");
    at += n;
    return out;
  };
  const optional = (): string | null => {
    if (view.getUint32(at, false) === 0xffffffff) {
      at += 4;
      return null;
    }
    return field();
  };
  const out: unknown[] = [field(), field(), field(), field()];
  const headers: string[] = [];
  for (let n = u32(); n > 0; n--) headers.push(`${field()}=${field()}`);
  out.push(headers, field(), optional(), optional(), field(), optional());
  assert.equal(at, bytes.length, "no trailing bytes");
  return out;
}

/** The same fields, from the envelope, in the decoder's form. */
function fields(e: TaskEnvelope): unknown[] {
  const h = (s: string): string => Buffer.from(s, "utf8").toString("hex");
  const opt = (v: number | bigint | string | null | undefined): string | null =>
    v === null || v === undefined ? null : h(v.toString());
  const headers = Object.entries(e.headers ?? {})
    .map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as const)
    .sort(([a], [b]) => Buffer.compare(a, b))
    .map(([k, v]) => `${k.toString("hex")}=${v.toString("hex")}`);
  return [
    h(e.id),
    h(e.queue),
    h(e.name),
    typeof e.args === "string" ? h(e.args) : Buffer.from(e.args).toString("hex"),
    headers,
    h(e.createdAtMs.toString()),
    opt(e.notBeforeMs),
    opt(e.expiresAtMs),
    h(e.maxAttempts.toString()),
    e.callbackUrl === null || e.callbackUrl === undefined ? null : h(e.callbackUrl),
  ];
}

test(`random envelopes decode back from their bytes, so distinct envelopes give distinct bytes (seed ${seed})`, () => {
  const next = generator(rng(seed));
  const seen = new Map<string, string>();
  for (let i = 0; i < CASES; i++) {
    const envelope = next();
    const bytes = canonicalBytes(envelope);
    assert.deepEqual(decode(bytes), fields(envelope), `seed ${seed} case ${i}`);
    const key = JSON.stringify(fields(envelope));
    const hexBytes = Buffer.from(bytes).toString("hex");
    const earlier = seen.get(hexBytes);
    if (earlier !== undefined) assert.equal(earlier, key, `seed ${seed}: two envelopes share bytes`);
    seen.set(hexBytes, key);
  }
});

test(`random envelopes: sign → verify with both algorithms; a change breaks it (seed ${seed})`, () => {
  const random = rng(seed + 1);
  const next = generator(random);
  const rings = [
    KeyRing.single(new HmacKey("h", Buffer.from("property-test-hmac-key-32-bytes!"))),
    KeyRing.single(new Ed25519PrivateKey("e", new Uint8Array(32).fill(42))),
  ];
  for (let i = 0; i < CASES / 4; i++) {
    const envelope = next();
    const other = next();
    for (const ring of rings) {
      const sig = signEnvelope(envelope, ring);
      assert.deepEqual(checkEnvelope(envelope, sig, ring.verifyOnly()), { ok: true, keyId: sig.keyId });
      const same =
        Buffer.compare(Buffer.from(canonicalBytes(envelope)), Buffer.from(canonicalBytes(other))) === 0;
      const result = checkEnvelope(other, sig, ring.verifyOnly());
      assert.equal(result.ok, same, `seed ${seed} case ${i}`);
      if (!result.ok) assert.equal(result.reason, "mismatch");
    }
  }
});
