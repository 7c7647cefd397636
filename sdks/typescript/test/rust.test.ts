/**
 * Cross-check with the real Rust side: `signet` (SIGNET_BIN) creates a key
 * file and signed tasks in a temporary directory; the SDK loads that key
 * file, rebuilds each envelope from `signet tasks show --json`, verifies the
 * stored signature and produces the identical signature itself.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import {
  KeyRing,
  checkEnvelope,
  loadKeys,
  parseStoredSignature,
  signEnvelope,
  type TaskEnvelope,
} from "../src/index.js";
import { toHex } from "./helpers.js";

const bin = process.env["SIGNET_BIN"];
const skip =
  bin === undefined || bin === ""
    ? "SIGNET_BIN is not set: point it at the signet binary (e.g. target/debug/signet) to cross-check with the Rust side"
    : !existsSync(bin)
      ? `SIGNET_BIN is ${bin}, which does not exist`
      : false;

interface ShownTask {
  id: string;
  queue: string;
  name: string;
  args: unknown;
  headers: Record<string, string>;
  created_at_ms: number;
  not_before_ms: number | null;
  expires_at_ms: number | null;
  max_attempts: number;
  callback_url: string | null;
  signature: unknown;
}

test("tasks signed by the signet binary verify in the SDK, which signs them identically", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "signet-sdk-rust-"));
  try {
    const db = join(dir, "s.db");
    // The parent's SIGNET_* variables must not leak into the binary or the loader.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith("SIGNET_")) env[k] = v;
    }
    env["SIGNET_DATABASE_URL"] = `sqlite://${db}`;
    const signet = (...args: string[]): string =>
      execFileSync(bin as string, args, { cwd: dir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

    const args = '{"a":1,"b":"x \\u00e9"}';
    const enqueue = (): ShownTask => {
      const out = JSON.parse(
        signet(
          "enqueue",
          "--task", "email.send",
          "--queue", "mail",
          "--args", args,
          "--header", "X-Tenant=acme",
          "--header", "traceparent=00-abc-01",
          "--delay", "5s",
          "--expires-in", "1h",
          "--max-attempts", "7",
          "--callback-url", "https://x.example/cb",
          "--json",
        ),
      ) as { id: string };
      return JSON.parse(signet("tasks", "show", out.id, "--json")) as ShownTask;
    };
    const envelopeOf = (shown: ShownTask): TaskEnvelope => {
      // `tasks show` prints args parsed; the binary signed the bytes we gave it.
      assert.deepEqual(shown.args, JSON.parse(args));
      return {
        id: shown.id,
        queue: shown.queue,
        name: shown.name,
        args,
        headers: shown.headers,
        createdAtMs: shown.created_at_ms,
        notBeforeMs: shown.not_before_ms,
        expiresAtMs: shown.expires_at_ms,
        maxAttempts: shown.max_attempts,
        callbackUrl: shown.callback_url,
      };
    };
    const check = (shown: ShownTask, alg: string, keyId: string): void => {
      const envelope = envelopeOf(shown);
      assert.deepEqual(envelope.headers, { traceparent: "00-abc-01", "x-tenant": "acme" });
      const stored = parseStoredSignature(shown.signature);
      assert.equal(stored.alg, alg);
      assert.equal(stored.keyId, keyId);
      const loaded = loadKeys({ env: { SIGNET_DATABASE_URL: `sqlite://${db}` } });
      assert.deepEqual(loaded.source, { kind: "file", path: join(dir, "s.keys"), named: false });
      assert.equal(loaded.ring.active?.id, keyId);
      // Verified by the full ring and by the verify-only ring (public keys for Ed25519).
      assert.deepEqual(checkEnvelope(envelope, stored, loaded.ring), { ok: true, keyId });
      assert.deepEqual(checkEnvelope(envelope, stored, loaded.ring.verifyOnly()), { ok: true, keyId });
      // The SDK's own signature over its bytes is the binary's, byte for byte.
      assert.equal(toHex(signEnvelope(envelope, loaded.ring).sig), toHex(stored.sig));
      // Tampering is caught.
      const tampered = checkEnvelope({ ...envelope, args: args.replace("1", "2") }, stored, loaded.ring);
      assert.equal(tampered.ok ? "ok" : tampered.reason, "mismatch");
      const unknown = checkEnvelope(envelope, stored, new KeyRing([]));
      assert.equal(unknown.ok ? "ok" : unknown.reason, "unknown-key");
    };

    // 1. The first command creates the key file: one active HMAC-SHA256 key.
    const first = enqueue();
    assert.ok(existsSync(join(dir, "s.keys")), "signet created the key file beside the database");
    const hmacId = (first.signature as { key_id: string }).key_id;
    check(first, "hmac-sha256", hmacId);

    // 2. An Ed25519 key added and activated with `signet keys`.
    signet("keys", "add", "--id", "ed1", "--algorithm", "ed25519");
    signet("keys", "activate", "ed1");
    const second = enqueue();
    check(second, "ed25519", "ed1");
    // The HMAC task still verifies with the rotated ring.
    const ring = loadKeys({ env: { SIGNET_DATABASE_URL: `sqlite://${db}` } }).ring;
    assert.deepEqual(checkEnvelope(envelopeOf(first), parseStoredSignature(first.signature), ring), {
      ok: true,
      keyId: hmacId,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
