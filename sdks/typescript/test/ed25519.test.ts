/** Ed25519 strictness (docs/ed25519-policy.md) on node:crypto, checked with Wycheproof. */
import assert from "node:assert/strict";
import { test } from "node:test";

import { Ed25519PublicKey, SignetError } from "../src/index.js";
import { L, decompress, isSmallOrder, leInt } from "../src/ed25519.js";
import { hex, repoFile } from "./helpers.js";

interface WycheproofFile {
  testGroups: Array<{
    publicKey: { pk: string };
    tests: Array<{ tcId: number; msg: string; sig: string; result: string; comment: string }>;
  }>;
}

test("Wycheproof Ed25519: every valid case verifies, every invalid one is refused", () => {
  const file = JSON.parse(repoFile("vectors/wycheproof/ed25519_test.json")) as WycheproofFile;
  let ran = 0;
  for (const group of file.testGroups) {
    const key = new Ed25519PublicKey("w", hex(group.publicKey.pk));
    for (const t of group.tests) {
      assert.ok(t.result === "valid" || t.result === "invalid", `tc ${t.tcId}: ${t.result}`);
      let verdict: string = "ok";
      try {
        key.verify(hex(t.msg), hex(t.sig));
      } catch (e) {
        assert.ok(e instanceof SignetError, String(e));
        assert.ok(e.reason === "mismatch" || e.reason === "malformed", `tc ${t.tcId}: ${e.reason}`);
        verdict = e.reason;
      }
      assert.equal(verdict === "ok", t.result === "valid", `tc ${t.tcId} (${t.comment}): ${verdict}`);
      ran++;
    }
  }
  assert.equal(ran, 151, "every case ran");
});

/** The canonical encodings of the eight points of small order. */
function smallOrderEncodings(): Uint8Array[] {
  const p = (1n << 255n) - 19n;
  const y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
  const out: Uint8Array[] = [];
  for (const y of [0n, 1n, p - 1n, y8, p - y8]) {
    for (const sign of [0, 1]) {
      const b = new Uint8Array(32);
      let v = y;
      for (let i = 0; i < 32; i++) {
        b[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      b[31] = (b[31] ?? 0) | (sign << 7);
      const d = decompress(b);
      if (d !== undefined && d.canonical) out.push(b);
    }
  }
  return out;
}

test("the small-order table: eight points, each of order dividing 8", () => {
  const points = smallOrderEncodings();
  assert.equal(points.length, 8);
  for (const b of points) {
    const d = decompress(b);
    assert.ok(d !== undefined && isSmallOrder(d.point));
    // As a public key it is refused; as a signature's R it never verifies.
    assert.throws(() => new Ed25519PublicKey("s", b), /small order|not canonically encoded|not a valid curve point/);
  }
  // A real public key is not of small order.
  const real = decompress(hex("29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"));
  assert.ok(real !== undefined && real.canonical && !isSmallOrder(real.point));
});

test("a signature with a small-order R or an unreduced S is a mismatch", () => {
  const key = new Ed25519PublicKey("k", hex("29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"));
  for (const r of smallOrderEncodings()) {
    const sig = new Uint8Array(64);
    sig.set(r, 0);
    assert.throws(() => key.verify(new Uint8Array(0), sig), (e: unknown) => e instanceof SignetError && e.reason === "mismatch");
  }
  // S = ℓ: the unreduced twin of S = 0.
  const sig = new Uint8Array(64);
  let v = L;
  for (let i = 32; i < 64; i++) {
    sig[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  assert.equal(leInt(sig.subarray(32)), L);
  assert.throws(() => key.verify(new Uint8Array(0), sig), (e: unknown) => e instanceof SignetError && e.reason === "mismatch");
});

test("public keys: wrong length, not a point, small order are refused", () => {
  const cases: Array<[Uint8Array, RegExp]> = [
    [new Uint8Array(31), /^Ed25519 public key is 31 bytes; it must be 32$/],
    [new Uint8Array(33), /^Ed25519 public key is 33 bytes; it must be 32$/],
  ];
  // Find an encoding that is not a point (about half of all y values).
  for (let y = 2; y < 100; y++) {
    const b = new Uint8Array(32);
    b[0] = y;
    if (decompress(b) === undefined) {
      cases.push([b, /^Ed25519 public key is not a valid curve point$/]);
      break;
    }
  }
  assert.equal(cases.length, 3);
  for (const [bytes, message] of cases) {
    assert.throws(
      () => new Ed25519PublicKey("p", bytes),
      (e: unknown) => e instanceof SignetError && e.reason === "config" && message.test(e.message),
    );
  }
});
