/** Every case of docs/vectors/task-envelope.json: bytes, both signatures, both header forms. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HmacKey,
  KeyRing,
  canonicalBytes,
  parseSignatureHeaders,
  signEnvelope,
  signatureHeaderValue,
  signatureHeaders,
  verifyEnvelope,
  verifyEnvelopeHeaders,
} from "../src/index.js";
import { envelopeVectors, hex, toEnvelope, toHex } from "./helpers.js";

const file = envelopeVectors();
const hmac = new HmacKey(file.hmac_key.id, hex(file.hmac_key.secret_hex));
const ed = new Ed25519PrivateKey(file.ed25519_key.id, hex(file.ed25519_key.seed_hex));
const edPublic = new Ed25519PublicKey(file.ed25519_key.id, hex(file.ed25519_key.public_hex));

test("the vectors file is the format this SDK implements and has every documented case", () => {
  assert.equal(file.format, "signet.task.v1");
  assert.deepEqual(
    file.vectors.map((v) => v.name),
    ["minimal", "full", "empty_fields", "unicode", "binary_and_extremes"],
  );
});

test("the Ed25519 seed gives the published public key", () => {
  assert.equal(toHex(ed.publicKey), file.ed25519_key.public_hex);
});

for (const vector of file.vectors) {
  test(`vector ${vector.name}: canonical bytes`, () => {
    assert.equal(toHex(canonicalBytes(toEnvelope(vector.envelope))), vector.canonical_hex);
  });

  for (const [alg, key, verifier, expected] of [
    ["hmac-sha256", hmac, hmac, vector.hmac_sha256],
    ["ed25519", ed, edPublic, vector.ed25519],
  ] as const) {
    test(`vector ${vector.name}: ${alg} signature and header`, () => {
      const envelope = toEnvelope(vector.envelope);
      const signature = signEnvelope(envelope, KeyRing.single(key));
      assert.equal(signature.alg, alg);
      assert.equal(signature.keyId, expected.key_id);
      assert.equal(toHex(signature.sig), expected.sig_hex);
      assert.equal(signatureHeaderValue(signature), expected.header);
      assert.deepEqual(signatureHeaders(signature), {
        "signet-signature": expected.header,
        "signet-signature-key": expected.key_id,
      });

      // A ring holding only what a verifier needs (the public key for
      // Ed25519) accepts the published header, padded and unpadded.
      const ring = new KeyRing([verifier]);
      assert.equal(ring.active, undefined);
      const parsed = parseSignatureHeaders(expected.header, expected.key_id);
      assert.equal(toHex(parsed.sig), expected.sig_hex);
      assert.equal(verifyEnvelope(envelope, parsed, ring), expected.key_id);
      const unpadded = expected.header.replace(/=+$/, "");
      assert.equal(
        verifyEnvelopeHeaders(
          envelope,
          { "Signet-Signature": unpadded, "Signet-Signature-Key": expected.key_id },
          ring,
        ),
        expected.key_id,
      );
    });
  }
}
