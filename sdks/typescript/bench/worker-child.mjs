// The worker process of bench/worker.mjs: a TypeScript SDK worker with a
// no-op handler. For each phase the parent sends {target}; the worker runs
// until it has handled that many tasks, stops (which waits until every
// completion is acknowledged by the server) and answers {done}.
import { Worker, silentLogger } from "../dist/src/index.js";

const url = process.env.BENCH_URL;
const apiKey = process.env.BENCH_KEY;
const concurrency = Number(process.env.CONCURRENCY || 100);
const claims = Number(process.env.CLAIMS || 2);
const flushMs = Number(process.env.FLUSH_MS || 2);

process.on("message", async (m) => {
  if (m.target === undefined) return;
  const stop = new AbortController();
  let n = 0;
  let first = true;
  const worker = new Worker({ url, apiKey, queues: ["bench"], concurrency, claims, flushMs, signal: stop.signal, handleSignals: false, logger: silentLogger });
  worker.task("noop", () => {
    if (first) {
      first = false;
      process.send({ first: true });
    }
    if (++n === m.target) stop.abort();
    return null;
  });
  process.send({ ready: true });
  await worker.run();
  process.send({ done: true, handled: n, cpu: process.cpuUsage() });
});
process.on("SIGINT", () => process.exit(0)); // lets --cpu-prof write its profile
process.send({ up: true });
