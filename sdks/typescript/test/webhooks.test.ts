/** Standard Webhooks: every case of vectors/standard_webhooks.json, and each verify outcome. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Ed25519PrivateKey,
  HmacKey,
  KeyRing,
  SignetError,
  SVIX_HEADERS,
  parseWebhookSecret,
  signWebhook,
  verifyWebhook,
  webhookHeaders,
  type Reason,
} from "../src/index.js";
import { repoFile } from "./helpers.js";

interface Vector {
  name: string;
  kind: string;
  secret?: string;
  secret_key?: string;
  public_key?: string;
  msg_id?: string;
  timestamp?: number;
  payload?: string;
  expected_signature?: string;
  signature_header?: string;
  signature_header_cases_all_invalid?: string[];
  valid?: boolean;
}

const file = JSON.parse(repoFile("vectors/standard_webhooks.json")) as { vectors: Vector[] };
const byName = (name: string): Vector => {
  const v = file.vectors.find((x) => x.name === name);
  assert.ok(v !== undefined, name);
  return v;
};

function outcome(f: () => unknown): Reason | "ok" {
  try {
    f();
    return "ok";
  } catch (e) {
    assert.ok(e instanceof SignetError, String(e));
    return e.reason;
  }
}

function reasonAndMessage(f: () => unknown): [Reason, string] {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SignetError, String(e));
    return [e.reason, e.message];
  }
  assert.fail("accepted");
}

const headersOf = (v: Vector, signature: string): Record<string, string> => ({
  "webhook-id": v.msg_id ?? "",
  "webhook-timestamp": String(v.timestamp),
  "webhook-signature": signature,
});

test("every signing and verifying vector, with the clock pinned to its timestamp", () => {
  let ran = 0;
  for (const v of file.vectors) {
    if (v.kind !== "v1" && v.kind !== "v1a") continue;
    if (v.msg_id === undefined || v.timestamp === undefined || v.payload === undefined) continue;
    const signer = KeyRing.single(parseWebhookSecret(v.secret ?? v.secret_key ?? ""));
    const verifier =
      v.public_key !== undefined ? new KeyRing([parseWebhookSecret(v.public_key)]) : signer.verifyOnly();
    const options = { now: v.timestamp };
    if (v.expected_signature !== undefined) {
      assert.equal(signWebhook(signer, v.msg_id, v.timestamp, v.payload), v.expected_signature, v.name);
      assert.equal(outcome(() => verifyWebhook(verifier, headersOf(v, v.expected_signature ?? ""), v.payload ?? "", options)), "ok", v.name);
    }
    if (v.signature_header !== undefined) {
      const got = outcome(() => verifyWebhook(verifier, headersOf(v, v.signature_header ?? ""), v.payload ?? "", options));
      assert.equal(got === "ok", v.valid, `${v.name}: ${got}`);
    }
    for (const header of v.signature_header_cases_all_invalid ?? []) {
      assert.notEqual(outcome(() => verifyWebhook(verifier, headersOf(v, header), v.payload ?? "", options)), "ok", `${v.name}: ${header}`);
    }
    ran++;
  }
  assert.equal(ran, 7);
});

test("secrets: with or without whsec_, padded or not; empty ones are refused", () => {
  const official = byName("sw_hmac_sign_official");
  const sign = (secret: string): string => signWebhook(KeyRing.single(parseWebhookSecret(secret)), "m", 1, "b");
  assert.equal(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), sign(official.secret ?? ""));
  assert.equal(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"), sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS="));
  assert.equal(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr"), sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr=="));
  assert.deepEqual(reasonAndMessage(() => parseWebhookSecret("")), [
    "config",
    "secret is empty; give the whsec_, whsk_ or whpk_ value issued for this endpoint",
  ]);
  assert.deepEqual(reasonAndMessage(() => parseWebhookSecret("whsec_")), [
    "config",
    "secret (whsec_) is empty; give the whsec_, whsk_ or whpk_ value issued for this endpoint",
  ]);
});

test("each verify outcome, in the Rust side's words", () => {
  const ring = KeyRing.single(new HmacKey("k1", new Uint8Array(32).fill(3)));
  const now = 1_700_000_000;
  const good = webhookHeaders(ring, "msg_1", now, "{}");
  const verify = (h: Record<string, string>, body = "{}", r = ring): [Reason, string] =>
    reasonAndMessage(() => verifyWebhook(r, h, body, { now }));
  assert.deepEqual(verifyWebhook(ring, good, "{}", { now }), { keyId: "k1", algorithm: "hmac-sha256" });
  assert.deepEqual(verify(good, "{}", new KeyRing([])), [
    "config",
    "the key ring has no keys to verify with; configure the sender's secret or public key",
  ]);
  assert.deepEqual(verify({ ...good, "webhook-id": "" }), ["missing", "webhook-id header is missing or empty"]);
  assert.deepEqual(verify({ ...good, "webhook-timestamp": " " }), ["missing", "webhook-timestamp header is missing or empty"]);
  assert.deepEqual(verify({ ...good, "webhook-signature": "" }), ["missing", "webhook-signature header is missing or empty"]);
  assert.deepEqual(verify({ ...good, "webhook-timestamp": "hello" }), [
    "malformed",
    'webhook-timestamp header "hello" is not a whole number of unix seconds',
  ]);
  assert.deepEqual(reasonAndMessage(() => verifyWebhook(ring, good, "{}", { now: now + 301 })), [
    "too-old",
    "timestamp is 301 s old; tolerance is 300 s",
  ]);
  assert.deepEqual(reasonAndMessage(() => verifyWebhook(ring, good, "{}", { now: now - 301 })), [
    "too-new",
    "timestamp is 301 s in the future; tolerance is 300 s",
  ]);
  assert.equal(outcome(() => verifyWebhook(ring, good, "{}", { now: now + 300 })), "ok");
  assert.deepEqual(verify({ ...good, "webhook-signature": "v2,abc" }), [
    "malformed",
    'webhook-signature header has no v1 or v1a entry (found "v2"); expected "v1,<base64>" or "v1a,<base64>"',
  ]);
  assert.deepEqual(verify({ ...good, "webhook-signature": `v1a,${"A".repeat(86)}==` }), [
    "algorithm-mismatch",
    "webhook-signature header has only v1a (Ed25519) signatures but the key ring has no ed25519 key (keys: k1)",
  ]);
  assert.deepEqual(verify({ ...good, "webhook-signature": "v1,g0hM" }), [
    "malformed",
    "webhook-signature entry 1 (v1) decodes to 3 bytes; HMAC-SHA256 signatures are 32",
  ]);
  assert.deepEqual(verify({ ...good, "webhook-signature": "v2,x v1,g0h*" }), [
    "malformed",
    "webhook-signature entry 2 (v1) is not valid base64 of a 32-byte HMAC-SHA256 signature",
  ]);
  assert.deepEqual(verify(good, "{ }"), [
    "mismatch",
    'no signature matched key "k1" (body 3 bytes; was the body re-serialised?)',
  ]);
});

test("rotation overlap: one entry per signing key, and either key verifies; Svix names", () => {
  const old = new HmacKey("old", new Uint8Array(32).fill(1));
  const neu = new Ed25519PrivateKey("new", new Uint8Array(32).fill(2));
  const ring = new KeyRing([old, neu], "new", ["old"]);
  const header = signWebhook(ring, "msg_1", 10, "body");
  assert.match(header, /^v1a,\S{88} v1,\S{44}$/);
  const headers = webhookHeaders(ring, "msg_1", 10, "body", SVIX_HEADERS);
  assert.deepEqual(Object.keys(headers), ["svix-id", "svix-timestamp", "svix-signature"]);
  for (const receiver of [KeyRing.single(old), new KeyRing([neu.toVerifying()])]) {
    const got = verifyWebhook(receiver, headers, "body", { now: 10, names: SVIX_HEADERS });
    assert.equal(got.keyId, receiver.keys[0]?.id);
  }
  assert.deepEqual(reasonAndMessage(() => signWebhook(ring.verifyOnly(), "m", 1, "b")), [
    "config",
    "the key ring has no signing key (keys: old, new); set an active key that can sign",
  ]);
  assert.equal(outcome(() => signWebhook(ring, "", 1, "b")), "unsupported");
  assert.equal(outcome(() => signWebhook(ring, "m", -1, "b")), "unsupported");
});
