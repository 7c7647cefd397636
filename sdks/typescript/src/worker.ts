/**
 * A worker over the HTTP pull protocol (docs/worker-protocol.md): handlers
 * by task name, long-poll claims of as many tasks as there are free slots,
 * every task verified before its handler sees it, heartbeats while tasks
 * run, completions and failures reported in batches, and a graceful stop
 * on SIGTERM/SIGINT or an `AbortSignal`.
 */
import { ApiError, SignetClient, type ClientOptions } from "./client.js";
import { SignetError } from "./errors.js";
import type { KeyRing } from "./keys.js";
import { loadKeys, type LoadedKeys } from "./load.js";
import { defaultLogger, type Logger } from "./log.js";
import { TaskError, checkTask, errorText, resultJson, type DeadReason, type TaskInfo, type WireTask } from "./task.js";

/** Most tasks one claim asks for (the server's limit). */
export const MAX_CLAIM = 100;
/** Most items in one batched report (the server takes 1 000). */
const MAX_REPORT_ITEMS = 500;
/**
 * A completion larger than this (its JSON, in UTF-16 units) is sent on its
 * own, so that a result over the server's body limit fails only its task.
 */
const LARGE_REPORT = 64 * 1024;

/** What a handler gets besides its args. */
export class TaskContext implements TaskInfo {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly argsBytes: Buffer;
  readonly keyId: string | undefined;
  readonly envelope: TaskInfo["envelope"];
  /** @internal the lease token; never logged. */
  readonly lease: string;
  /** @internal when the lease was last extended, ms. */
  beatAt: number;
  #controller: AbortController | undefined;
  #lost = false;

  constructor(info: TaskInfo, lease: string, now: number) {
    this.id = info.id;
    this.queue = info.queue;
    this.name = info.name;
    this.attempt = info.attempt;
    this.maxAttempts = info.maxAttempts;
    this.headers = info.headers;
    this.argsBytes = info.argsBytes;
    this.keyId = info.keyId;
    this.envelope = info.envelope;
    this.lease = lease;
    this.beatAt = now;
  }

  /** Aborted when the lease is lost (the task will run elsewhere) or the worker is stopped hard. */
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  /** Whether the lease was lost: the result will be dropped. */
  get leaseLost(): boolean {
    return this.#lost;
  }

  /** @internal */
  loseLease(reason: string): void {
    this.#lost = true;
    this.#controller?.abort(new Error(reason));
  }

  toString(): string {
    return `TaskContext(${this.id}, ${this.name}, attempt ${this.attempt}/${this.maxAttempts})`;
  }
  toJSON(): object {
    return { id: this.id, queue: this.queue, name: this.name, attempt: this.attempt, maxAttempts: this.maxAttempts };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** A task handler: gets the parsed args and the task's context; its return value (JSON) is the result. */
export type Handler = (args: any, ctx: TaskContext) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Options of a {@link Worker}. */
export interface WorkerOptions extends ClientOptions {
  /** The queues to take tasks from. */
  readonly queues: readonly string[];
  /**
   * The keys that verify tasks (Ed25519 public keys are enough), or what
   * {@link loadKeys} returns. Default: `loadKeys()`.
   */
  readonly keys?: KeyRing | LoadedKeys;
  /** Tasks running at once (default 10). */
  readonly concurrency?: number;
  /** Lease per claim and heartbeat, ms (1 000–300 000, default 30 000). */
  readonly leaseMs?: number;
  /**
   * Claims in flight at once (default 2, at most `concurrency`): while one
   * claim's answer is on its way, another is already being served, which
   * keeps a fast handler fed. The free slots are shared between them.
   */
  readonly claims?: number;
  /** Long-poll wait of a claim, ms (0–30 000, default 20 000). */
  readonly waitMs?: number;
  /** Longest a report waits to be batched with others, ms (default 2). */
  readonly flushMs?: number;
  /** Stops the worker when aborted (as SIGTERM does). */
  readonly signal?: AbortSignal;
  /** Stop gracefully on SIGTERM and SIGINT (default true; a second signal exits at once). */
  readonly handleSignals?: boolean;
  /** Where the worker says what it does (default: the console). */
  readonly logger?: Logger;
}

interface Report {
  readonly json: string;
  readonly ctxId: string;
}

/** Sends completions and failures in batches. */
class Reporter {
  readonly #client: SignetClient;
  readonly #log: Logger;
  readonly #flushMs: number;
  readonly #pending: { complete: Report[]; fail: Report[] } = { complete: [], fail: [] };
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(client: SignetClient, log: Logger, flushMs: number) {
    this.#client = client;
    this.#log = log;
    this.#flushMs = flushMs;
  }

  add(kind: "complete" | "fail", json: string, ctxId: string, lease?: string): void {
    if (kind === "complete" && lease !== undefined && json.length > LARGE_REPORT) {
      this.#sendLarge(json, ctxId, lease);
      return;
    }
    const list = this.#pending[kind];
    list.push({ json, ctxId });
    if (list.length >= MAX_REPORT_ITEMS) this.#send(kind);
    else this.#timer ??= setTimeout(() => this.flush(), this.#flushMs);
  }

  /** Sends everything pending now. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#send("complete");
    this.#send("fail");
  }

  /** Sends everything pending and waits for every report in flight. */
  async drain(): Promise<void> {
    for (;;) {
      this.flush();
      if (this.#inFlight.size === 0) return;
      // A refused large completion adds a failure while in flight: go round.
      await Promise.all([...this.#inFlight]);
    }
  }

  /**
   * Sends one large completion alone; when the server refuses it (`413`
   * over its body limit, `422`), the attempt fails with that reason instead
   * of the task waiting for its lease to end.
   */
  #sendLarge(json: string, ctxId: string, lease: string): void {
    const p = this.#client
      .request("POST", "v1/work/complete", json)
      .then(
        () => undefined,
        (e: unknown) => {
          if (e instanceof ApiError && (e.status === 413 || e.status === 422)) {
            const error = `the result (${Buffer.byteLength(json)} bytes with its lease) was refused by the server: ${e.code}: ${e.message}`;
            this.#log.error(`signet worker: task ${ctxId}: ${error}`);
            this.add("fail", `{"lease":${JSON.stringify(lease)},"error":${JSON.stringify(error)}}`, ctxId);
          } else if (e instanceof ApiError && e.code === "lease_lost") {
            this.#log.warn(`signet worker: task ${ctxId}: lease lost before its complete was reported; dropped (the task runs again elsewhere)`);
          } else {
            this.#log.error(`signet worker: task ${ctxId}: reporting its completion failed: ${errorText(e)}; it runs again when its lease ends`);
          }
        },
      )
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }

  #send(kind: "complete" | "fail"): void {
    const items = this.#pending[kind];
    if (items.length === 0) return;
    this.#pending[kind] = [];
    let body = '{"items":[';
    for (let i = 0; i < items.length; i++) body += (i > 0 ? "," : "") + (items[i] as Report).json;
    body += "]}";
    const p = this.#client
      .request<{ items: Array<{ error?: { code: string; message: string } }> }>("POST", `v1/work/${kind}`, body)
      .then(
        (answer) => {
          const out = answer.items;
          for (let i = 0; i < out.length; i++) {
            const error = out[i]?.error;
            if (error === undefined) continue;
            const id = items[i]?.ctxId ?? "?";
            if (error.code === "lease_lost") {
              this.#log.warn(`signet worker: task ${id}: lease lost before its ${kind} was reported; dropped (the task runs again elsewhere)`);
            } else {
              this.#log.error(`signet worker: task ${id}: ${kind} refused: ${error.code}: ${error.message}`);
            }
          }
        },
        (e: unknown) => {
          this.#log.error(
            `signet worker: reporting ${items.length} ${kind === "complete" ? "completion(s)" : "failure(s)"} failed: ${errorText(e)}; those tasks run again when their leases end`,
          );
        },
      )
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }
}

/** `value` when it is a whole number in `[min, max]` (the protocol's ranges), else a TypeError saying so. */
function within(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/**
 * Pulls tasks from `signet serve`, verifies each before running its
 * handler, and reports the outcome. `run()` resolves after a graceful stop.
 */
export class Worker {
  readonly #client: SignetClient;
  readonly #ring: KeyRing;
  readonly #dev: boolean;
  readonly #handlers = new Map<string, Handler>();
  readonly #queues: readonly string[];
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #log: Logger;
  readonly #reporter: Reporter;
  readonly #signal: AbortSignal | undefined;
  readonly #handleSignals: boolean;
  readonly #active = new Map<string, TaskContext>();
  #running = 0;
  #stopping = false;
  #runningRun = false;
  readonly #claims: number;
  /** Slots promised to claims in flight. */
  #reserved = 0;
  readonly #claimAborts = new Set<AbortController>();
  #slotWaiters: Array<() => void> = [];
  readonly #sleepWakes = new Set<() => void>();
  #fatal: Error | undefined;
  #idleWaiter: (() => void) | undefined;
  readonly #claimBody: (max: number) => string;
  readonly #hasHandler = (name: string): boolean => this.#handlers.has(name);

  constructor(options: WorkerOptions) {
    if (!Array.isArray(options.queues) || options.queues.length === 0) {
      throw new TypeError("a worker needs at least one queue: new Worker({ queues: [\"default\"], … })");
    }
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(`concurrency must be a whole number of at least 1, got ${String(concurrency)}`);
    }
    this.#client = new SignetClient(options);
    this.#log = options.logger ?? defaultLogger;
    const keys = options.keys ?? loadKeys();
    const ring = "ring" in keys ? keys.ring : keys;
    this.#dev = "dev" in keys ? keys.dev : false;
    if ("warnings" in keys) for (const w of keys.warnings) this.#log.warn(`signet worker: ${w}`);
    if (this.#dev) {
      this.#log.warn("signet worker: SIGNET_DEV is on: task signatures are NOT verified; never run like this in production");
    } else if (ring.keys.length === 0) {
      throw SignetError.config(
        "the worker has no keys to verify tasks with; set the producers' keys (SIGNET_SIGNING_PUBLIC_KEYS is enough for Ed25519)",
      );
    }
    this.#ring = ring;
    this.#queues = [...options.queues];
    this.#concurrency = concurrency;
    this.#claims = Math.max(1, Math.min(options.claims ?? 2, concurrency));
    this.#leaseMs = within("leaseMs", options.leaseMs ?? 30_000, 1_000, 300_000);
    this.#waitMs = within("waitMs", options.waitMs ?? 20_000, 0, 30_000);
    within("claims", options.claims ?? 2, 1, 100);
    within("flushMs", options.flushMs ?? 2, 0, 60_000);
    this.#reporter = new Reporter(this.#client, this.#log, options.flushMs ?? 2);
    this.#signal = options.signal;
    this.#handleSignals = options.handleSignals ?? true;
    const queuesJson = JSON.stringify(this.#queues);
    const tail = `,"wait_ms":${this.#waitMs},"lease_ms":${this.#leaseMs}}`;
    this.#claimBody = (max) => `{"queues":${queuesJson},"max":${max}${tail}`;
  }

  /** Registers the handler of a task name (replacing any earlier one). Returns the worker. */
  task(name: string, handler: Handler): this {
    if (typeof handler !== "function") throw new TypeError(`the handler of ${JSON.stringify(name)} must be a function`);
    this.#handlers.set(name, handler);
    return this;
  }

  /** Tasks running now. */
  get running(): number {
    return this.#running;
  }

  /** Stops claiming; running tasks finish and report, then `run()` resolves. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const c of this.#claimAborts) c.abort();
    this.#wakeSlots();
    for (const wake of [...this.#sleepWakes]) wake();
  }

  /**
   * Claims and runs tasks until stopped (SIGTERM, SIGINT, the `signal`
   * option, or {@link stop}); then finishes the running tasks, reports
   * them and resolves.
   */
  async run(): Promise<void> {
    if (this.#runningRun) throw new Error("this worker is already running");
    if (this.#handlers.size === 0) throw new TypeError("register at least one handler with worker.task(name, fn) before run()");
    this.#runningRun = true;
    let signals = 0;
    const onSignal = (name: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        this.#log.warn(`signet worker: ${name} again: exiting now; ${this.#running} running task(s) run again when their leases end`);
        process.exit(130);
      }
      this.#log.info(`signet worker: ${name}: stopping; finishing ${this.#running} running task(s) (send it again to exit at once)`);
      this.stop();
    };
    const onAbort = (): void => this.stop();
    if (this.#handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    if (this.#signal?.aborted === true) this.stop();
    this.#signal?.addEventListener("abort", onAbort);
    const beat = setInterval(() => this.#heartbeat(), Math.max(250, Math.floor(this.#leaseMs / 6)));
    beat.unref();
    this.#log.info(
      `signet worker: ${this.#client.url} queues ${this.#queues.join(", ")}; ${this.#concurrency} at once; tasks: ${[...this.#handlers.keys()].join(", ")}; ${this.#dev ? "verification OFF (dev)" : `verifying with ${this.#ring.describe()}`}`,
    );
    try {
      await Promise.all(Array.from({ length: this.#claims }, () => this.#loop()));
      if (this.#running > 0) await new Promise<void>((resolve) => (this.#idleWaiter = resolve));
      await this.#reporter.drain();
      if (this.#fatal !== undefined) throw this.#fatal;
    } finally {
      clearInterval(beat);
      if (this.#handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      this.#signal?.removeEventListener("abort", onAbort);
      this.#client.close();
      this.#runningRun = false;
      this.#log.info("signet worker: stopped");
    }
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const free = this.#concurrency - this.#running - this.#reserved;
      if (free <= 0) {
        await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
        continue;
      }
      const max = Math.min(free, MAX_CLAIM, Math.ceil(this.#concurrency / this.#claims));
      const controller = new AbortController();
      this.#claimAborts.add(controller);
      this.#reserved += max;
      let tasks: WireTask[];
      try {
        const answer = await this.#client.request<{ tasks: WireTask[] }>(
          "POST",
          "v1/work/claim",
          this.#claimBody(max),
          { signal: controller.signal, timeoutMs: this.#waitMs + 15_000 },
        );
        tasks = answer.tasks;
        failures = 0;
      } catch (e) {
        if (this.#stopping) break;
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          // Fatal: stop, let running tasks finish and report, then run() throws this.
          this.#fatal ??= new Error(
            `signet worker: the server refused the API key (${e.code}: ${e.message}); a worker needs a key with the work scope`,
          );
          this.stop();
          break;
        }
        failures++;
        const ms = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
        this.#log.error(`signet worker: claim failed: ${errorText(e)}; trying again in ${ms} ms`);
        await this.#sleep(ms);
        continue;
      } finally {
        this.#claimAborts.delete(controller);
        this.#reserved -= max;
      }
      const now = Date.now();
      for (const task of tasks) this.#start(task, now);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#sleepWakes.delete(wake);
        resolve();
      };
      const t = setTimeout(done, ms);
      const wake = (): void => {
        clearTimeout(t);
        done();
      };
      this.#sleepWakes.add(wake);
    });
  }

  #start(task: WireTask, now: number): void {
    const lease = task.lease;
    if (typeof lease !== "string") {
      this.#log.error("signet worker: the server answered a task without a lease; skipped");
      return;
    }
    const verdict = checkTask(task, { ring: this.#ring, hasHandler: this.#hasHandler, nowMs: now, dev: this.#dev });
    if (!verdict.ok) {
      this.#dead(lease, task.envelope?.id ?? "?", verdict.reason, verdict.detail);
      return;
    }
    const ctx = new TaskContext(verdict.info, lease, now);
    const handler = this.#handlers.get(ctx.name) as Handler;
    this.#running++;
    this.#active.set(lease, ctx);
    let out: unknown;
    try {
      out = handler(verdict.args, ctx);
    } catch (e) {
      this.#failed(ctx, e);
      return;
    }
    if (out !== null && typeof out === "object" && typeof (out as PromiseLike<unknown>).then === "function") {
      (out as PromiseLike<unknown>).then(
        (result) => this.#succeeded(ctx, result),
        (e: unknown) => this.#failed(ctx, e),
      );
    } else {
      this.#succeeded(ctx, out);
    }
  }

  #dead(lease: string, id: string, reason: DeadReason, detail: string): void {
    this.#log.warn(`signet worker: task ${id}: dead ${reason}: ${detail}`);
    const json = `{"lease":${JSON.stringify(lease)},"dead":true,"reason":"${reason}","detail":${JSON.stringify(detail)}}`;
    this.#reporter.add("fail", json, id);
  }

  #succeeded(ctx: TaskContext, result: unknown): void {
    if (this.#finish(ctx)) {
      const out = resultJson(result);
      if (out.ok) this.#reporter.add("complete", `{"lease":${JSON.stringify(ctx.lease)},"result":${out.json}}`, ctx.id, ctx.lease);
      else this.#reporter.add("fail", `{"lease":${JSON.stringify(ctx.lease)},"error":${JSON.stringify(out.error)}}`, ctx.id);
    }
    this.#release();
  }

  #failed(ctx: TaskContext, e: unknown): void {
    if (this.#finish(ctx)) {
      const lease = JSON.stringify(ctx.lease);
      if (e instanceof TaskError && e.dead) {
        this.#dead(ctx.lease, ctx.id, "payload-invalid", errorText(e));
      } else {
        const retry = e instanceof TaskError && e.retryAfterMs !== undefined ? `,"retry_after_ms":${Math.max(0, Math.floor(e.retryAfterMs))}` : "";
        this.#reporter.add("fail", `{"lease":${lease},"error":${JSON.stringify(errorText(e))}${retry}}`, ctx.id);
      }
    }
    this.#release();
  }

  /** Ends a task's run; false when its lease was lost (the outcome is dropped). */
  #finish(ctx: TaskContext): boolean {
    this.#active.delete(ctx.lease);
    if (ctx.leaseLost) {
      this.#log.warn(`signet worker: task ${ctx.id}: finished after its lease was lost; outcome dropped`);
      return false;
    }
    return true;
  }

  #release(): void {
    this.#running--;
    if (this.#slotWaiters.length > 0) this.#wakeSlots();
    if (this.#running === 0) this.#idleWaiter?.();
  }

  #wakeSlots(): void {
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const w of waiters) w();
  }

  /** Extends the lease of every task that has run for a third of it since its last extension. */
  #heartbeat(): void {
    const now = Date.now();
    const due: TaskContext[] = [];
    for (const ctx of this.#active.values()) if (now - ctx.beatAt >= this.#leaseMs / 3) due.push(ctx);
    if (due.length === 0) return;
    for (const ctx of due) ctx.beatAt = now;
    for (let start = 0; start < due.length; start += MAX_REPORT_ITEMS) {
      const chunk = due.slice(start, start + MAX_REPORT_ITEMS);
      const body = `{"items":[${chunk.map((c) => `{"lease":${JSON.stringify(c.lease)},"lease_ms":${this.#leaseMs}}`).join(",")}]}`;
      this.#client
        .request<{ items: Array<{ error?: { code: string; message: string } }> }>("POST", "v1/work/heartbeat", body)
        .then(
          (answer) => {
            answer.items.forEach((item, i) => {
              const ctx = chunk[i];
              if (item.error === undefined || ctx === undefined) return;
              if (item.error.code === "lease_lost") {
                this.#log.warn(`signet worker: task ${ctx.id}: lease lost (it ran past its lease or was rescued); its result will be dropped`);
                ctx.loseLease("the lease of this task was lost; it runs again elsewhere");
              } else {
                this.#log.error(`signet worker: task ${ctx.id}: heartbeat refused: ${item.error.code}: ${item.error.message}`);
              }
            });
          },
          (e: unknown) => this.#log.error(`signet worker: heartbeat of ${chunk.length} task(s) failed: ${errorText(e)}`),
        );
    }
  }

  toString(): string {
    return `Worker(${this.#client.url}, queues ${this.#queues.join(",")})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}
