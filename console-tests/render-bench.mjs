// How long the console's pages take to render with 100 000 tasks in the
// store (and 5 000 dead letters). Not a test: it prints figures for
// docs/benchmarks.md. Run with `node console-tests/render-bench.mjs` after
// `cargo build -p signet` (or `--release` with SIGNET_BIN pointing at it).
import { api, enqueue, fail, startServer } from "./signet.mjs";

const TASKS = Number(process.env.TASKS ?? 100_000);
const DEAD = Number(process.env.DEAD ?? 5_000);
const RUNS = Number(process.env.RUNS ?? 20);

const server = await startServer();
try {
  let started = performance.now();
  await enqueue(server, "bulk", "work", TASKS - DEAD);
  await enqueue(server, "failing", "work", DEAD, { max_attempts: 1 });
  await fail(server, "failing", DEAD);
  console.log(`seeded ${TASKS} tasks (${DEAD} dead) in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  // Sign in as a browser does: the form, its cookie and token, the post.
  const form = await fetch(`${server.base}/ui/sign-in`);
  const formCookie = form.headers.get("set-cookie").split(";")[0];
  const token = (await form.text()).match(/name="token" value="([^"]+)"/)[1];
  const signIn = await fetch(`${server.base}/ui/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: formCookie },
    body: new URLSearchParams({ key: server.admin, token }),
    redirect: "manual",
  });
  const cookie = signIn.headers
    .getSetCookie()
    .find((c) => c.startsWith("signet_session="))
    .split(";")[0];
  const some = (await api(server, "GET", "/v1/tasks?queue=bulk&limit=1")).items[0].id;
  const pages = [
    "/ui",
    "/ui/tasks",
    "/ui/tasks?queue=bulk&state=available",
    "/ui/tasks?state=dead",
    "/ui/tasks?task=work",
    "/ui/tasks?task=no-such-task",
    `/ui/tasks/${some}`,
    "/ui/dead-letters",
    "/ui/dead-letters?reason=max-attempts",
    "/ui/dead-letters/confirm?action=replay&reason=max-attempts",
    "/ui/messages",
    "/ui/schedules",
  ];
  console.log(`| page | median ms | p95 ms | bytes |`);
  console.log(`| --- | ---: | ---: | ---: |`);
  for (const path of pages) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      started = performance.now();
      const answer = await fetch(server.base + path, { headers: { cookie }, redirect: "manual" });
      const body = await answer.text();
      times.push(performance.now() - started);
      if (answer.status !== 200) throw new Error(`${path}: ${answer.status} ${body.slice(0, 300)}`);
      bytes = body.length;
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    const p95 = times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)];
    console.log(`| \`${path.replace(/task_[0-9a-z]+/, "task_…")}\` | ${median.toFixed(1)} | ${p95.toFixed(1)} | ${bytes} |`);
  }
} finally {
  await server.stop();
}
