// Screenshots of each console page, for docs/console/*.png (linked from the
// README). Run with `node console-tests/screenshots.mjs` after
// `cargo build -p signet`.
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";

import { api, enqueue, fail, launch, signIn, startServer } from "./signet.mjs";

const out = resolve(import.meta.dirname, "../docs/console");
mkdirSync(out, { recursive: true });

const server = await startServer();
const browser = await launch();
try {
  const dead = await enqueue(server, "emails", "send-email", 4, { max_attempts: 1 });
  await fail(server, "emails", 4);
  await enqueue(server, "sms", "send-sms", 2);
  await fail(server, "sms", 2, { reason: "payload-invalid", error: "args.phone: not a phone number" });
  await enqueue(server, "emails", "send-email", 12, { delay_ms: 3_600_000 });
  await enqueue(server, "reports", "build-report", 7);
  // Some successes, for the overview's chart of the last hour.
  await enqueue(server, "thumbnails", "resize", 9);
  const { tasks } = await api(server, "POST", "/v1/work/claim", { queues: ["thumbnails"], max: 9, wait_ms: 0 });
  await api(server, "POST", "/v1/work/complete", { items: tasks.map((t) => ({ lease: t.lease })) });
  await api(server, "POST", "/v1/targets", {
    name: "billing",
    url_prefix: "https://billing.example.com/",
    rate_limit_per_s: 50,
  });
  await api(server, "POST", "/v1/schedules", {
    name: "daily-report",
    cron: "0 9 * * MON-FRI",
    timezone: "Europe/Paris",
    task: { queue: "reports", task: "report.daily", args: { format: "pdf" } },
  });
  await api(server, "POST", "/v1/schedules", {
    name: "hourly-sync",
    cron: "0 * * * *",
    timezone: "UTC",
    task: { queue: "sync", task: "sync.all" },
    paused: true,
  });
  // A paused queue, as the overview shows it.
  await api(server, "POST", "/v1/queues/reports/pause", { reason: "report templates being updated" });
  // Its receiver is unreachable: the dispatcher's attempts fail and are
  // recorded with their error.
  const message = await api(server, "POST", "/v1/messages", {
    target: "billing",
    url: "https://billing.example.com/hooks/invoice",
    body: { invoice: "in_123", status: "paid" },
  });

  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    timezoneId: "Europe/Paris",
    locale: "en-GB",
  });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });

  await page.goto(`${server.base}/ui/sign-in`);
  await shot("sign-in");
  await signIn(page, server, server.admin);
  await shot("overview");
  await page.goto(`${server.base}/ui/tasks`);
  await shot("tasks");
  await page.goto(`${server.base}/ui/tasks/${dead[0]}`);
  await shot("task");
  await page.goto(`${server.base}/ui/messages`);
  await shot("messages");
  await page.goto(`${server.base}/ui/messages/${message.id}`);
  await shot("message");
  await page.goto(`${server.base}/ui/schedules`);
  await shot("schedules");
  await page.goto(`${server.base}/ui/schedules/new`);
  await page.getByLabel("Name").fill("weekly-digest");
  await page.getByLabel("Cron expression").fill("30 8 * * MON");
  await page.getByLabel("Time zone (IANA)").fill("Europe/Paris");
  await page.locator("#s-cron-check li").nth(4).waitFor();
  await shot("schedule-new");
  await page.goto(`${server.base}/ui/tasks?task=send-email`);
  await shot("tasks-by-name");
  await page.goto(`${server.base}/ui/keys`);
  await shot("keys");
  await page.goto(`${server.base}/ui/targets`);
  await shot("targets");
  await page.getByLabel("Old secret keeps signing for (seconds)").first().fill("3600");
  await page.getByRole("button", { name: "Rotate secret of billing" }).click();
  await shot("target-rotated");
  await page.goto(`${server.base}/ui/dead-letters?reason=max-attempts`);
  await shot("dead-letters");
  await page.goto(`${server.base}/ui/dead-letters/confirm?action=replay&reason=max-attempts`);
  await shot("dead-letters-confirm");
  await page.getByRole("button", { name: /^Replay \d+ dead letters$/ }).click();
  await page.getByRole("heading", { name: "Replayed dead letters" }).waitFor();
  await shot("dead-letters-replayed");
  // The same console on a phone.
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    timezoneId: "Europe/Paris",
    locale: "en-GB",
  });
  const small = await phone.newPage();
  await signIn(small, server, server.admin);
  await small.screenshot({ path: `${out}/overview-phone.png`, fullPage: true });
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
