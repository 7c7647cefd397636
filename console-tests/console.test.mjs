// Browser tests of the console: Debian's Chromium (playwright-core) against
// a real `signet serve`. Run with `bash console-tests/run.sh`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { api, enqueue, fail, launch, signIn, startServer } from "./signet.mjs";

let server;
let browser;
let emails; // dead letters: max-attempts in queue "emails"
let sms; // dead letters: payload-invalid in queue "sms"

before(async () => {
  server = await startServer();
  browser = await launch();
  emails = await enqueue(server, "emails", "send-email", 3, { max_attempts: 1 });
  await fail(server, "emails", 3);
  sms = await enqueue(server, "sms", "send-sms", 2);
  await fail(server, "sms", 2, { reason: "payload-invalid" });
  await enqueue(server, "emails", "send-email", 5, { delay_ms: 3_600_000 });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A fresh browser context (its own cookies), with CSP reports collected. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) page.violations.push(m.text());
  });
  return page;
}

async function stateOf(id) {
  return (await api(server, "GET", `/v1/tasks/${id}`)).state;
}

describe("the console", () => {
  test("an admin finds dead letters by reason and replays them by filter after the count", async () => {
    const page = await newPage();
    await signIn(page, server, server.admin);
    await assert.doesNotReject(page.getByRole("heading", { name: "Overview" }).waitFor());
    // The last hour's attempts are charted per queue, with a text alternative.
    const chart = page.getByRole("img", { name: "Attempts on emails in the last hour" });
    await chart.waitFor();
    assert.ok((await chart.locator("rect.bar-bad").count()) >= 1, "a failed bar");
    assert.match(await page.locator("figure.chart").first().textContent(), /emails: 0 succeeded, 3 failed/);
    assert.equal(await page.getByRole("img", { name: "Attempts on sms in the last hour" }).count(), 1);
    await page.getByRole("link", { name: "Dead letters" }).first().click();
    await page.getByLabel("Reason").selectOption("max-attempts");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/reason=max-attempts/);
    const rows = page.locator("tbody tr");
    assert.equal(await rows.count(), 3);
    for (const id of emails) assert.equal(await page.getByText(id).count(), 1);
    for (const id of sms) assert.equal(await page.getByText(id).count(), 0);

    await page.getByRole("link", { name: "Replay all matching…" }).click();
    const count = page.locator("#count strong");
    assert.equal(await count.textContent(), "3");
    for (const id of emails) assert.equal(await stateOf(id), "dead", "the count changed nothing");

    await page.getByRole("button", { name: "Replay 3 dead letters" }).click();
    await page.getByRole("heading", { name: "Replayed dead letters" }).waitFor();
    assert.equal(await page.locator("[data-count]").first().textContent(), "3");
    for (const id of emails) assert.equal(await stateOf(id), "available");
    for (const id of sms) assert.equal(await stateOf(id), "dead");

    // Times are shown in the viewer's zone by the script, UTC on hover.
    await page.goto(`${server.base}/ui/tasks/${emails[0]}`);
    const time = page.locator("time[data-localised=true]").first();
    assert.match(await time.getAttribute("title"), /Z \(UTC\)$/);
    assert.match(await page.locator("ol.history").textContent(), /replayed/);
    assert.deepEqual(page.violations, []);
  });

  test("a read key sees the pages but cannot act, in the page or on the server", async () => {
    const page = await newPage();
    await signIn(page, server, server.read);
    await page.goto(`${server.base}/ui/dead-letters?reason=payload-invalid`);
    assert.equal(await page.locator("tbody tr").count(), 2);
    assert.equal(await page.getByRole("link", { name: "Replay all matching…" }).count(), 0);
    await page.goto(`${server.base}/ui/tasks/${sms[0]}`);
    assert.equal(await page.getByRole("button", { name: "Replay" }).count(), 0);
    await page.goto(`${server.base}/ui/dead-letters/confirm?action=replay&reason=payload-invalid`);
    assert.match(await page.locator("main").textContent(), /can look but not act/);
    assert.equal(await page.getByRole("link", { name: "Targets" }).count(), 0);

    // The server refuses even with the session's own CSRF token.
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const answer = await page.request.post(`${server.base}/ui/dead-letters/replay`, {
      form: { csrf, reason: "payload-invalid" },
      maxRedirects: 0,
    });
    assert.equal(answer.status(), 403);
    assert.match(await answer.text(), /needs an admin key/);
    for (const id of sms) assert.equal(await stateOf(id), "dead");
    // Targets are admin-only, reads included, as on the API.
    const targets = await page.goto(`${server.base}/ui/targets`);
    assert.equal(targets.status(), 403);
    assert.deepEqual(page.violations, []);
  });

  test("a form without its CSRF token is refused", async () => {
    const page = await newPage();
    await signIn(page, server, server.admin);
    for (const form of [{ reason: "payload-invalid" }, { reason: "payload-invalid", csrf: "forged" }]) {
      const answer = await page.request.post(`${server.base}/ui/dead-letters/replay`, {
        form,
        maxRedirects: 0,
      });
      assert.equal(answer.status(), 403);
      assert.match(await answer.text(), /security token/);
    }
    for (const id of sms) assert.equal(await stateOf(id), "dead");
  });

  test("an admin creates a target, sees its secret once, and rotates it", async () => {
    const page = await newPage();
    await signIn(page, server, server.admin);
    await page.getByRole("link", { name: "Targets" }).click();
    await page.getByLabel("Name").fill("billing");
    await page.getByLabel("URL prefix").fill("https://billing.example.com/");
    await page.getByRole("button", { name: "Create target" }).click();
    const secret = (await page.locator("[data-secret]").textContent()).trim();
    assert.match(secret, /^whsec_/);
    await page.getByRole("link", { name: "Back to the targets" }).click();
    assert.equal(await page.getByText(secret).count(), 0, "shown once");
    await page.getByLabel("Old secret keeps signing for (seconds)").fill("3600");
    await page.getByRole("button", { name: "Rotate secret of billing" }).click();
    const rotated = (await page.locator("[data-secret]").textContent()).trim();
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, secret);
    assert.match(await page.locator("main").textContent(), /keeps signing beside the new one until/);
    const targets = await api(server, "GET", "/v1/targets");
    assert.equal(targets.items[0].secrets.length, 2, "old and new sign during the overlap");
    assert.deepEqual(page.violations, []);
  });

  test("an admin pauses a schedule and resumes it", async () => {
    const schedule = await api(server, "POST", "/v1/schedules", {
      name: "nightly",
      cron: "0 3 * * *",
      task: { queue: "reports", task: "report.nightly" },
    });
    const page = await newPage();
    await signIn(page, server, server.admin);
    await page.getByRole("link", { name: "Schedules" }).click();
    assert.equal(await page.locator("ol li time").count(), 5, "the next five due times");
    await page.getByRole("button", { name: "Pause nightly" }).click();
    await page.getByText("Paused nightly").waitFor();
    assert.equal((await api(server, "GET", `/v1/schedules/${schedule.id}`)).paused, true);
    await page.getByRole("button", { name: "Resume nightly" }).click();
    await page.getByText("Resumed nightly").waitFor();
    assert.equal((await api(server, "GET", `/v1/schedules/${schedule.id}`)).paused, false);
    assert.deepEqual(page.violations, []);
  });

  test("the overview redraws itself as work arrives", async () => {
    const page = await newPage();
    await signIn(page, server, server.admin);
    const queue = page.getByRole("link", { name: "live-queue", exact: true });
    assert.equal(await queue.count(), 0);
    await enqueue(server, "live-queue", "tick", 2);
    // Redrawn every 10 s: the new queue shows without a reload.
    await queue.waitFor({ timeout: 25_000 });
    assert.equal(await page.locator("main").getAttribute("data-refreshed") !== null, true);
    assert.deepEqual(page.violations, []);
  });

  test("a sign-in form posted from elsewhere is refused", async () => {
    const page = await newPage();
    const answer = await page.request.post(`${server.base}/ui/sign-in`, {
      form: { key: server.admin },
      maxRedirects: 0,
    });
    assert.equal(answer.status(), 403);
    assert.equal((await page.context().cookies()).filter((c) => c.name === "signet_session").length, 0);
  });

  test("signed out, pages send you to sign in; a wrong key is refused and not echoed", async () => {
    const page = await newPage();
    await page.goto(`${server.base}/ui/dead-letters`);
    assert.equal(new URL(page.url()).pathname, "/ui/sign-in");
    await page.getByLabel("API key").fill("sk_not-a-real-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    assert.match(await page.getByRole("alert").textContent(), /Sign-in refused/);
    assert.equal(await page.getByText("sk_not-a-real-key").count(), 0);
    assert.equal(await page.getByLabel("API key").inputValue(), "");

    await signIn(page, server, server.admin);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/why=signed-out/);
    await page.goto(`${server.base}/ui`);
    assert.equal(new URL(page.url()).pathname, "/ui/sign-in");
  });
});
