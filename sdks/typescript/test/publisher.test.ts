/**
 * The message publisher: what it writes and how it splits and retries
 * (against a fake server), and publishing against a real `signet serve`
 * (idempotency, conflicts, batches in parts, and deliveries to a receiver
 * here that verifies every request with the SDK's own webhook verification).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { after, before, test } from "node:test";

import {
  ApiError,
  KeyRing,
  MAX_BATCH_MESSAGES,
  MessagePublisher,
  PublishBatchError,
  parseWebhookSecret,
  verifyWebhook,
  type Message,
  type PublishedMessage,
} from "../src/index.js";
import { apiError, fakeServer } from "./fake.js";
import { eventually, serverSkip, startServer, type TestServer } from "./server.js";

const skip = serverSkip();
const ringSecret = randomBytes(32);
let server: TestServer;
let publishKey: string;
let publisher: MessagePublisher;
let sink: Receiver;

/** A `node:http` server on 127.0.0.1:0 that records each request. */
interface Receiver {
  readonly url: string;
  readonly server: Server;
}

async function listen(handle: (req: IncomingMessage, body: Buffer) => number): Promise<Receiver> {
  const s = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(handle(req, Buffer.concat(chunks)));
      res.end();
    });
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/`, server: s };
}

function closeReceiver(r: Receiver | undefined): Promise<void> {
  if (r === undefined) return Promise.resolve();
  r.server.closeAllConnections();
  return new Promise((resolve) => r.server.close(() => resolve()));
}

/** A name no other test uses. */
function unique(what: string): string {
  return `${what}-${randomBytes(6).toString("hex")}`;
}

before(async () => {
  if (skip !== false) return;
  server = await startServer({
    SIGNET_MASTER_KEY: randomBytes(32).toString("base64"),
    SIGNET_ALLOWED_TARGET_CIDRS: "127.0.0.0/8",
    SIGNET_SIGNING_KEYS: `srv:${ringSecret.toString("base64")}`,
    SIGNET_SIGNING_ACTIVE_KEY: "srv",
  });
  publishKey = /sk_\S+/.exec(server.signet("api-keys", "create", "--name", "sdk-test-publisher", "--scope", "publish"))?.[0] ?? "";
  assert.notEqual(publishKey, "", "signet api-keys create printed no key");
  publisher = new MessagePublisher({ url: server.url, apiKey: publishKey });
  // Where messages of the tests that do not watch deliveries go.
  sink = await listen(() => 204);
});
after(async () => {
  publisher?.close();
  await closeReceiver(sink);
  await server?.stop();
});

// ---- Without a server -------------------------------------------------------

test("a publisher takes its URL and API key from SIGNET_URL and SIGNET_API_KEY, and never shows the key", () => {
  const key = "sk_publisherSecretValue123";
  const p = new MessagePublisher({ env: { SIGNET_URL: "http://127.0.0.1:9", SIGNET_API_KEY: key } });
  assert.equal(p.client.url, "http://127.0.0.1:9/");
  for (const shown of [String(p), JSON.stringify(p), inspect(p), String(p.client)]) {
    assert.ok(!shown.includes(key), shown);
  }
  p.close();
  assert.throws(() => new MessagePublisher({ env: { SIGNET_API_KEY: key } }), /no server URL: pass url .* or set SIGNET_URL/);
  assert.throws(() => new MessagePublisher({ env: { SIGNET_URL: "http://127.0.0.1:9" } }), /no API key: pass apiKey or set SIGNET_API_KEY/);
});

test("a message that cannot be written is refused before anything is sent, naming the item and the field", async () => {
  const fake = await fakeServer(() => ({ status: 201, json: { messages: [] } }));
  const p = new MessagePublisher({ url: fake.url, apiKey: "sk_test" });
  try {
    await assert.rejects(
      p.publish({ url: "http://x/", callback_url: "http://y/" } as unknown as Message),
      (e: unknown) => e instanceof TypeError && /message has an unknown field "callback_url"; the fields are .*callbackUrl/.test(e.message),
    );
    await assert.rejects(p.publish({} as Message), /message\.url is required/);
    await assert.rejects(p.publish({ url: "http://x/", body: new Uint8Array([1]) }), /message\.body is bytes; give a string/);
    await assert.rejects(p.publish({ url: "http://x/", body: 10n }), /message\.body cannot be written as JSON/);
    await assert.rejects(p.publish({ url: "http://x/", notBefore: new Date("nope") }), /message\.notBefore is an invalid Date/);
    await assert.rejects(
      p.publishBatch([{ url: "http://x/" }, { url: "http://x/" }, { url: "http://x/", body: () => 1 }]),
      /messages\[2\]\.body cannot be written as JSON/,
    );
    assert.equal(fake.requests.length, 0);
  } finally {
    p.close();
    await fake.close();
  }
});

test("a message is sent with the API's field names, a string body as it is and a Date as unix ms", async () => {
  const fake = await fakeServer(() => ({ status: 201, json: { id: "msg_1", state: "scheduled" } }));
  const p = new MessagePublisher({ url: fake.url, apiKey: "sk_test" });
  try {
    const at = new Date(1893456000000);
    const m = await p.publish({
      url: "http://x/",
      body: '{"raw": true}',
      target: "t",
      signatureProfile: "svix",
      callbackUrl: "http://y/",
      notBefore: at,
      maxAttempts: 3,
      retryScheduleMs: [1, 2],
      method: "PUT",
      headers: { "x-a": "b" },
      idempotencyKey: "k",
    });
    assert.deepEqual(m, { id: "msg_1", state: "scheduled", existing: false, raw: { id: "msg_1", state: "scheduled" } });
    assert.deepEqual(JSON.parse(fake.requests[0]?.body ?? ""), {
      url: "http://x/",
      method: "PUT",
      headers: { "x-a": "b" },
      body: '{"raw": true}',
      target: "t",
      signature_profile: "svix",
      callback_url: "http://y/",
      not_before: 1893456000000,
      max_attempts: 3,
      retry_schedule_ms: [1, 2],
      idempotency_key: "k",
    });
  } finally {
    p.close();
    await fake.close();
  }
});

test("a 503 or broken connection is retried only for a message with an idempotency key", async () => {
  let calls = 0;
  const fake = await fakeServer(() => (++calls % 2 === 1 ? apiError(503, "unavailable", "busy") : { status: 201, json: { id: "msg_1", state: "available" } }));
  const p = new MessagePublisher({ url: fake.url, apiKey: "sk_test", maxBackoffMs: 1 });
  try {
    const m = await p.publish({ url: "http://x/", idempotencyKey: "k" });
    assert.equal(m.id, "msg_1");
    assert.equal(fake.requests.length, 2);
    await assert.rejects(p.publish({ url: "http://x/" }), (e: unknown) => e instanceof ApiError && e.status === 503);
    assert.equal(fake.requests.length, 3, "a message without a key was not sent twice");
    // A connection that breaks before the answer: the same rule.
    let seen = 0;
    const breaking = createServer((req, res) => {
      req.resume();
      if (++seen % 2 === 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(201, { "content-type": "application/json" });
      res.end('{"id":"msg_3","state":"available"}');
    });
    await new Promise<void>((resolve) => breaking.listen(0, "127.0.0.1", resolve));
    const b = new MessagePublisher({ url: `http://127.0.0.1:${(breaking.address() as AddressInfo).port}`, apiKey: "sk_test", maxBackoffMs: 1 });
    try {
      assert.equal((await b.publish({ url: "http://x/", idempotencyKey: "k" })).id, "msg_3");
      assert.equal(seen, 2);
      await assert.rejects(b.publish({ url: "http://x/" }), (e: unknown) => e instanceof ApiError && e.code === "network");
      assert.equal(seen, 3, "a message without a key was not sent twice");
    } finally {
      b.close();
      await closeReceiver({ url: "", server: breaking });
    }
    // A 429 is refused before anything is stored: retried either way.
    calls = 0;
    const limited = await fakeServer(() => (++calls === 1 ? apiError(429, "rate_limited", "slow down") : { status: 201, json: { id: "msg_2", state: "available" } }));
    const q = new MessagePublisher({ url: limited.url, apiKey: "sk_test", maxBackoffMs: 1 });
    try {
      assert.equal((await q.publish({ url: "http://x/" })).id, "msg_2");
      assert.equal(limited.requests.length, 2);
    } finally {
      q.close();
      await limited.close();
    }
  } finally {
    p.close();
    await fake.close();
  }
});

/** A fake batch route answering each item as `msg_<its body.i>`; refuses bodies over `limit` bytes with 413. */
async function batchFake(limit = Infinity): Promise<Awaited<ReturnType<typeof fakeServer>>> {
  return fakeServer((req) => {
    if (Buffer.byteLength(req.body) > limit) return apiError(413, "payload_too_large", "body too large");
    const items = (JSON.parse(req.body) as { messages: Array<{ body: { i: number } }> }).messages;
    return { status: 201, json: { messages: items.map((m) => ({ id: `msg_${m.body.i}`, state: "available", existing: false })) } };
  });
}

test("a batch is split into parts of at most 1000 messages and batchBytes bytes, answered in order", async () => {
  const fake = await batchFake();
  const p = new MessagePublisher({ url: fake.url, apiKey: "sk_test" });
  const small = new MessagePublisher({ url: fake.url, apiKey: "sk_test", batchBytes: 2048 });
  try {
    const many = Array.from({ length: 2 * MAX_BATCH_MESSAGES + 500 }, (_, i) => ({ url: "http://x/", body: { i } }));
    const out = await p.publishBatch(many);
    assert.deepEqual(
      fake.requests.map((r) => (JSON.parse(r.body) as { messages: unknown[] }).messages.length),
      [1000, 1000, 500],
    );
    assert.deepEqual(out.map((m) => m.id), many.map((_, i) => `msg_${i}`));

    fake.requests.length = 0;
    const padded = Array.from({ length: 40 }, (_, i) => ({ url: "http://x/", body: { i, pad: "p".repeat(150) } }));
    const out2 = await small.publishBatch(padded);
    assert.ok(fake.requests.length >= 4, `${fake.requests.length} requests`);
    for (const r of fake.requests) assert.ok(Buffer.byteLength(r.body) <= 2048, `a body of ${Buffer.byteLength(r.body)} bytes`);
    assert.deepEqual(out2.map((m) => m.id), padded.map((_, i) => `msg_${i}`));
    assert.deepEqual(await p.publishBatch([]), []);
  } finally {
    p.close();
    small.close();
    await fake.close();
  }
});

test("a part the server refuses as too large (413) is halved and sent again, in order", async () => {
  const fake = await batchFake(1500);
  const p = new MessagePublisher({ url: fake.url, apiKey: "sk_test" });
  try {
    const items = Array.from({ length: 30 }, (_, i) => ({ url: "http://x/", body: { i, pad: "p".repeat(100) } }));
    const out = await p.publishBatch(items);
    assert.deepEqual(out.map((m) => m.id), items.map((_, i) => `msg_${i}`));
    assert.ok(fake.requests.some((r) => r.body.length > 1500), "the first body was over the fake's limit");
  } finally {
    p.close();
    await fake.close();
  }
});

// ---- Against signet serve -------------------------------------------------

test("publish answers 201 with a new message, then the same message for the same key (existing)", { skip }, async () => {
  const key = unique("one");
  const message: Message = { url: `${sink.url}one`, body: { hello: "world" }, idempotencyKey: key };
  const first = await publisher.publish(message);
  assert.match(first.id, /^msg_/);
  assert.equal(first.existing, false);
  assert.ok(["available", "scheduled"].includes(first.state), first.state);
  const again = await publisher.publish(message);
  assert.equal(again.id, first.id);
  assert.equal(again.existing, true);
  const other = await publisher.publish({ ...message, idempotencyKey: unique("one") });
  assert.notEqual(other.id, first.id);
  assert.equal(other.existing, false);
});

test("the same key with another message is a 409 idempotency_conflict; a wrong field a 422 that names it", { skip }, async () => {
  const key = unique("conflict");
  await publisher.publish({ url: `${sink.url}c`, body: { n: 1 }, idempotencyKey: key });
  await assert.rejects(publisher.publish({ url: `${sink.url}c`, body: { n: 2 }, idempotencyKey: key }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 409);
    assert.equal(e.code, "idempotency_conflict");
    assert.match(e.message, /first used with a different request/);
    return true;
  });
  await assert.rejects(publisher.publish({ url: "ftp://example.com/" }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 422);
    assert.match(e.message, /^url: /);
    return true;
  });
  // A profile name the SDK does not list is sent as it is; the server judges it.
  await assert.rejects(publisher.publish({ url: `${sink.url}p`, signatureProfile: "carrier-pigeon" }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 422);
    assert.match(e.message, /^signature_profile: .*carrier-pigeon/);
    return true;
  });
});

test("a batch is published in order with per-item keys; an item whose key was used is the first message (existing)", { skip }, async () => {
  const keys = [unique("b0"), unique("b1"), unique("b2")];
  const earlier = await publisher.publish({ url: `${sink.url}b/1`, body: { n: 1 }, idempotencyKey: keys[1] as string });
  const out = await publisher.publishBatch([
    { url: `${sink.url}b/0`, body: { n: 0 }, idempotencyKey: keys[0] as string },
    { url: `${sink.url}b/1`, body: { n: 1 }, idempotencyKey: keys[1] as string },
    { url: `${sink.url}b/2`, body: "two" },
    { url: `${sink.url}b/3`, body: { n: 3 }, idempotencyKey: keys[2] as string, delayMs: 60_000 },
  ]);
  assert.deepEqual(out.map((m) => m.existing), [false, true, false, false]);
  assert.equal(out[1]?.id, earlier.id);
  assert.deepEqual(out.map((m) => m.raw["url"]), [0, 1, 2, 3].map((i) => `${sink.url}b/${i}`));
  assert.equal(out[3]?.state, "scheduled");
  assert.equal(new Set(out.map((m) => m.id)).size, 4);
});

test("a refused item refuses its part, nothing of it is stored, and the error names its index in the whole list", { skip }, async () => {
  // About 170 bytes a message: parts of a few messages each under 1024 bytes.
  const small = new MessagePublisher({ url: server.url, apiKey: publishKey, batchBytes: 1024 });
  try {
    const run = unique("refused");
    const messages: Message[] = Array.from({ length: 25 }, (_, i) => ({
      url: `${sink.url}r/${i}`,
      body: { i },
      idempotencyKey: `${run}-${i}`,
    }));
    const bad = 17;
    const refused = messages.map((m, i) => (i === bad ? { ...m, url: "ftp://example.com/" } : m));
    let error: PublishBatchError | undefined;
    await assert.rejects(small.publishBatch(refused), (e: unknown) => {
      assert.ok(e instanceof PublishBatchError, String(e));
      error = e;
      return true;
    });
    assert.ok(error !== undefined);
    assert.equal(error.status, 422);
    assert.equal(error.index, bad);
    assert.match(error.message, /^messages\[17\]\.url: scheme "ftp"/);
    const published = error.published.length;
    assert.ok(published > 0 && published <= bad, `${published} published before the refused part`);
    assert.equal(error.part.first, published);
    assert.ok(error.part.last >= bad);
    assert.match(error.message, new RegExp(`nothing of the part of messages ${published}\\.\\.${error.part.last} was published`));
    assert.match(error.message, new RegExp(`messages 0\\.\\.${published - 1} were published by earlier requests`));
    assert.equal(error.maybeStored, false);

    // Publishing the corrected list again: the earlier parts' messages exist
    // (the same ids), and nothing from the refused part on had been stored.
    const out = await small.publishBatch(messages);
    assert.deepEqual(
      out.map((m) => m.existing),
      messages.map((_, i) => i < published),
    );
    assert.deepEqual(
      out.slice(0, published).map((m) => m.id),
      error.published.map((m: PublishedMessage) => m.id),
    );
  } finally {
    small.close();
  }
});

test("a refused item of a single part: the error says nothing was published", { skip }, async () => {
  const run = unique("single-part");
  const messages: Message[] = [0, 1, 2].map((i) => ({ url: `${sink.url}s/${i}`, idempotencyKey: `${run}-${i}` }));
  await assert.rejects(
    publisher.publishBatch(messages.map((m, i) => (i === 1 ? { ...m, maxAttempts: 0 } : m))),
    (e: unknown) => {
      assert.ok(e instanceof PublishBatchError);
      assert.equal(e.index, 1);
      assert.match(e.message, /^messages\[1\]\.max_attempts: /);
      assert.match(e.message, /no message was published before it/);
      assert.deepEqual(e.published, []);
      return true;
    },
  );
  const out = await publisher.publishBatch(messages);
  assert.deepEqual(out.map((m) => m.existing), [false, false, false]);
});

test("more than 1000 messages go in several requests, all published in order", { skip }, async () => {
  const run = unique("big");
  const messages: Message[] = Array.from({ length: MAX_BATCH_MESSAGES * 2 + 100 }, (_, i) => ({
    url: `${sink.url}big/${i}`,
    body: { i },
    idempotencyKey: `${run}-${i}`,
    delayMs: 3_600_000, // not delivered during the tests
  }));
  const out = await publisher.publishBatch(messages);
  assert.equal(out.length, messages.length);
  assert.deepEqual(out.map((m) => m.raw["url"]), messages.map((m) => m.url));
  assert.equal(new Set(out.map((m) => m.id)).size, messages.length);
  assert.ok(out.every((m) => !m.existing));
  // Each part was stored: the same list again answers the same ids.
  const again = await publisher.publishBatch(messages);
  assert.deepEqual(again.map((m) => m.id), out.map((m) => m.id));
  assert.ok(again.every((m) => m.existing));
});

test("end to end: every message reaches a receiver that verifies it, exactly once", { skip }, async () => {
  const targetSecret = `whsec_${randomBytes(32).toString("base64")}`;
  const rings = {
    target: KeyRing.single(parseWebhookSecret(targetSecret)),
    server: KeyRing.single(parseWebhookSecret(`whsec_${ringSecret.toString("base64")}`)),
  };
  const seen = new Map<string, number>();
  const failures: string[] = [];
  let expected = new Set<string>();
  let allSeen: () => void = () => {};
  const done = new Promise<void>((resolve) => (allSeen = resolve));
  const receiver = await listen((req, body) => {
    const ring = req.url?.startsWith("/target/") ? rings.target : rings.server;
    const headers = req.headers as Record<string, string | undefined>;
    try {
      verifyWebhook(ring, headers, body, { now: Math.floor(Date.now() / 1000) });
    } catch (e) {
      failures.push(`${req.url}: ${(e as Error).message}`);
      return 401;
    }
    const id = headers["webhook-id"] ?? "";
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if ([...expected].every((m) => seen.has(m))) allSeen();
    return 200;
  });
  try {
    const admin = new MessagePublisher({ url: server.url, apiKey: server.adminKey });
    const target = await admin.client.request<{ id: string }>("POST", "v1/targets", {
      name: unique("receiver"),
      url_prefix: `${receiver.url}target/`,
      secret: targetSecret,
    });
    admin.close();
    assert.match(target.id, /^tgt_/);

    const batch = await publisher.publishBatch(
      Array.from({ length: 20 }, (_, i) => ({ url: `${receiver.url}target/${i}`, target: target.id, body: { i } })),
    );
    const single = await publisher.publish({ url: `${receiver.url}target/one`, target: target.id, body: "one" });
    // Without a target the server's key ring signs.
    const unsigned = await publisher.publishBatch([
      { url: `${receiver.url}ring/0`, body: { ring: 0 } },
      { url: `${receiver.url}ring/1`, body: { ring: 1 }, method: "PUT" },
    ]);
    const published = [...batch, single, ...unsigned];
    expected = new Set(published.map((m) => m.id));
    if ([...expected].every((m) => seen.has(m))) allSeen();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not every message arrived: ${seen.size} of ${expected.size}; ${failures.join("; ")}`)), 30_000);
      }),
    ]);
    clearTimeout(timer);
    // Each is delivered (succeeded) in one attempt, so none can come again.
    for (const m of published) {
      const shown = await eventually(async () => {
        const v = await publisher.client.request<{ state: string; attempts_made: number }>("GET", `v1/messages/${m.id}`);
        return v.state === "succeeded" ? v : undefined;
      }, `${m.id} to be succeeded`);
      assert.equal(shown.attempts_made, 1, m.id);
    }
    assert.deepEqual(failures, []);
    assert.deepEqual([...seen.keys()].sort(), [...expected].sort());
    assert.ok([...seen.values()].every((n) => n === 1), JSON.stringify([...seen]));
  } finally {
    await closeReceiver(receiver);
  }
});
