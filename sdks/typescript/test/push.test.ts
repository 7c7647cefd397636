/**
 * The push-endpoint helper: requests made as Signet's dispatcher makes them
 * (PUSH contract: a Standard Webhooks POST with the target's secret whose
 * body is a claimed task without the lease), through `handlePush` and
 * through the `node:http` listener; and `checkTask`'s outcomes.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";

import {
  HmacKey,
  KeyRing,
  MAX_RETRY_AFTER_MS,
  Producer,
  SignetClient,
  TaskError,
  checkTask,
  createPushListener,
  handlePush,
  loadKeys,
  newTaskId,
  parseWebhookSecret,
  signEnvelope,
  silentLogger,
  storedSignature,
  verifyWebhook,
  webhookHeaders,
  type PushOptions,
  type WireTask,
} from "../src/index.js";
import { SDK_DIR } from "./helpers.js";
import { serverSkip, startServer, type TestServer } from "./server.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const hop = KeyRing.single(parseWebhookSecret(SECRET));
const taskRing = KeyRing.single(new HmacKey("k1", Buffer.alloc(32, 3)));

function pushedTask(name: string, args: string, extra: { expiresAtMs?: number } = {}): WireTask {
  const id = newTaskId();
  const envelope = {
    id,
    queue: "push",
    name,
    args,
    headers: {},
    createdAtMs: Date.now(),
    notBeforeMs: null,
    expiresAtMs: extra.expiresAtMs ?? null,
    maxAttempts: 5,
    callbackUrl: null,
  };
  return {
    attempt: 1,
    max_attempts: 5,
    envelope: {
      id,
      queue: "push",
      name,
      args_b64: Buffer.from(args).toString("base64"),
      args: null,
      headers: {},
      created_at_ms: envelope.createdAtMs,
      not_before_ms: null,
      expires_at_ms: envelope.expiresAtMs,
      max_attempts: 5,
      callback_url: null,
    },
    signature: storedSignature(signEnvelope(envelope, taskRing)),
  };
}

function request(task: WireTask, ring = hop, at = Math.floor(Date.now() / 1000)): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ ...task, future_field: "ignored" });
  return { headers: { ...webhookHeaders(ring, task.envelope.id, at, body), "content-type": "application/json" }, body };
}

function options(calls: unknown[]): PushOptions {
  return {
    secret: SECRET,
    keys: taskRing.verifyOnly(),
    logger: silentLogger,
    handlers: {
      "email.send": (args: { to: string }, ctx) => {
        calls.push([args, ctx.id, ctx.attempt]);
        return { sent: args.to };
      },
      flaky: () => {
        throw new TaskError("upstream 503", { retryAfterMs: 30_000 });
      },
    },
  };
}

function answerVerifies(requestId: string, res: { headers: Record<string, string>; body: string }): void {
  assert.equal(res.headers["webhook-id"], requestId);
  const now = Math.floor(Date.now() / 1000);
  verifyWebhook(hop, res.headers, res.body, { now });
}

test("a verified push runs the handler; the answer is the result, signed with the target secret", async () => {
  const calls: unknown[] = [];
  const task = pushedTask("email.send", '{"to": "ada@example.com"}');
  const res = await handlePush(request(task), options(calls));
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { sent: "ada@example.com" });
  assert.deepEqual(calls, [[{ to: "ada@example.com" }, task.envelope.id, 1]]);
  answerVerifies(task.envelope.id, res);
});

test("a forged or stale hop is 401 and nothing runs", async () => {
  const calls: unknown[] = [];
  const task = pushedTask("email.send", '{"to":"ada@example.com"}');
  const forged = KeyRing.single(new HmacKey("x", Buffer.alloc(24, 5)));
  const res = await handlePush(request(task, forged), options(calls));
  assert.equal(res.status, 401);
  assert.match(JSON.parse(res.body).error.message, /mismatch/);
  const stale = await handlePush(request(task, hop, Math.floor(Date.now() / 1000) - 600), options(calls));
  assert.equal(stale.status, 401);
  assert.match(JSON.parse(stale.body).error.message, /too-old/);
  const req = request(task);
  const changed = await handlePush({ headers: req.headers, body: req.body.replace(`"attempt":1`, `"attempt":2`) }, options(calls));
  assert.equal(changed.status, 401);
  assert.deepEqual(calls, []);
  answerVerifies(task.envelope.id, res); // refusals are signed too
});

test("a tampered envelope with a valid hop is 422 dead signature-invalid, handler not run", async () => {
  const calls: unknown[] = [];
  const task = pushedTask("email.send", '{"to":"ada@example.com"}');
  const tampered: WireTask = {
    ...task,
    envelope: { ...task.envelope, args_b64: Buffer.from('{"to":"eve@example.com"}').toString("base64") },
  };
  const res = await handlePush(request(tampered), options(calls));
  assert.equal(res.status, 422);
  const dead = JSON.parse(res.body).dead;
  assert.equal(dead.reason, "signature-invalid");
  assert.match(dead.detail, /^mismatch: /);
  assert.deepEqual(calls, []);
  answerVerifies(task.envelope.id, res);
  const unsigned = await handlePush(request({ ...task, signature: null }), options(calls));
  assert.match(JSON.parse(unsigned.body).dead.detail, /^missing: /);
});

test("unknown task, expired task, handler errors", async () => {
  const calls: unknown[] = [];
  const unknown = await handlePush(request(pushedTask("nope", "{}")), options(calls));
  assert.equal(unknown.status, 422);
  assert.equal(JSON.parse(unknown.body).dead.reason, "unknown-task");
  const expired = await handlePush(request(pushedTask("email.send", "{}", { expiresAtMs: Date.now() - 1000 })), options(calls));
  assert.equal(JSON.parse(expired.body).dead.reason, "expired");
  const flaky = await handlePush(request(pushedTask("flaky", "{}")), options(calls));
  assert.equal(flaky.status, 500);
  assert.equal(flaky.headers["retry-after"], "30");
  assert.match(JSON.parse(flaky.body).error.message, /upstream 503/);
  const other = pushedTask("email.send", "{}");
  const mismatch = request(other);
  mismatch.headers = webhookHeaders(hop, "task_other", Math.floor(Date.now() / 1000), mismatch.body);
  assert.equal((await handlePush(mismatch, options(calls))).status, 400);
});

test("checkTask: args that are not JSON are payload-invalid; signature first", () => {
  const verdict = checkTask(pushedTask("email.send", "not json"), { ring: taskRing, hasHandler: () => true, nowMs: Date.now() });
  assert.equal(verdict.ok, false);
  assert.equal(!verdict.ok && verdict.reason, "payload-invalid");
  const other = KeyRing.single(new HmacKey("k2", Buffer.alloc(32, 4)));
  const unknownKey = checkTask(pushedTask("nope", "x"), { ring: other, hasHandler: () => false, nowMs: Date.now() });
  assert.equal(!unknownKey.ok && unknownKey.reason, "signature-invalid");
  assert.match(!unknownKey.ok ? unknownKey.detail : "", /^unknown-key: /);
});

test("the node:http listener: POST only, body limit, signed answers", async () => {
  const calls: unknown[] = [];
  const server = createServer(createPushListener({ ...options(calls), maxBodyBytes: 4096 }));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/signet`;
  try {
    const task = pushedTask("email.send", '{"to":"ada@example.com"}');
    const req = request(task);
    const res = await fetch(url, { method: "POST", headers: req.headers, body: req.body });
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(body), { sent: "ada@example.com" });
    answerVerifies(task.envelope.id, { headers: Object.fromEntries(res.headers), body });
    assert.equal((await fetch(url)).status, 405);
    const big = await fetch(url, { method: "POST", headers: req.headers, body: "x".repeat(5000) });
    assert.equal(big.status, 413);
    assert.equal(calls.length, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

const skip = serverSkip();
let server: TestServer;
before(async () => {
  if (skip === false) server = await startServer();
});
after(async () => server?.stop());

test("a task claimed from a real server, pushed without its lease, verifies and runs", { skip }, async () => {
  const producer = new Producer({ url: server.url, apiKey: server.workKey, keys: server.keys });
  const client = new SignetClient({ url: server.url, apiKey: server.workKey });
  try {
    const task = await producer.enqueue("push-real", "email.send", { to: "ada@example.com" });
    const claimed = await client.request<{ tasks: Array<Record<string, unknown>> }>("POST", "v1/work/claim", {
      queues: ["push-real"],
      max: 1,
    });
    const { lease: _l, lease_expires_at: _a, lease_expires_at_ms: _b, ...pushed } = claimed.tasks[0] as Record<string, unknown>;
    const body = JSON.stringify(pushed);
    const headers = webhookHeaders(hop, task.id, Math.floor(Date.now() / 1000), body);
    const calls: unknown[] = [];
    const res = await handlePush({ headers, body }, { ...options(calls), keys: server.keys });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(calls, [[{ to: "ada@example.com" }, task.id, 1]]);
  } finally {
    producer.close();
    client.close();
  }
});

test("examples/push-http.mjs serves pushed tasks as written", async () => {
  const keyFile = join(mkdtempSync(join(tmpdir(), "signet-push-example-")), "k.keys");
  writeFileSync(keyFile, `SIGNET_SIGNING_KEYS=k1:${Buffer.alloc(32, 3).toString("base64")}\n`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("SIGNET_")) env[k] = v;
  const child = spawn(process.execPath, [join(SDK_DIR, "examples", "push-http.mjs")], {
    env: { ...env, SIGNET_TARGET_SECRET: SECRET, SIGNET_KEYS_FILE: keyFile, PORT: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /on (http:\/\/\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`the example exited (${code}):\n${out}\n${err}`)));
    });
    const task = pushedTask("welcome.send", '{"to":"ada@example.com"}');
    const req = request(task);
    const res = await fetch(url, { method: "POST", headers: req.headers, body: req.body });
    const body = await res.text();
    assert.equal(res.status, 200, body);
    assert.deepEqual(JSON.parse(body), { sent: "ada@example.com", task: task.envelope.id });
    answerVerifies(task.envelope.id, { headers: Object.fromEntries(res.headers), body });
  } finally {
    child.kill();
    rmSync(dirname(keyFile), { recursive: true, force: true });
  }
});

test("answers are signed with the time they are made, not the request's arrival", async () => {
  let clock = Date.now();
  const task = pushedTask("slow", "{}");
  const res = await handlePush(request(task), {
    ...options([]),
    now: () => clock,
    handlers: {
      slow: () => {
        clock += 400_000; // a handler that ran past the dispatcher's tolerance
        return "done";
      },
    },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers["webhook-timestamp"], String(Math.floor(clock / 1000)));
  verifyWebhook(hop, res.headers, res.body, { now: Math.floor(clock / 1000) });
});

test("SIGNET_SIGNING_REQUIRED=false: unsigned tasks run, signed ones are still verified", async () => {
  const keys = loadKeys({
    env: { SIGNET_SIGNING_KEYS: `k1:${Buffer.alloc(32, 3).toString("base64")}`, SIGNET_SIGNING_REQUIRED: "false" },
  });
  assert.equal(keys.required, false);
  const opts: PushOptions = { ...options([]), keys };
  const task = pushedTask("email.send", '{"to":"ada@example.com"}');
  const unsigned = await handlePush(request({ ...task, signature: null }), opts);
  assert.equal(unsigned.status, 200);
  assert.deepEqual(JSON.parse(unsigned.body), { sent: "ada@example.com" });
  assert.equal((await handlePush(request(task), opts)).status, 200);
  const tampered = { ...task, envelope: { ...task.envelope, args_b64: Buffer.from('{"to":"eve@example.com"}').toString("base64") } };
  const refused = await handlePush(request(tampered), opts);
  assert.equal(refused.status, 422);
  assert.match(JSON.parse(refused.body).dead.detail, /^mismatch: /);
  // Not required, no keys at all: accepted (unsigned tasks only can run).
  const empty = { ...keys, ring: new KeyRing([]) };
  assert.equal((await handlePush(request({ ...task, signature: null }), { ...options([]), keys: empty })).status, 200);
  // Required (the default, and any bare key ring): an empty ring is refused, an unsigned task is dead missing.
  assert.throws(() => createPushListener({ ...options([]), keys: new KeyRing([]) }), /no keys to verify/);
  const required = checkTask({ ...task, signature: null }, { ring: taskRing, hasHandler: () => true, nowMs: Date.now() });
  assert.match(!required.ok ? required.detail : "", /^missing: /);
  const notRequired = checkTask({ ...task, signature: null }, { ring: taskRing, hasHandler: () => true, nowMs: Date.now(), required: false });
  assert.equal(notRequired.ok, true);
  assert.equal(notRequired.ok && notRequired.info.keyId, undefined);
});

test("checkTask: args_b64 that is not strict base64 is dead signature-invalid malformed", () => {
  const task = pushedTask("email.send", '{"to":"ada@example.com"}');
  for (const bad of ["e30*", "e3 0=", "e31=", "e30==", "ZZ"]) {
    const verdict = checkTask({ ...task, envelope: { ...task.envelope, args_b64: bad } }, { ring: taskRing, hasHandler: () => true, nowMs: Date.now() });
    assert.equal(!verdict.ok && verdict.reason, "signature-invalid", bad);
    assert.match(!verdict.ok ? verdict.detail : "", /^malformed: args_b64 is not base64: /, bad);
  }
  const unpadded = checkTask({ ...task, envelope: { ...task.envelope, args_b64: task.envelope.args_b64.replace(/=+$/, "") } }, { ring: taskRing, hasHandler: () => true, nowMs: Date.now() });
  assert.equal(unpadded.ok, true);
});

test("TaskError: retryAfterMs must be finite ms from 0 to a year; error text never splits a surrogate pair", async () => {
  for (const bad of [Number.NaN, Infinity, -1, MAX_RETRY_AFTER_MS + 1]) {
    assert.throws(() => new TaskError("x", { retryAfterMs: bad }), /retryAfterMs is .*from 0 to one year/);
  }
  assert.equal(new TaskError("x", { retryAfterMs: 1500.7 }).retryAfterMs, 1500.7);
  const text = `${"a".repeat(999)}😀 and more`;
  const res = await handlePush(request(pushedTask("boom", "{}")), {
    ...options([]),
    handlers: {
      boom: () => {
        throw new Error(text);
      },
    },
  });
  assert.equal(res.status, 500);
  const message = JSON.parse(res.body).error.message as string;
  assert.equal(message, `${"a".repeat(999)}…`);
  assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(message), "no lone high surrogate");
});
