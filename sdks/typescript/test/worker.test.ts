/**
 * The worker against a real `signet serve`: run and result, a failure
 * retried, a task changed in the database dead-lettered
 * `signature-invalid` without running, Ed25519 with public keys only, a
 * graceful SIGTERM in a child process, and a lost lease.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

import {
  ApiError,
  Ed25519PrivateKey,
  KeyRing,
  Producer,
  SignetClient,
  TaskError,
  Worker,
  type Logger,
} from "../src/index.js";
import { eventually, serverSkip, sqlite, startServer, type TestServer } from "./server.js";

const skip = serverSkip();
const HERE = dirname(fileURLToPath(import.meta.url));

interface Shown {
  state: string;
  attempt: number;
  result: unknown;
  dead_reason: string | null;
  dead_detail: string | null;
  last_error: string | null;
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

async function until(client: SignetClient, id: string, states: string[]): Promise<Shown> {
  return eventually(async () => {
    const t = await client.request<Shown>("GET", `v1/tasks/${id}`);
    return states.includes(t.state) ? t : undefined;
  }, `task ${id} to be ${states.join("|")}`);
}

/** Runs a worker until `done` resolves, then stops it and waits for run(). */
async function runWhile(worker: Worker, stop: AbortController, done: Promise<unknown>): Promise<void> {
  const running = worker.run();
  try {
    await done;
  } finally {
    stop.abort();
    await running;
  }
}

test("a worker refuses bad options with what to do", () => {
  const base = { url: "http://127.0.0.1:1", apiKey: "sk_x", queues: ["q"], keys: KeyRing.single(new Ed25519PrivateKey("e", Buffer.alloc(32, 1))).verifyOnly() };
  assert.throws(() => new Worker({ ...base, queues: [] }), /at least one queue/);
  assert.throws(() => new Worker({ ...base, leaseMs: 500 }), /leaseMs must be a whole number from 1000 to 300000/);
  assert.throws(() => new Worker({ ...base, waitMs: 60_000 }), /waitMs/);
  assert.throws(() => new Worker({ ...base, concurrency: 0 }), /concurrency/);
  assert.throws(() => new Worker({ ...base, keys: new KeyRing([]) }), /no keys to verify/);
  const w = new Worker(base);
  return assert.rejects(w.run(), /register at least one handler/);
});

test("a worker that cannot reach its server keeps trying, and stops at once when asked", async () => {
  const log = capture();
  const stop = new AbortController();
  const w = new Worker({
    url: "http://127.0.0.1:1",
    apiKey: "sk_x",
    queues: ["q"],
    keys: KeyRing.single(new Ed25519PrivateKey("e", Buffer.alloc(32, 1))).verifyOnly(),
    signal: stop.signal,
    handleSignals: false,
    logger: log,
    maxRetries: 0,
  }).task("t", () => null);
  const running = w.run();
  await new Promise((r) => setTimeout(r, 600));
  const asked = Date.now();
  stop.abort();
  await running;
  assert.ok(Date.now() - asked < 500, "both claim loops woke from their back-off");
  assert.match(log.lines.join("\n"), /claim failed: .*trying again in \d+ ms/);
});

describe("HMAC server", { skip }, () => {
  let server: TestServer;
  let client: SignetClient;
  let producer: Producer;
  before(async () => {
    server = await startServer();
    client = new SignetClient({ url: server.url, apiKey: server.adminKey });
    producer = new Producer({ url: server.url, apiKey: server.workKey, keys: server.keys });
  });
  after(async () => {
    client.close();
    producer.close();
    await server.stop();
  });

  const worker = (queues: string[], stop: AbortController, log: Logger, extra: object = {}): Worker =>
    new Worker({ url: server.url, apiKey: server.workKey, queues, keys: server.keys, signal: stop.signal, handleSignals: false, logger: log, waitMs: 1000, ...extra });

  test("an API key the server refuses ends run() with what to do", async () => {
    const w = new Worker({ url: server.url, apiKey: "sk_not_a_key_of_this_server", queues: ["q"], keys: server.keys, handleSignals: false, logger: capture() }).task("t", () => null);
    await assert.rejects(w.run(), /refused the API key \(unauthorized: .*work scope/);
  });

  test("runs a task and stores its result", async () => {
    const task = await producer.enqueue("e2e", "add", { a: 2, b: 3 }, { headers: { "X-Tenant": "acme" } });
    const stop = new AbortController();
    const seen: unknown[] = [];
    const w = worker(["e2e"], stop, capture()).task("add", (args: { a: number; b: number }, ctx) => {
      seen.push([ctx.id, ctx.attempt, ctx.headers["x-tenant"], ctx.keyId]);
      return { sum: args.a + args.b };
    });
    await runWhile(w, stop, until(client, task.id, ["succeeded"]));
    const shown = await until(client, task.id, ["succeeded"]);
    assert.deepEqual(shown.result, { sum: 5 });
    assert.deepEqual(seen, [[task.id, 1, "acme", server.keys.ring.active?.id]]);
  });

  test("a failed attempt is retried by the server and then succeeds", async () => {
    const task = await producer.enqueue("retry", "flaky", {}, { maxAttempts: 3 });
    const stop = new AbortController();
    let calls = 0;
    const w = worker(["retry"], stop, capture()).task("flaky", (_args, ctx) => {
      calls++;
      if (ctx.attempt === 1) throw new TaskError("SMTP 451: try later", { retryAfterMs: 0 });
      return "ok";
    });
    await runWhile(w, stop, until(client, task.id, ["succeeded"]));
    const shown = await until(client, task.id, ["succeeded"]);
    assert.equal(calls, 2);
    assert.equal(shown.attempt, 2);
    assert.equal(shown.result, "ok");
  });

  test("a task changed in the database is dead signature-invalid and never runs", async () => {
    const task = await producer.enqueue("tamper", "pay", { amount: 10 });
    sqlite(server.db, "UPDATE tasks SET args = CAST(? AS BLOB) WHERE id = ?", ['{"amount":1000000}', task.id]);
    const stop = new AbortController();
    const log = capture();
    let ran = false;
    const w = worker(["tamper"], stop, log).task("pay", () => {
      ran = true;
    });
    await runWhile(w, stop, until(client, task.id, ["dead"]));
    const shown = await until(client, task.id, ["dead"]);
    assert.equal(ran, false, "the handler must not run");
    assert.equal(shown.dead_reason, "signature-invalid");
    assert.match(shown.dead_detail ?? "", /^mismatch: /);
    assert.match(log.lines.join("\n"), /dead signature-invalid: mismatch/);
  });

  test("no handler: dead unknown-task; a TaskError with dead: payload-invalid", async () => {
    const unknown = await producer.enqueue("reasons", "nobody.handles.this", {});
    const stop = new AbortController();
    const w = worker(["reasons"], stop, capture()).task("known", () => 1);
    await runWhile(w, stop, until(client, unknown.id, ["dead"]));
    const shown = await until(client, unknown.id, ["dead"]);
    assert.equal(shown.dead_reason, "unknown-task");

    const dead = await producer.enqueue("reasons2", "known", { a: 1 });
    const stop2 = new AbortController();
    const w2 = worker(["reasons2"], stop2, capture()).task("known", () => {
      throw new TaskError("args.a must be a string", { dead: true });
    });
    await runWhile(w2, stop2, until(client, dead.id, ["dead"]));
    assert.equal((await until(client, dead.id, ["dead"])).dead_reason, "payload-invalid");
  });

  test("a result over the server's body limit fails only its own task, at once", async () => {
    const big = await producer.enqueue("big", "big", {}, { maxAttempts: 1 });
    const small = await producer.enqueue("big", "small", {});
    const stop = new AbortController();
    const log = capture();
    const w = worker(["big"], stop, log)
      .task("big", () => "x".repeat(2 * 1024 * 1024))
      .task("small", () => "fine");
    await runWhile(w, stop, Promise.all([until(client, big.id, ["dead"]), until(client, small.id, ["succeeded"])]));
    const shown = await until(client, big.id, ["dead"]);
    assert.equal(shown.dead_reason, "max-attempts");
    assert.match(shown.dead_detail ?? "", /refused by the server: payload_too_large/);
    assert.equal((await until(client, small.id, ["succeeded"])).result, "fine");
  });

  test("heartbeats keep a task that runs past its lease", async () => {
    // The control: a task claimed by hand with the same 1 s lease and no
    // heartbeats. The handler runs until the server's rescuer has taken the
    // control back, and one rescuer interval (4 s) more; without
    // heartbeats its own task would have been rescued too.
    const control = await producer.enqueue("beat-control", "slow", {});
    const task = await producer.enqueue("beat", "slow", {});
    const work = new SignetClient({ url: server.url, apiKey: server.workKey });
    try {
      const claimed = await work.request<{ tasks: Array<{ lease: string }> }>("POST", "v1/work/claim", {
        queues: ["beat-control"],
        lease_ms: 1000,
      });
      const stop = new AbortController();
      const w = worker(["beat"], stop, capture(), { leaseMs: 1000 }).task("slow", async (_args, ctx) => {
        await until(client, control.id, ["retryable", "available"]);
        await new Promise((r) => setTimeout(r, 4500));
        return { attempt: ctx.attempt, lost: ctx.leaseLost };
      });
      await runWhile(w, stop, until(client, task.id, ["succeeded"]));
      const shown = await until(client, task.id, ["succeeded"]);
      assert.deepEqual(shown.result, { attempt: 1, lost: false });
      assert.equal(shown.attempt, 1);
      await assert.rejects(
        work.request("POST", "v1/work/complete", { lease: claimed.tasks[0]?.lease }),
        (e: unknown) => e instanceof ApiError && e.status === 409 && e.code === "lease_lost",
      );
    } finally {
      work.close();
    }
  });

  test("a lost lease stops the task's signal and drops its result", async () => {
    const task = await producer.enqueue("lease", "long", {});
    const stop = new AbortController();
    const log = capture();
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    let aborted!: () => void;
    const abortedP = new Promise<void>((r) => (aborted = r));
    const w = worker(["lease"], stop, log, { leaseMs: 1500 }).task("long", async (_args, ctx) => {
      started();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 10_000);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t);
          aborted();
          resolve();
        });
      });
      return "too late";
    });
    const running = w.run();
    try {
      await startedP;
      // Another worker took the task: the lease this one holds is no longer the task's.
      sqlite(server.db, "UPDATE tasks SET lease_owner = 'http:someone-else' WHERE id = ?", [task.id]);
      await abortedP;
    } finally {
      stop.abort();
      await running;
    }
    assert.match(log.lines.join("\n"), /lease lost/);
    const shown = await client.request<Shown>("GET", `v1/tasks/${task.id}`);
    assert.notEqual(shown.state, "succeeded");
    assert.equal(shown.result, null);
  });

  test("SIGTERM: the child stops claiming, finishes the running task, reports it and exits 0", async () => {
    const task = await producer.enqueue("slow", "slow", { n: 21 });
    const child = spawn(process.execPath, [join(HERE, "fixtures", "slow-worker.js")], {
      env: { ...server.env, TEST_URL: server.url, TEST_KEY: server.workKey, SLOW_MS: "1500" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the child never started the task:\n${out}\n${err}`)), 20_000);
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes(`started ${task.id}`)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    child.kill("SIGTERM");
    const code = await exited;
    assert.equal(code, 0, `child output:\n${out}\n${err}`);
    assert.match(out, new RegExp(`finished ${task.id}[\\s\\S]*run resolved`));
    const shown = await client.request<Shown>("GET", `v1/tasks/${task.id}`);
    assert.equal(shown.state, "succeeded");
    assert.deepEqual(shown.result, { doubled: 42 });
  });
});

describe("Ed25519 server, worker with the public key only", { skip }, () => {
  const seed = Buffer.alloc(32, 7);
  let server: TestServer;
  let client: SignetClient;
  before(async () => {
    server = await startServer({
      SIGNET_SIGNING_PRIVATE_KEYS: `ed1:${seed.toString("base64")}`,
      SIGNET_SIGNING_ALGORITHM: "ed25519",
    });
    client = new SignetClient({ url: server.url, apiKey: server.adminKey });
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  test("verifies with public keys, and still catches a changed task", async () => {
    const privateRing = KeyRing.single(new Ed25519PrivateKey("ed1", seed));
    const publicRing = privateRing.verifyOnly();
    assert.equal(publicRing.active, undefined);
    const producer = new Producer({ url: server.url, apiKey: server.workKey, keys: privateRing });
    const good = await producer.enqueue("ed", "echo", { hello: "world" });
    const bad = await producer.enqueue("ed", "echo", { hello: "mallory" });
    producer.close();
    sqlite(server.db, "UPDATE tasks SET args = CAST(? AS BLOB) WHERE id = ?", ['{"hello":"eve"}', bad.id]);
    const stop = new AbortController();
    const ran: unknown[] = [];
    const w = new Worker({
      url: server.url,
      apiKey: server.workKey,
      queues: ["ed"],
      keys: publicRing,
      signal: stop.signal,
      handleSignals: false,
      logger: capture(),
      waitMs: 1000,
    }).task("echo", (args: unknown, ctx) => {
      ran.push(args);
      return { keyId: ctx.keyId };
    });
    await runWhile(w, stop, Promise.all([until(client, good.id, ["succeeded"]), until(client, bad.id, ["dead"])]));
    assert.deepEqual(ran, [{ hello: "world" }]);
    assert.deepEqual((await until(client, good.id, ["succeeded"])).result, { keyId: "ed1" });
    const dead = await until(client, bad.id, ["dead"]);
    assert.equal(dead.dead_reason, "signature-invalid");
    assert.match(dead.dead_detail ?? "", /^mismatch: /);
  });
});
