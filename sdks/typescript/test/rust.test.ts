/**
 * Cross-check with the real Rust side: `signet` (SIGNET_BIN) creates a key
 * file and signed tasks in a temporary directory; the SDK loads that key
 * file, rebuilds each envelope from `signet tasks show --json`, verifies the
 * stored signature and produces the identical signature itself. The SDK
 * also names each unknown `SIGNET_…` variable with the binary's message, up
 * to the closest known name, and warns exactly when the binary does.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
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
import { b64, toHex } from "./helpers.js";

const bin = process.env["SIGNET_BIN"];
const skip =
  bin === undefined || bin === ""
    ? "SIGNET_BIN is not set: point it at the signet binary (e.g. target/debug/signet) to cross-check with the Rust side"
    : !existsSync(bin)
      ? `SIGNET_BIN is ${bin}, which does not exist`
      : false;

/** The API's task view, which `signet tasks show --json` prints. */
interface ShownTask {
  id: string;
  queue: string;
  task: string;
  args: unknown;
  headers: Record<string, string>;
  created_at: string;
  not_before: string | null;
  expires_at: string | null;
  max_attempts: number;
  callback_url: string | null;
  signature: unknown;
}

/** An API time (RFC 3339, milliseconds) as Unix milliseconds. */
const ms = (time: string | null): number | null => (time === null ? null : Date.parse(time));

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
        name: shown.task,
        args,
        headers: shown.headers,
        createdAtMs: Date.parse(shown.created_at),
        notBeforeMs: ms(shown.not_before),
        expiresAtMs: ms(shown.expires_at),
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

/** The parent's environment without its SIGNET_* variables, plus `vars`. */
function cleanEnv(vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("SIGNET_")) env[k] = v;
  }
  return { ...env, ...vars };
}

/** The WARN lines `signet keys ls` prints with `vars`, without the "WARN ". */
function binaryWarnings(vars: Record<string, string>): string[] {
  const run = spawnSync(bin as string, ["keys", "ls"], { env: cleanEnv(vars), encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return run.stderr
    .split("\n")
    .filter((line) => line.startsWith("WARN "))
    .map((line) => line.slice("WARN ".length));
}

test("unknown SIGNET_ variables: the binary's message up to the closest name, and the same name", { skip }, () => {
  const vars = {
    SIGNET_DATABASE_URL: "sqlite::memory:",
    SIGNET_SIGNING_KEYS: `k:${b64(new Uint8Array(32).fill(3))}`,
    SIGNET_SIGNING_ACTIV_KEY: "k",
    SIGNET_MASTERKEY: "not-a-key",
    SIGNET_KEYSFILE: "/nowhere.keys",
    SIGNET_SIGNING_REQUIRE: "true",
    SIGNET_MASTER_KEY: b64(new Uint8Array(32).fill(4)),
    SIGNET_TEST_DATABASE_URL: "postgres://x@localhost/t",
    // Other programs' variables, from a shared .env file: no warning.
    SIGNET_LISTEN: "127.0.0.1:0",
    SIGNET_WORKER_QUEUES: "default",
  };
  const closest: Record<string, string> = {
    SIGNET_SIGNING_ACTIV_KEY: "SIGNET_SIGNING_ACTIVE_KEY",
    SIGNET_MASTERKEY: "SIGNET_MASTER_KEY",
    SIGNET_KEYSFILE: "SIGNET_KEYS_FILE",
    SIGNET_SIGNING_REQUIRE: "SIGNET_SIGNING_REQUIRED",
  };
  const nameOf = (w: string): string => w.split(" ", 1)[0] ?? "";
  const binary = new Map(binaryWarnings(vars).map((w) => [nameOf(w), w]));
  const sdk = loadKeys({ env: vars }).warnings;
  assert.deepEqual([...binary.keys()].sort(), Object.keys(closest).sort());
  assert.deepEqual(sdk.map(nameOf).sort(), Object.keys(closest).sort());
  for (const message of sdk) {
    const name = nameOf(message);
    assert.ok(message.endsWith(`the closest known name is ${closest[name] ?? "?"}`), message);
    // The binary goes on with where its --help lists the variables; an SDK has none.
    const theirs = binary.get(name) ?? "";
    assert.ok(theirs.startsWith(message) && theirs.slice(message.length).startsWith(" ("), `${theirs}\n${message}`);
  }
});

test("signing off and dev mode: no warning from the binary or the SDK", { skip }, () => {
  const key = `k:${b64(new Uint8Array(32).fill(3))}`;
  for (const vars of [
    { SIGNET_DATABASE_URL: "sqlite::memory:", SIGNET_SIGNING_KEYS: key, SIGNET_DEV: "1" },
    { SIGNET_DATABASE_URL: "sqlite::memory:", SIGNET_SIGNING_KEYS: key, SIGNET_SIGNING_REQUIRED: "false" },
  ]) {
    assert.deepEqual(binaryWarnings(vars), []);
    assert.deepEqual(loadKeys({ env: vars }).warnings, []);
  }
  const short = { SIGNET_DATABASE_URL: "sqlite::memory:", SIGNET_SIGNING_KEYS: `k:${b64(new Uint8Array(20).fill(5))}` };
  assert.deepEqual(binaryWarnings(short), loadKeys({ env: short }).warnings);
});
