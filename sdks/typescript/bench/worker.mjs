// End-to-end throughput of the TypeScript SDK over HTTP, beside BullMQ's
// bench (../../../shared/peers/bench_bullmq.mjs has the same phases):
//   enqueue : N tasks signed locally, Producer.enqueueBatch (chunks of 1000), no worker
//   drain   : a worker process (concurrency C) drains them: first..last acknowledged completion
//   e2e     : a fresh worker in the same process waiting; enqueueBatch N more, first enqueue
//             to last acknowledged completion (producer and worker share the machine)
// Prints one RESULT line. Usage (after `npm run build`):
//   N=20000 CONCURRENCY=200 CLAIMS=2 SIGNET_BIN=… node bench/worker.mjs
// The server is SIGNET_BIN, else target/release/signet, else target/debug/signet (said in the output).
import { fork } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

import { Producer } from "../dist/src/index.js";
import { startServer } from "../dist/test/server.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
const N = Number(process.env.N || 20000);
const C = Number(process.env.CONCURRENCY || 200);
const CLAIMS = Number(process.env.CLAIMS || 2);
const BULK = 1000;
const bin =
  process.env.SIGNET_BIN ||
  [join(repo, "target/release/signet"), join(repo, "target/debug/signet")].find((p) => existsSync(p));
if (!bin) throw new Error("no signet binary: build one (cargo build --release -p signet) or set SIGNET_BIN");
console.log(`# server: ${bin}${bin.includes("/debug/") ? " (DEBUG build: slower than release)" : ""}`);

const server = await startServer({ SIGNET_RATE_LIMIT_PER_KEY: "0", SIGNET_RATE_LIMIT_PER_IP: "0" }, bin);
const producer = new Producer({ url: server.url, apiKey: server.workKey, keys: server.keys });
const child = fork(join(here, "worker-child.mjs"), [], {
  env: { ...server.env, BENCH_URL: server.url, BENCH_KEY: server.workKey, CONCURRENCY: String(C), CLAIMS: String(CLAIMS), FLUSH_MS: process.env.FLUSH_MS || "2" },
  stdio: ["ignore", "inherit", "inherit", "ipc"],
  // BENCH_PROF=dir writes a CPU profile of the worker process there (node --cpu-prof).
  execArgv: process.env.BENCH_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [],
});
const waiters = [];
child.on("exit", (code) => {
  if (code !== null && code !== 0) for (const w of waiters.splice(0)) w({ crashed: code }, 0);
});
child.on("message", (m) => {
  const now = performance.now();
  for (const w of waiters.splice(0)) w(m, now);
});
const next = (pred) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timeout waiting for the worker")), 600_000);
    const h = (m, now) => {
      if (m.crashed !== undefined) return reject(new Error(`the worker process exited with ${m.crashed}`));
      return pred(m) ? (clearTimeout(timer), resolve(now)) : waiters.push(h);
    };
    waiters.push(h);
  });

/** CPU seconds a process has used (user + system), from /proc (Linux). */
function cpuOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}
let workerCpu = { user: 0, system: 0 };
child.on("message", (m) => {
  if (m.cpu) workerCpu = m.cpu;
});
const cpuSeconds = (u) => (u.user + u.system) / 1e6;

let i = 0;
async function enqueueAll(n) {
  for (let s = 0; s < n; s += BULK) {
    const items = [];
    for (let k = s; k < Math.min(n, s + BULK); k++) items.push({ queue: "bench", name: "noop", args: { i: i++ } });
    await producer.enqueueBatch(items);
  }
}

try {
  await next((m) => m.up);
  // warm-up: a few batches through the whole path, not measured
  let ready = next((m) => m.ready);
  child.send({ target: 2000 });
  await ready;
  let done = next((m) => m.done);
  await enqueueAll(2000);
  await done;

  let t0 = performance.now();
  await enqueueAll(N);
  const enqueue = N / ((performance.now() - t0) / 1000);

  ready = next((m) => m.ready);
  const first = next((m) => m.first);
  done = next((m) => m.done);
  child.send({ target: N });
  await ready;
  const tFirst = await first;
  const drain = N / ((await done) - tFirst) * 1000;

  ready = next((m) => m.ready);
  done = next((m) => m.done);
  child.send({ target: N });
  await ready;
  await new Promise((r) => setTimeout(r, 200)); // the worker's first claim is waiting
  const before = { server: cpuOf(server.pid), producer: cpuSeconds(process.cpuUsage()), worker: cpuSeconds(workerCpu) };
  t0 = performance.now();
  await enqueueAll(N);
  const enqueueBusy = N / ((performance.now() - t0) / 1000);
  const e2e = N / (((await done) - t0) / 1000);
  const us = (a, b) => (((a - b) * 1e6) / N).toFixed(0);
  const cpu = `cpu_us_per_task server=${us(cpuOf(server.pid), before.server)} producer=${us(cpuSeconds(process.cpuUsage()), before.producer)} worker=${us(cpuSeconds(workerCpu), before.worker)}`;
  console.log(
    `RESULT system=signet-ts-sdk N=${N} concurrency=${C} claims=${CLAIMS} flush_ms=${process.env.FLUSH_MS || 2} enqueue_batch=${enqueue.toFixed(0)} drain=${drain.toFixed(0)} e2e=${e2e.toFixed(0)} enqueue_during_e2e=${enqueueBusy.toFixed(0)} ${cpu}`,
  );
} finally {
  child.kill("SIGINT");
  await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
  producer.close();
  await server.stop();
}
