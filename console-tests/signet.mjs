// Helpers of the console's browser tests: a real `signet serve` on a free
// port over a fresh SQLite file, keys, seeded tasks and dead letters, and
// Debian's Chromium driven by playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const SIGNET_BIN =
  process.env.SIGNET_BIN ?? resolve(import.meta.dirname, "../target/debug/signet");
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/**
 * Starts `signet serve`; resolves once the banner names the port. With
 * `of`, a second node of that server: the same database and key file
 * (so the same master key), its own process and port.
 */
export async function startServer({ of } = {}) {
  const dir = of?.dir ?? mkdtempSync(join(tmpdir(), "signet-console-"));
  const databaseUrl = `sqlite://${join(dir, "signet.db")}`;
  // Deliveries may reach 127.0.0.1: the tests' receivers listen there.
  const child = spawn(
    SIGNET_BIN,
    ["serve", "--listen", "127.0.0.1:0", "--database-url", databaseUrl],
    {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SIGNET_ALLOWED_TARGET_CIDRS: "127.0.0.1/32" },
    },
  );
  let banner = "";
  const ready = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no banner within 30 s:\n${banner}`)), 30_000);
    const read = (chunk) => {
      banner += chunk.toString();
      const url = banner.match(/console: (http:\/\/127\.0\.0\.1:\d+)\/ui/);
      const key = banner.match(/api key: (sk_\S+)/);
      // A second node prints no key: the first start made it.
      if (url && (key || of)) {
        clearTimeout(timer);
        ok({ base: url[1], admin: key?.[1] });
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => fail(new Error(`signet serve exited ${code}:\n${banner}`)));
  });
  const { base, admin } = await ready;
  const read = execFileSync(
    SIGNET_BIN,
    ["api-keys", "create", "--name", "reader", "--scope", "read", "--database-url", databaseUrl],
    { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  ).trim();
  return {
    base,
    admin: of?.admin ?? admin,
    read,
    dir,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on("exit", ok)));
      if (!of) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON call of the API with `key`. */
export async function api(server, method, path, body, key = server.admin) {
  const answer = await fetch(server.base + path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${text}`);
  return JSON.parse(text);
}

/** Enqueues `count` tasks (in batches of up to 1 000); returns their ids. */
export async function enqueue(server, queue, task, count, extra = {}) {
  const ids = [];
  for (let done = 0; done < count; done += 1000) {
    const n = Math.min(1000, count - done);
    const tasks = Array.from({ length: n }, (_, i) => ({
      queue,
      task,
      args: { n: done + i, to: `user${done + i}@example.com` },
      ...extra,
    }));
    const answer = await api(server, "POST", "/v1/tasks/batch", { tasks });
    ids.push(...answer.tasks.map((t) => t.id));
  }
  return ids;
}

/**
 * Claims up to `count` tasks of `queue` and fails each: dead at once with
 * `reason`, or (no reason) retried until `max_attempts` runs out.
 */
export async function fail(server, queue, count, { reason, error = "SMTP 550: mailbox unavailable" } = {}) {
  let left = count;
  while (left > 0) {
    const { tasks } = await api(server, "POST", "/v1/work/claim", {
      queues: [queue],
      max: Math.min(left, 100),
      wait_ms: 0,
    });
    if (tasks.length === 0) break;
    const items = tasks.map((t) => ({
      lease: t.lease,
      error,
      ...(reason ? { dead: true, reason, detail: `worker said ${reason}` } : {}),
    }));
    await api(server, "POST", "/v1/work/fail", { items });
    left -= tasks.length;
  }
}

/** Debian's Chromium, headless. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
}

/** Signs `page` in with `key` through the form. */
export async function signIn(page, server, key) {
  await page.goto(`${server.base}/ui/sign-in`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${server.base}/ui`);
}

/**
 * The controls of `page` (inputs but hidden ones, selects, text areas,
 * buttons) that have no accessible name: no label with text, no
 * `aria-label` or `aria-labelledby` naming text, no title, and (buttons)
 * no text.
 */
export function unnamedControls(page) {
  return page.evaluate(() => {
    const named = (el) => {
      if (el.getAttribute("aria-label")?.trim()) return true;
      const by = el.getAttribute("aria-labelledby");
      if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return true;
      if (el.tagName === "BUTTON" && el.textContent.trim() !== "") return true;
      if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
      return (el.title ?? "").trim() !== "";
    };
    return [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
      .filter((el) => !named(el))
      .map((el) => el.outerHTML.slice(0, 120));
  });
}

/** A receiver on 127.0.0.1 that answers every request 200; counts them. */
export async function startReceiver() {
  const { createServer } = await import("node:http");
  const receiver = { hits: 0 };
  const http = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      receiver.hits += 1;
      response.writeHead(200, { "content-type": "text/plain" }).end("thanks");
    });
  });
  await new Promise((ok) => http.listen(0, "127.0.0.1", ok));
  receiver.url = `http://127.0.0.1:${http.address().port}/hooks`;
  receiver.stop = () => new Promise((ok) => http.close(ok));
  return receiver;
}

/** Polls `check` every 100 ms until it is true, for up to `ms`. */
export async function until(check, ms = 15_000, what = "the condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
