/**
 * The producer against a real `signet serve`: the server holds two HMAC
 * keys, `srv` (its active key) and `cli`; the producer signs with `cli`
 * only. A stored signature by `cli` is therefore the producer's, stored
 * unchanged (the server would have signed with `srv`), and the claimed
 * task's bytes are exactly the producer's.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  ApiError,
  HmacKey,
  KeyRing,
  Producer,
  SignetClient,
  canonicalBytes,
  newTaskId,
  parseStoredSignature,
  signEnvelope,
  silentLogger,
  type WireTask,
} from "../src/index.js";
import { apiError, fakeServer } from "./fake.js";
import { serverSkip, startServer, type TestServer } from "./server.js";

const skip = serverSkip();
const srvSecret = Buffer.alloc(32, 1);
const cliSecret = Buffer.alloc(32, 2);
const cliRing = KeyRing.single(new HmacKey("cli", cliSecret));
let server: TestServer;
let client: SignetClient;

before(async () => {
  if (skip !== false) return;
  server = await startServer({
    SIGNET_SIGNING_KEYS: `srv:${srvSecret.toString("base64")},cli:${cliSecret.toString("base64")}`,
    SIGNET_SIGNING_ACTIVE_KEY: "srv",
  });
  client = new SignetClient({ url: server.url, apiKey: server.workKey });
});
after(async () => {
  client?.close();
  await server?.stop();
});

async function claimAll(queue: string, max = 100): Promise<WireTask[]> {
  const out: WireTask[] = [];
  for (;;) {
    const answer = await client.request<{ tasks: WireTask[] }>("POST", "v1/work/claim", { queues: [queue], max, wait_ms: 0 });
    if (answer.tasks.length === 0) return out;
    out.push(...answer.tasks);
  }
}

test("task ids are task_ and a UUIDv7 in hex, time-ordered", () => {
  const a = newTaskId(1767225600000);
  const b = newTaskId(1767225600001);
  assert.match(a, /^task_[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
  assert.ok(a.slice(5, 17) < b.slice(5, 17));
  assert.equal(a.slice(5, 17), (1767225600000).toString(16).padStart(12, "0"));
});

test("a producer without signing keys refuses, unless unsigned is chosen", () => {
  const verifyOnly = KeyRing.single(new HmacKey("cli", cliSecret)).verifyOnly();
  assert.throws(
    () => new Producer({ url: "http://127.0.0.1:1", apiKey: "sk_x", keys: verifyOnly }),
    /cannot sign.*unsigned: true/,
  );
  const warnings: string[] = [];
  const p = new Producer({
    url: "http://127.0.0.1:1",
    apiKey: "sk_x",
    unsigned: true,
    logger: { ...silentLogger, warn: (m) => warnings.push(m) },
  });
  assert.match(warnings.join("\n"), /UNSIGNED/);
  assert.match(String(p), /unsigned/);
  p.close();
});

test("enqueue: the server stores the producer's signature and bytes unchanged", { skip }, async () => {
  const producer = new Producer({ url: server.url, apiKey: server.workKey, keys: cliRing });
  try {
    const args = '{"to": "ada@example.com" ,"n":1.50,"e":"\\u00e9"}'; // spacing and forms JSON.parse would lose
    const task = await producer.enqueue("mail", "email.send", undefined, {
      argsJson: args,
      headers: { Tenant: "acme" },
      maxAttempts: 3,
      expiresAt: Date.now() + 3_600_000,
    });
    assert.match(task.id, /^task_/);
    assert.equal(task.existing, false);
    const shown = await client.request<{ signature: unknown }>("GET", `v1/tasks/${task.id}`);
    const stored = parseStoredSignature(shown.signature);
    assert.equal(stored.keyId, "cli", "the client's key signed it, not the server's srv");

    const [claimed] = await claimAll("mail");
    assert.ok(claimed);
    const e = claimed.envelope;
    assert.equal(Buffer.from(e.args_b64, "base64").toString("utf8"), args);
    assert.deepEqual(e.headers, { tenant: "acme" });
    const envelope = {
      id: e.id,
      queue: e.queue,
      name: e.name,
      args: Buffer.from(e.args_b64, "base64"),
      headers: e.headers ?? {},
      createdAtMs: e.created_at_ms,
      notBeforeMs: e.not_before_ms ?? null,
      expiresAtMs: e.expires_at_ms ?? null,
      maxAttempts: e.max_attempts,
      callbackUrl: e.callback_url ?? null,
    };
    // The producer's signature over these bytes is the one the server holds.
    assert.deepEqual(Buffer.from(signEnvelope(envelope, cliRing).sig), Buffer.from(stored.sig));
    assert.deepEqual(claimed.signature, shown.signature);
    assert.ok(canonicalBytes(envelope).length > 0);
  } finally {
    producer.close();
  }
});

test("enqueueBatch: chunks of 1000, in order, client-signed; idempotency keys per item", { skip }, async () => {
  const producer = new Producer({ url: server.url, apiKey: server.workKey, keys: cliRing });
  try {
    const items = Array.from({ length: 2345 }, (_, i) => ({ queue: "batch", name: "n", args: { i } }));
    const out = await producer.enqueueBatch(items);
    assert.equal(out.length, 2345);
    assert.equal(new Set(out.map((t) => t.id)).size, 2345);
    const claimed = await claimAll("batch");
    assert.equal(claimed.length, 2345);
    for (const t of claimed) {
      assert.equal((t.signature as { key_id: string }).key_id, "cli");
    }
    const byId = new Map(claimed.map((t) => [t.envelope.id, t]));
    out.forEach((t, i) => {
      const c = byId.get(t.id);
      assert.ok(c, `task ${i} claimed`);
      assert.equal(Buffer.from(c.envelope.args_b64, "base64").toString(), JSON.stringify({ i }));
    });

    const keyed = [
      { queue: "keyed", name: "n", args: { x: 1 }, idempotencyKey: "order-1" },
      { queue: "keyed", name: "n", args: { x: 2 }, idempotencyKey: "order-2" },
    ];
    const first = await producer.enqueueBatch(keyed);
    const again = await producer.enqueueBatch(keyed);
    assert.deepEqual(
      again.map((t) => [t.id, t.existing]),
      first.map((t) => [t.id, true]),
    );
  } finally {
    producer.close();
  }
});

test("a refused item is an ApiError naming it; nothing of its chunk is stored", { skip }, async () => {
  const producer = new Producer({ url: server.url, apiKey: server.workKey, keys: cliRing });
  try {
    const bad = [
      { queue: "refused", name: "n", args: 1 },
      { queue: "refused", name: "n", args: 2, maxAttempts: 5000 },
    ];
    await assert.rejects(producer.enqueueBatch(bad), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 422);
      assert.match(e.message, /tasks\[1\]/);
      assert.ok(!e.message.includes(server.workKey));
      return true;
    });
    assert.equal((await claimAll("refused")).length, 0);
  } finally {
    producer.close();
  }
});

test("a forged client signature is refused at the door", { skip }, async () => {
  const forger = new Producer({
    url: server.url,
    apiKey: server.workKey,
    keys: KeyRing.single(new HmacKey("cli", Buffer.alloc(32, 9))),
    logger: silentLogger,
  });
  try {
    await assert.rejects(forger.enqueue("mail", "x", {}), (e: unknown) => e instanceof ApiError && e.status === 422);
  } finally {
    forger.close();
  }
});

test("enqueueBatch: batches stay under batchBytes, and a 413 halves a batch until it fits", async () => {
  let refused = 0;
  const fake = await fakeServer((req) => {
    if (Buffer.byteLength(req.body) > 20_000) {
      refused++;
      return apiError(413, "payload_too_large", "the body is over 20000 bytes");
    }
    const tasks = (JSON.parse(req.body) as { tasks: Array<{ id: string; queue: string; task: string }> }).tasks;
    return { json: { tasks: tasks.map((t) => ({ id: t.id, queue: t.queue, name: t.task, state: "available" })) } };
  });
  try {
    const producer = new Producer({ url: fake.url, apiKey: "sk_x", keys: cliRing, batchBytes: 60_000, maxRetries: 0 });
    const items = Array.from({ length: 40 }, (_, i) => ({ queue: "q", name: "t", args: { i, pad: "x".repeat(2000) } }));
    const out = await producer.enqueueBatch(items);
    producer.close();
    assert.equal(out.length, 40);
    const sent = fake.requests.filter((r) => Buffer.byteLength(r.body) <= 20_000);
    const ids = sent.flatMap((r) => (JSON.parse(r.body) as { tasks: Array<{ id: string; args: { i: number } }> }).tasks);
    assert.deepEqual(ids.map((t) => t.args.i), items.map((_, i) => i), "every item sent once, in order");
    assert.deepEqual(out.map((t) => t.id), ids.map((t) => t.id), "answers in the order given");
    assert.ok(refused > 0, "the fake refused a batch, which was halved");
    for (const r of fake.requests) assert.ok(Buffer.byteLength(r.body) <= 60_000, "no batch over batchBytes");
    assert.throws(() => new Producer({ url: fake.url, apiKey: "sk_x", keys: cliRing, batchBytes: 10 }), /batchBytes/);
  } finally {
    await fake.close();
  }
});
