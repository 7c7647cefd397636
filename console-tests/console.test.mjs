// Browser tests of the console: Debian's Chromium (playwright-core) against
// a real `signet serve`. Run with `bash console-tests/run.sh`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  api, enqueue, fail, launch, signIn, startReceiver, startServer, unnamedControls, until,
} from "./signet.mjs";

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
async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
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

  test("an admin creates a schedule, the cron expression checked as it is typed", async () => {
    // A viewer in New York: due times show in their zone, UTC on hover.
    const page = await newPage({ timezoneId: "America/New_York", locale: "en-GB" });
    await signIn(page, server, server.admin);
    await page.getByRole("link", { name: "Schedules" }).click();
    await page.getByRole("link", { name: "New schedule" }).click();
    await page.getByLabel("Name").fill("early-digest");
    const cron = page.getByLabel("Cron expression");
    const check = page.locator("#s-cron-check");
    await cron.fill("");
    await cron.pressSequentially("0 3 * *", { delay: 20 });
    await check.getByText(/cron/).waitFor();
    assert.equal(await cron.getAttribute("aria-invalid"), "true");
    assert.equal(await check.locator("li").count(), 0);
    await cron.pressSequentially(" *", { delay: 20 });
    await check.locator("li time[data-localised=true]").nth(4).waitFor();
    assert.equal(await cron.getAttribute("aria-invalid"), "false");
    const first = check.locator("li time").first();
    assert.match(await first.getAttribute("title"), /T03:00:00\.000Z \(UTC\)$/);
    // 03:00 UTC is 22:00 the evening before in New York (EST, UTC-5).
    assert.match(await first.textContent(), /22:00/);
    // A zone the server does not know is refused as the API refuses it.
    const zone = page.getByLabel("Time zone (IANA)");
    await zone.fill("Mars/Olympus");
    await check.getByText(/Mars\/Olympus/).waitFor();
    await zone.fill("UTC");
    await check.locator("li").nth(4).waitFor();
    await page.getByLabel(/What it fires/).fill('{"queue": "digests", "task": "digest.send"}');
    await page.getByRole("button", { name: "Create schedule" }).click();
    await page.getByText("Created early-digest").waitFor();
    const { items } = await api(server, "GET", "/v1/schedules");
    const made = items.find((s) => s.name === "early-digest");
    assert.equal(made.cron, "0 3 * * *");
    assert.equal(made.upcoming.length, 5);
    assert.deepEqual(page.violations, []);
  });

  test("the keyboard alone filters dead letters and replays them", async () => {
    const kbd = await enqueue(server, "kbd", "type-it", 2, { max_attempts: 1 });
    await fail(server, "kbd", 2);
    const page = await newPage();
    await signIn(page, server, server.admin);
    await page.goto(`${server.base}/ui/dead-letters`);
    /** Presses Tab until `match` holds for the focused element. */
    async function tabTo(match, what) {
      for (let i = 0; i < 60; i++) {
        await page.keyboard.press("Tab");
        const focused = await page.evaluate(() => {
          const el = document.activeElement;
          return { id: el?.id ?? "", text: (el?.textContent ?? "").trim(), tag: el?.tagName ?? "" };
        });
        if (match(focused)) return;
      }
      assert.fail(`Tab never reached ${what}`);
    }
    await tabTo((f) => f.id === "f-queue", "the queue filter");
    await page.keyboard.type("kbd");
    await page.keyboard.press("Enter");
    await page.waitForURL(/queue=kbd/);
    assert.equal(await page.locator("tbody tr").count(), 2);
    await tabTo((f) => f.text === "Replay all matching…", "Replay all matching");
    await page.keyboard.press("Enter");
    await page.waitForURL(/confirm/);
    await tabTo((f) => f.tag === "BUTTON" && f.text === "Replay 2 dead letters", "the replay button");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Replayed dead letters" }).waitFor();
    for (const id of kbd) assert.equal(await stateOf(id), "available");
  });

  /** Every page, as an admin sees it (forms and buttons included). */
  async function everyPage(page) {
    const task = (await api(server, "GET", "/v1/tasks?limit=1")).items[0].id;
    const schedule = (await api(server, "GET", "/v1/schedules")).items[0].id;
    return [
      "/ui",
      "/ui/tasks",
      `/ui/tasks/${task}`,
      "/ui/dead-letters",
      "/ui/dead-letters/confirm?action=purge&queue=sms",
      "/ui/messages",
      "/ui/schedules",
      "/ui/schedules/new",
      `/ui/schedules/${schedule}/edit`,
      "/ui/keys",
      "/ui/targets",
      "/ui/sign-in",
    ];
  }

  test("every control has an accessible name", async () => {
    const page = await newPage();
    await signIn(page, server, server.admin);
    for (const path of await everyPage(page)) {
      await page.goto(server.base + path);
      const unnamed = await unnamedControls(page);
      assert.deepEqual(unnamed, [], `${path}: controls without a name`);
    }
  });

  test("pages fit a phone (390 px) and a laptop (1280 px) without sideways scrolling", async () => {
    for (const width of [390, 1280]) {
      const page = await newPage({ viewport: { width, height: 844 } });
      await signIn(page, server, server.admin);
      for (const path of await everyPage(page)) {
        await page.goto(server.base + path);
        const { scroll, inner } = await page.evaluate(() => ({
          scroll: document.documentElement.scrollWidth,
          inner: window.innerWidth,
        }));
        assert.ok(scroll <= inner, `${path} at ${width} px: ${scroll} px wide`);
      }
      await page.context().close();
    }
  });

  test("empty states say what to do next", async () => {
    const page = await newPage();
    await signIn(page, server, server.admin);
    await page.goto(`${server.base}/ui/messages`);
    assert.match(await page.locator("p.empty").textContent(), /Publish one with/);
    await page.goto(`${server.base}/ui/tasks?queue=nothing-here`);
    assert.match(await page.locator("p.empty").textContent(), /Clear them/);
    await page.goto(`${server.base}/ui/dead-letters?queue=nothing-here`);
    assert.ok((await page.locator("p.empty").count()) === 1);
  });

  test("a browser signed in on one node is signed in on the other", async () => {
    // Two `signet serve` processes on one database and key file: the
    // master key they share seals the session, so no sticky sessions.
    const other = await startServer({ of: server });
    try {
      const page = await newPage();
      await signIn(page, server, server.admin);
      // Cookies are per host, not per port: the browser sends the session
      // cookie to the other node as it would behind a load balancer.
      await page.goto(`${other.base}/ui/dead-letters?reason=payload-invalid`);
      assert.equal(new URL(page.url()).pathname, "/ui/dead-letters", "no sign-in asked");
      assert.equal(await page.locator("tbody tr").count(), 2);
      // A form shown by one node is accepted by the other: its CSRF token
      // travels in the sealed cookie.
      await page.goto(`${server.base}/ui/schedules/new`);
      const csrf = await page.locator("input[name=csrf]").first().inputValue();
      const answer = await page.request.post(`${other.base}/ui/schedules/new`, {
        form: { csrf, name: "made-on-b", cron: "0 5 * * *", timezone: "UTC", catch_up: "skip", kind: "task",
          payload: '{"queue": "b", "task": "b.run"}' },
        maxRedirects: 0,
      });
      assert.equal(answer.status(), 303, await answer.text());
      const { items } = await api(server, "GET", "/v1/schedules");
      assert.ok(items.some((s) => s.name === "made-on-b"));
      // Signing out on the other node signs the browser out of both.
      await page.goto(`${other.base}/ui`);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/why=signed-out/);
      await page.goto(`${server.base}/ui`);
      assert.equal(new URL(page.url()).pathname, "/ui/sign-in");
    } finally {
      await other.stop();
    }
  });

  test("an admin resends a delivered message and pauses a queue", async () => {
    const receiver = await startReceiver();
    try {
      const message = await api(server, "POST", "/v1/messages", { url: receiver.url, body: { n: 1 } });
      const stateOfMessage = async () => (await api(server, "GET", `/v1/messages/${message.id}`)).state;
      await until(async () => (await stateOfMessage()) === "succeeded", 20_000, "the first delivery");
      assert.equal(receiver.hits, 1);
      const page = await newPage();
      page.on("dialog", (dialog) => dialog.accept());
      await signIn(page, server, server.admin);
      await page.goto(`${server.base}/ui/messages/${message.id}`);
      await page.getByRole("button", { name: "Resend" }).click();
      await page.getByText("Resent: the dispatcher").waitFor();
      await until(() => receiver.hits === 2, 20_000, "the resent delivery");
      await until(async () => (await stateOfMessage()) === "succeeded", 20_000, "succeeded again");
      // Two attempts on the message's page; the resend in its history.
      await page.goto(`${server.base}/ui/messages/${message.id}`);
      assert.equal(await page.locator("table[aria-describedby=attempts] tbody tr").count(), 2);
      await page.getByRole("link", { name: "as a task" }).click();
      assert.match(await page.locator("ol.history").textContent(), /resent/);
      // A read key sees no button, and the server refuses it.
      const reader = await newPage();
      await signIn(reader, server, server.read);
      await reader.goto(`${server.base}/ui/messages/${message.id}`);
      assert.equal(await reader.getByRole("button", { name: "Resend" }).count(), 0);
      const csrf = await reader.locator("input[name=csrf]").first().inputValue();
      const refused = await reader.request.post(`${server.base}/ui/messages/${message.id}/resend`, {
        form: { csrf },
        maxRedirects: 0,
      });
      assert.equal(refused.status(), 403);
      assert.equal(receiver.hits, 2);

      // Pause a queue on the overview: shown paused, then resumed.
      await enqueue(server, "steady", "tick", 1);
      await page.goto(`${server.base}/ui`);
      await page.getByRole("button", { name: "Pause steady" }).click();
      await page.getByText("Paused steady").waitFor();
      const queues = await api(server, "GET", "/v1/queues");
      assert.equal(queues.queues.find((q) => q.queue === "steady").paused, true);
      await page.getByRole("button", { name: "Resume steady" }).click();
      await page.getByText("Resumed steady").waitFor();
      assert.deepEqual(page.violations, []);
    } finally {
      await receiver.stop();
    }
  });
});
