/** Each verify outcome, and each signed field changed after signing. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Ed25519PrivateKey,
  HmacKey,
  KeyRing,
  SignetError,
  checkEnvelope,
  normaliseHeaders,
  parseSignatureHeaders,
  parseStoredSignature,
  signEnvelope,
  signatureHeaderValue,
  storedSignature,
  verifyEnvelope,
  verifyEnvelopeHeaders,
  type EnvelopeSignature,
  type Reason,
  type TaskEnvelope,
} from "../src/index.js";

const sample: TaskEnvelope = {
  id: "task_1",
  queue: "default",
  name: "email.send",
  args: '{"to":"a@example.com"}',
  headers: normaliseHeaders({ Tenant: "acme" }),
  createdAtMs: 1_700_000_000_000,
  expiresAtMs: 1_700_000_060_000,
  maxAttempts: 5,
};

const hmacRing = KeyRing.single(new HmacKey("h1", new Uint8Array(32).fill(7)));
const edRing = KeyRing.single(new Ed25519PrivateKey("e1", new Uint8Array(32).fill(8)));

function reasonOf(f: () => unknown): { reason: Reason; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SignetError, String(e));
    return { reason: e.reason, message: e.message };
  }
  assert.fail("expected a SignetError");
}

test("sign then verify round-trips with each algorithm, through headers and the stored form", () => {
  for (const ring of [hmacRing, edRing]) {
    const sig = signEnvelope(sample, ring);
    const parsed = parseSignatureHeaders(signatureHeaderValue(sig), sig.keyId);
    assert.deepEqual(parsed, sig);
    assert.deepEqual(parseStoredSignature(JSON.parse(JSON.stringify(storedSignature(sig)))), sig);
    assert.equal(verifyEnvelope(sample, sig, ring.verifyOnly()), sig.keyId);
    assert.deepEqual(checkEnvelope(sample, sig, ring), { ok: true, keyId: sig.keyId });
  }
});

test("missing: no signature, or an empty header", () => {
  assert.deepEqual(checkEnvelope(sample, null, hmacRing), {
    ok: false,
    reason: "missing",
    message: 'task "task_1" has no signature; it was enqueued without a signing key',
  });
  assert.deepEqual(reasonOf(() => parseSignatureHeaders("", "h1")), {
    reason: "missing",
    message: "signet-signature header is missing or empty; the task was not signed",
  });
  assert.deepEqual(reasonOf(() => verifyEnvelopeHeaders(sample, { "signet-signature": "v1,AAAA" }, hmacRing)), {
    reason: "missing",
    message: "signet-signature-key header is missing or empty; it must name the key that signed the task",
  });
  assert.equal(reasonOf(() => parseStoredSignature(null)).reason, "missing");
});

test("malformed: no comma, unknown version, bad base64, wrong length, bad key id", () => {
  const good = signatureHeaderValue(signEnvelope(sample, hmacRing)).slice(3);
  const cases: Array<[string, string, string]> = [
    ["v1" + good, "h1", `signet-signature has no ','; expected "v1,<base64>" or "v1a,<base64>"`],
    [`v2,${good}`, "h1", `signet-signature version "v2" is unknown; expected v1 (hmac-sha256) or v1a (ed25519)`],
    ["v1,AA*A", "h1", "signet-signature is not valid base64: character 3 is not in the base64 alphabet"],
    ["v1,AAF=", "h1", "signet-signature is not valid base64: character 3 has bits set past the end of the data"],
    ["v1,AAAA", "h1", "signet-signature (v1) is 3 bytes; hmac-sha256 signatures are 32"],
    [`v1a,${good}`, "h1", "signet-signature (v1a) is 32 bytes; ed25519 signatures are 64"],
    [`v1,${good}`, "has space", `signet-signature-key is not a valid key id: key id "has space" contains ' '; use only A-Z a-z 0-9 . _ -`],
  ];
  for (const [header, keyId, message] of cases) {
    assert.deepEqual(reasonOf(() => parseSignatureHeaders(header, keyId)), { reason: "malformed", message });
  }
  const sig = signEnvelope(sample, hmacRing);
  assert.deepEqual(reasonOf(() => verifyEnvelope(sample, { ...sig, sig: sig.sig.subarray(0, 31) }, hmacRing)), {
    reason: "malformed",
    message: "task signature is 31 bytes; hmac-sha256 signatures are 32",
  });
});

test("unknown-key: the key id is not in the ring", () => {
  const sig = signEnvelope(sample, hmacRing);
  assert.deepEqual(reasonOf(() => verifyEnvelope(sample, { ...sig, keyId: "nope" }, hmacRing)), {
    reason: "unknown-key",
    message:
      'task is signed with key "nope", which is not in the key ring (keys: h1); add that key (its public key is enough for ed25519) or re-sign the task',
  });
});

test("algorithm-mismatch: the signature's algorithm is not the key's", () => {
  const sig = signEnvelope(sample, hmacRing);
  const claimed: EnvelopeSignature = { alg: "ed25519", keyId: "h1", sig: new Uint8Array(64) };
  assert.deepEqual(reasonOf(() => verifyEnvelope(sample, claimed, hmacRing)), {
    reason: "algorithm-mismatch",
    message: 'task signature is ed25519 but key "h1" is a hmac-sha256 key; the signature cannot be from that key',
  });
  assert.equal(reasonOf(() => verifyEnvelope(sample, { ...sig, alg: "ed25519" }, hmacRing)).reason, "algorithm-mismatch");
});

test("mismatch: every signed field changed after signing, and a flipped signature bit", () => {
  const changes: Array<Partial<{ -readonly [K in keyof TaskEnvelope]: TaskEnvelope[K] }>> = [
    { id: "task_2" },
    { queue: "other" },
    { name: "email.sendx" },
    { args: '{"to":"b@example.com"}' },
    { args: '{"to": "a@example.com"}' },
    { headers: { tenant: "acme2" } },
    { headers: {} },
    { headers: { tenant: "acme", extra: "" } },
    { createdAtMs: 1_700_000_000_001 },
    { notBeforeMs: 1_700_000_000_000 },
    { expiresAtMs: null },
    { maxAttempts: 6 },
    { callbackUrl: "" },
  ];
  for (const ring of [hmacRing, edRing]) {
    const sig = signEnvelope(sample, ring);
    for (const change of changes) {
      const tampered = { ...sample, ...change };
      const got = checkEnvelope(tampered, sig, ring.verifyOnly());
      assert.equal(got.ok, false, JSON.stringify(change));
      if (!got.ok) {
        assert.equal(got.reason, "mismatch");
        assert.match(got.message, /^task signature does not match key "(h1|e1)" \(\d+ canonical bytes\); was the task changed after it was signed\?$/);
      }
    }
    for (let i = 0; i < sig.sig.length; i++) {
      const flipped = new Uint8Array(sig.sig);
      flipped[i] = (flipped[i] ?? 0) ^ 0x01;
      assert.equal(reasonOf(() => verifyEnvelope(sample, { ...sig, sig: flipped }, ring)).reason, "mismatch");
    }
  }
});

test("a verify-only ring cannot sign, and signature headers are never signed", () => {
  assert.deepEqual(reasonOf(() => signEnvelope(sample, edRing.verifyOnly())), {
    reason: "config",
    message:
      "the key ring has no active key (keys: e1); set one that can sign to enqueue signed tasks",
  });
  const sig = signEnvelope(sample, hmacRing);
  const withSigHeaders = {
    ...sample,
    headers: { ...sample.headers, "signet-signature": "v1,xx", "signet-signature-key": "h1" },
  };
  assert.equal(verifyEnvelope(withSigHeaders, sig, hmacRing), "h1");
});

test("headers: names lower-cased, duplicates and bad text refused, upper case cannot be encoded", () => {
  assert.deepEqual(normaliseHeaders([["X-B", "2"], ["a", "1"], ["Signet-Signature", "v1,xx"]]), { a: "1", "x-b": "2" });
  assert.deepEqual(reasonOf(() => normaliseHeaders([["A", "1"], ["a", "2"]])), {
    reason: "unsupported",
    message: 'header "a" is given twice (names are case-insensitive); send it once',
  });
  assert.deepEqual(reasonOf(() => normaliseHeaders({ "bad name": "1" })), {
    reason: "unsupported",
    message: 'header name "bad name" is not a valid token; use letters, digits and - _ .',
  });
  assert.deepEqual(reasonOf(() => normaliseHeaders({ x: "a\r\nb" })), {
    reason: "unsupported",
    message: 'header "x" has a value with CR, LF or NUL; remove them',
  });
  assert.equal(
    reasonOf(() => signEnvelope({ ...sample, headers: { Tenant: "x" } }, hmacRing)).reason,
    "unsupported",
  );
});

test("numbers out of range are refused, not rounded", () => {
  for (const change of [
    { createdAtMs: 2 ** 53 },
    { createdAtMs: 1.5 },
    { expiresAtMs: 1n << 63n },
    { maxAttempts: -1 },
    { maxAttempts: 2 ** 32 },
  ]) {
    assert.equal(reasonOf(() => signEnvelope({ ...sample, ...change }, hmacRing)).reason, "unsupported");
  }
});
