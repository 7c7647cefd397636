/** The HTTP client against a scripted local server: errors, retries, redaction. */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { inspect } from "node:util";

import { ApiError, SignetClient, retryAfterMs } from "../src/index.js";

const KEY = "sk_secretsecretsecret";

async function scripted(
  answers: Array<(req: IncomingMessage, res: ServerResponse) => void>,
): Promise<{ url: string; seen: IncomingMessage[]; close: () => Promise<void> }> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    req.resume();
    req.on("end", () => (answers[Math.min(seen.length - 1, answers.length - 1)] as (a: IncomingMessage, b: ServerResponse) => void)(req, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

test("an error answer is an ApiError with status, code and message; the key is sent, never shown", async () => {
  const s = await scripted([json(404, { error: { code: "not_found", message: "no task task_x" } })]);
  const client = new SignetClient({ url: s.url, apiKey: KEY });
  try {
    await assert.rejects(client.request("GET", "v1/tasks/task_x"), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 404);
      assert.equal(e.code, "not_found");
      assert.equal(e.message, "no task task_x");
      return true;
    });
    assert.equal(s.seen[0]?.headers.authorization, `Bearer ${KEY}`);
    for (const shown of [String(client), inspect(client), JSON.stringify(client)]) {
      assert.ok(!shown.includes("secret"), shown);
    }
  } finally {
    client.close();
    await s.close();
  }
});

test("429 and 503 are retried, honouring Retry-After; other errors are not", async () => {
  const s = await scripted([
    json(429, { error: { code: "rate_limited", message: "slow down" } }, { "retry-after": "0" }),
    json(503, { error: { code: "unavailable", message: "busy" } }),
    json(200, { ok: true }),
  ]);
  const client = new SignetClient({ url: s.url, apiKey: KEY, maxBackoffMs: 50 });
  try {
    assert.deepEqual(await client.request("POST", "v1/x", { a: 1 }), { ok: true });
    assert.equal(s.seen.length, 3);
  } finally {
    client.close();
    await s.close();
  }
  const t = await scripted([json(422, { error: { code: "invalid_value", message: "max: too big" } })]);
  const c2 = new SignetClient({ url: t.url, apiKey: KEY });
  try {
    await assert.rejects(c2.request("POST", "v1/x", {}), /max: too big/);
    assert.equal(t.seen.length, 1);
  } finally {
    c2.close();
    await t.close();
  }
});

test("retries are bounded: the last 503 is thrown", async () => {
  const s = await scripted([json(503, { error: { code: "unavailable", message: "down" } }, { "retry-after": "0" })]);
  const client = new SignetClient({ url: s.url, apiKey: KEY, maxRetries: 2 });
  try {
    await assert.rejects(client.request("GET", "v1/x"), (e: unknown) => e instanceof ApiError && e.status === 503);
    assert.equal(s.seen.length, 3);
  } finally {
    client.close();
    await s.close();
  }
});

test("a non-API error body is still an ApiError with an excerpt", async () => {
  const s = await scripted([(_q, res) => res.writeHead(502).end("bad gateway")]);
  const client = new SignetClient({ url: s.url, apiKey: KEY });
  try {
    await assert.rejects(client.request("GET", "v1/x"), (e: unknown) => e instanceof ApiError && e.code === "http_502" && /bad gateway/.test(e.message));
  } finally {
    client.close();
    await s.close();
  }
});

test("bad options are refused with what to do", () => {
  assert.throws(() => new SignetClient({ url: "nope", apiKey: KEY }), /not a URL/);
  assert.throws(() => new SignetClient({ url: "ftp://x", apiKey: KEY }), /http:\/\//);
  assert.throws(() => new SignetClient({ url: "http://x", apiKey: "secret" }), (e: unknown) => e instanceof TypeError && !e.message.includes("secret\""));
});

test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(retryAfterMs("3"), 3000);
  assert.equal(retryAfterMs(undefined), undefined);
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
});
