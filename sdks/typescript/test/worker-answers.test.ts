/**
 * The worker against a fake server that answers what a real one gives only
 * under load or never: a report batch over the body limit (`413`), a claim
 * the server refuses as wrong, claimed items it cannot read, malformed
 * report and heartbeat answers. Nothing may be lost, and nothing may crash
 * the process or stop a claim loop silently.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { KeyRing, Worker, loadKeys, type Logger, type WireTask } from "../src/index.js";
import { apiError, fakeServer, type FakeAnswer, type FakeRequest, type FakeServer } from "./fake.js";

const devKeys = loadKeys({ env: { SIGNET_DEV: "1" } });

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

let n = 0;
/** A claimed task as the server writes it (unsigned: the worker runs in dev mode). */
function claimed(extra: Partial<WireTask["envelope"]> = {}): WireTask {
  n++;
  return {
    lease: `lease_${n}`,
    attempt: 1,
    max_attempts: 5,
    envelope: {
      id: `task_${n}`,
      queue: "q",
      name: "t",
      args_b64: Buffer.from("{}").toString("base64"),
      created_at_ms: Date.now(),
      max_attempts: 5,
      ...extra,
    },
    signature: null,
  };
}

/** Leases of the items of a report body. */
function leases(body: string): string[] {
  return (JSON.parse(body) as { items: Array<{ lease: string }> }).items.map((i) => i.lease);
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fake that hands out `tasks` on the first claim and nothing after; `reports` answers the rest. */
async function serving(tasks: unknown[], reports: (req: FakeRequest) => FakeAnswer): Promise<FakeServer> {
  let handed = false;
  return fakeServer(async (req) => {
    if (req.path === "/v1/work/claim") {
      if (!handed) {
        handed = true;
        return { json: { tasks } };
      }
      await wait(50);
      return { json: { tasks: [] } };
    }
    return reports(req);
  });
}

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

function worker(server: FakeServer, stop: AbortController, log: Logger, extra: object = {}): Worker {
  return new Worker({
    url: server.url,
    apiKey: "sk_test",
    queues: ["q"],
    keys: devKeys,
    signal: stop.signal,
    handleSignals: false,
    logger: log,
    maxRetries: 0,
    claims: 1,
    ...extra,
  });
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(20);
  }
}

test("completions over the byte cap go in several batches, and a 413 halves a batch: none is lost", async () => {
  const tasks = Array.from({ length: 16 }, () => claimed());
  const completed: string[] = [];
  let refused = 0;
  const server = await serving(tasks, (req) => {
    if (req.path !== "/v1/work/complete") return { json: { items: [] } };
    // A server whose body limit is lower than the worker's cap: only halving gets through.
    if (Buffer.byteLength(req.body) > 200_000) {
      refused++;
      return apiError(413, "payload_too_large", "the body is over 200000 bytes");
    }
    const ls = leases(req.body);
    completed.push(...ls);
    return { json: { items: ls.map(() => ({})) } };
  });
  servers.push(server);
  const stop = new AbortController();
  const big = "x".repeat(40_000); // under the size sent alone; 16 of them are over 512 KB
  const w = worker(server, stop, capture(), { concurrency: 16 }).task("t", () => ({ big }));
  const running = w.run();
  await until("all 16 completions", () => completed.length === 16);
  stop.abort();
  await running;
  assert.deepEqual([...completed].sort(), tasks.map((t) => t.lease as string).sort());
  assert.ok(refused > 0, "the fake refused at least one batch, which was halved");
  for (const r of server.requests) {
    if (r.path === "/v1/work/complete") assert.ok(Buffer.byteLength(r.body) <= 512 * 1024 + 64, "every batch is under the cap");
  }
});

test("a claim the server refuses as wrong (422) stops run() with the reason, as the Python SDK", async () => {
  const server = await fakeServer(() => apiError(422, "invalid_value", "queues[0] is not a queue name"));
  servers.push(server);
  const w = worker(server, new AbortController(), capture()).task("t", () => null);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still claiming after 5 s"), 5000)));
  const outcome = await Promise.race([w.run().then(() => "resolved", (e: Error) => e.message), timeout]);
  clearTimeout(timer);
  assert.match(outcome, /refused to hand out work \(422 invalid_value: queues\[0\] is not a queue name\)/);
  assert.equal(server.requests.length, 1, "it asked once");
});

test("claimed items the worker cannot read are skipped or dead, and the loop goes on", async () => {
  const odd = [
    null,
    "not a task",
    { lease: "lease_no_envelope", attempt: 1, max_attempts: 5, envelope: null, signature: null },
    // Expired so long ago that no Date holds the time.
    claimed({ expires_at_ms: -9e18 }),
    claimed({ args_b64: "e30" + "!" }),
  ];
  const good = claimed();
  const failed: Array<{ lease: string; reason?: string; detail?: string }> = [];
  const completed: string[] = [];
  const server = await serving([...odd, good], (req) => {
    const items = (JSON.parse(req.body) as { items: Array<{ lease: string; reason?: string; detail?: string }> }).items;
    if (req.path === "/v1/work/fail") failed.push(...items);
    if (req.path === "/v1/work/complete") completed.push(...items.map((i) => i.lease));
    return { json: { items: items.map(() => ({})) } };
  });
  servers.push(server);
  const stop = new AbortController();
  const log = capture();
  const running = worker(server, stop, log).task("t", () => "ok").run();
  await until("the good task to complete and three to be dead", () => completed.length === 1 && failed.length === 3);
  await wait(150); // the loop claims again after the odd items
  stop.abort();
  await running;
  assert.deepEqual(completed, [good.lease]);
  const byLease = new Map(failed.map((f) => [f.lease, f]));
  assert.equal(byLease.get("lease_no_envelope")?.reason, "signature-invalid");
  const expired = byLease.get((odd[3] as WireTask).lease as string);
  assert.equal(expired?.reason, "expired");
  assert.match(expired?.detail ?? "", /-9000000000000000000 ms after 1970/);
  const badB64 = byLease.get((odd[4] as WireTask).lease as string);
  assert.equal(badB64?.reason, "signature-invalid");
  assert.match(badB64?.detail ?? "", /^malformed: args_b64 is not base64/);
  assert.ok(server.requests.filter((r) => r.path === "/v1/work/claim").length >= 2, "the loop claimed again");
  assert.match(log.lines.join("\n"), /without a lease; skipped/);
});

test("malformed report and heartbeat answers are logged, never crash the process", async () => {
  const task = claimed();
  let beats = 0;
  const server = await serving([task], (req) => {
    if (req.path === "/v1/work/heartbeat") {
      beats++;
      return { json: { items: "not a list" } };
    }
    return { text: "null" };
  });
  servers.push(server);
  const stop = new AbortController();
  const log = capture();
  const running = worker(server, stop, log, { leaseMs: 1000 }).task("t", async () => {
    await until("a heartbeat", () => beats > 0);
    return "done";
  });
  const run = running.run();
  await until("the completion's answer to be logged", () => log.lines.some((l) => /complete report of 1 task\(s\) without an items list/.test(l)));
  stop.abort();
  await run;
  assert.match(log.lines.join("\n"), /heartbeat of 1 task\(s\) without an items list/);
});

test("SIGNET_SIGNING_REQUIRED=false: the worker runs unsigned tasks (and refuses an empty ring only when required)", async () => {
  const keys = loadKeys({
    env: { SIGNET_SIGNING_KEYS: `k1:${Buffer.alloc(32, 3).toString("base64")}`, SIGNET_SIGNING_REQUIRED: "false" },
  });
  const required = loadKeys({ env: { SIGNET_SIGNING_KEYS: `k1:${Buffer.alloc(32, 3).toString("base64")}` } });
  assert.throws(
    () => new Worker({ url: "http://127.0.0.1:1", apiKey: "sk_x", queues: ["q"], keys: { ...required, ring: new KeyRing([]) } }),
    /no keys to verify/,
  );
  const task = claimed();
  const completed: string[] = [];
  const server = await serving([task], (req) => {
    const ls = leases(req.body);
    if (req.path === "/v1/work/complete") completed.push(...ls);
    return { json: { items: ls.map(() => ({})) } };
  });
  servers.push(server);
  const stop = new AbortController();
  const log = capture();
  const running = worker(server, stop, log, { keys: { ...keys, ring: new KeyRing([]) } }).task("t", () => "ran").run();
  await until("the unsigned task to complete", () => completed.length === 1);
  stop.abort();
  await running;
  assert.match(log.lines.join("\n"), /UNSIGNED tasks run without any check/);
});

test("completions the server cannot take now (503, per-item unavailable) are sent again, not lost", async () => {
  const tasks = Array.from({ length: 3 }, () => claimed());
  const completed: string[] = [];
  let posts = 0;
  const server = await serving(tasks, (req) => {
    if (req.path !== "/v1/work/complete") return { json: { items: [] } };
    posts++;
    if (posts === 1) return apiError(503, "store_unavailable", "the store is busy");
    const ls = leases(req.body);
    if (posts === 2) {
      // Takes the first, cannot take the others now.
      completed.push(ls[0] as string);
      return { json: { items: ls.map((_, i) => (i === 0 ? {} : { error: { code: "unavailable", message: "busy" } })) } };
    }
    completed.push(...ls);
    return { json: { items: ls.map(() => ({})) } };
  });
  servers.push(server);
  const stop = new AbortController();
  const log = capture();
  const w = worker(server, stop, log, { concurrency: 3 }).task("t", () => 1);
  const running = w.run();
  try {
    await until("all 3 completions", () => completed.length === 3, 15_000);
  } finally {
    stop.abort();
    await running;
  }
  assert.deepEqual([...completed].sort(), tasks.map((t) => t.lease as string).sort());
  assert.ok(posts >= 3, `sent again after the 503 and after the per-item errors (${posts} posts)`);
  assert.ok(log.lines.some((l) => /sending again/.test(l)), "the log says it sends them again");
});
