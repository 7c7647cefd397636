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
import { TaskError, checkTask, errorText, resultJson, retryAfterOf, type DeadReason, type TaskInfo, type WireTask } from "./task.js";

/** Most tasks one claim asks for (the server's limit). */
export const MAX_CLAIM = 100;
/** Most items in one batched report (the server takes 1 000). */
const MAX_REPORT_ITEMS = 500;
/**
 * Most bytes in one batched report body, half the server's default body
 * limit (1 MiB) as the Python SDK; a batch the server still refuses as too
 * large (`413`) is halved and sent again.
 */
const MAX_REPORT_BYTES = 512 * 1024;
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

/** One item of a batched report: its JSON, the task's id for the log, its lease. */
interface Report {
  readonly json: string;
  readonly bytes: number;
  readonly ctxId: string;
  readonly lease: string | undefined;
  /** How many times the server could not take this report for a passing reason (`503`, `429`, no answer). */
  tries: number;
}

/** Times a report the server could not take for a passing reason is sent again, a second apart more each time. */
const REPORT_RETRIES = 5;

/** Item codes and statuses that say "not now", not "no": the same report may be sent again. */
const PASSING_CODES = new Set(["unavailable", "store_unavailable", "timeout", "rate_limited", "network"]);
const PASSING_STATUSES = new Set([0, 429, 502, 503, 504]);

/** An item of a report's answer: an error, or not. */
type ItemAnswer = { error?: { code?: unknown; message?: unknown } } | null | undefined;

/** Sends completions and failures in batches. */
class Reporter {
  readonly #client: SignetClient;
  readonly #log: Logger;
  readonly #flushMs: number;
  readonly #pending: { complete: Report[]; fail: Report[] } = { complete: [], fail: [] };
  readonly #pendingBytes = { complete: 0, fail: 0 };
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(client: SignetClient, log: Logger, flushMs: number) {
    this.#client = client;
    this.#log = log;
    this.#flushMs = flushMs;
  }

  add(kind: "complete" | "fail", json: string, ctxId: string, lease?: string): void {
    const report: Report = { json, bytes: Buffer.byteLength(json), ctxId, lease, tries: 0 };
    if (kind === "complete" && json.length > LARGE_REPORT) {
      this.#post(kind, [report]);
      return;
    }
    this.#queue(kind, report);
  }

  /** Adds a report to the pending batch of its kind, sending the batch when it is full. */
  #queue(kind: "complete" | "fail", report: Report): void {
    // Keep every batch under MAX_REPORT_BYTES: send what is pending first
    // when this report would take it over.
    if (this.#pending[kind].length > 0 && this.#pendingBytes[kind] + report.bytes + 1 > MAX_REPORT_BYTES) this.#send(kind);
    const list = this.#pending[kind];
    list.push(report);
    this.#pendingBytes[kind] += report.bytes + 1;
    if (list.length >= MAX_REPORT_ITEMS || this.#pendingBytes[kind] >= MAX_REPORT_BYTES) this.#send(kind);
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
      // A refused completion adds a failure, a halved batch two posts, while in flight: go round.
      await Promise.all([...this.#inFlight]);
    }
  }

  #send(kind: "complete" | "fail"): void {
    const items = this.#pending[kind];
    if (items.length === 0) return;
    this.#pending[kind] = [];
    this.#pendingBytes[kind] = 0;
    this.#post(kind, items);
  }

  /**
   * Posts one batch. A batch the server refuses as too large (`413`) is
   * halved and each half posted; a lone completion it refuses (`413` over
   * its body limit, `422`) fails its attempt with that reason instead of
   * the task waiting for its lease to end.
   */
  #post(kind: "complete" | "fail", items: readonly Report[]): void {
    let body = '{"items":[';
    for (let i = 0; i < items.length; i++) body += (i > 0 ? "," : "") + (items[i] as Report).json;
    body += "]}";
    const p = this.#client
      .request<{ items?: unknown }>("POST", `v1/work/${kind}`, body)
      .then(
        (answer) => this.#answered(kind, items, answer),
        (e: unknown) => this.#refused(kind, items, e),
      )
      .catch((e: unknown) => this.#log.error(`signet worker: handling the answer to a ${kind} report failed: ${errorText(e)}`))
      .finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
  }

  #answered(kind: "complete" | "fail", items: readonly Report[], answer: { items?: unknown } | null): void {
    const out = answer !== null && typeof answer === "object" ? answer.items : undefined;
    if (!Array.isArray(out)) {
      this.#log.error(
        `signet worker: the server answered a ${kind} report of ${items.length} task(s) without an items list; if they were not recorded they run again when their leases end`,
      );
      return;
    }
    const again: Report[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = out[i] as ItemAnswer;
      const error = item !== null && typeof item === "object" ? item.error : undefined;
      if (error === undefined || error === null) continue;
      const id = (items[i] as Report).ctxId;
      const code = typeof error === "object" ? String(error.code) : String(error);
      const message = typeof error === "object" ? String(error.message) : "";
      if (PASSING_CODES.has(code)) {
        again.push(items[i] as Report);
      } else if (code === "lease_lost") {
        this.#log.warn(`signet worker: task ${id}: lease lost before its ${kind} was reported; dropped (the task runs again elsewhere)`);
      } else {
        this.#log.error(`signet worker: task ${id}: ${kind} refused: ${code}: ${message}`);
      }
    }
    if (again.length > 0) this.#again(kind, again, `the server could not take them now`);
  }

  /**
   * Sends reports again that the server could not take for a passing
   * reason, a second later per try (the protocol: a repeated report is
   * safe; one already written answers `lease_lost`). After
   * {@link REPORT_RETRIES} tries they are given up: those tasks run again
   * when their leases end.
   */
  #again(kind: "complete" | "fail", reports: readonly Report[], why: string): void {
    const keep = reports.filter((r) => ++r.tries <= REPORT_RETRIES);
    if (keep.length < reports.length) {
      this.#log.error(
        `signet worker: reporting ${reports.length - keep.length} ${kind === "complete" ? "completion(s)" : "failure(s)"} failed ${REPORT_RETRIES + 1} times (${why}); those tasks run again when their leases end`,
      );
    }
    if (keep.length === 0) return;
    const delay = 1000 * Math.max(...keep.map((r) => r.tries));
    this.#log.warn(`signet worker: ${keep.length} ${kind} report(s) not taken (${why}); sending again in ${delay} ms`);
    const p: Promise<void> = new Promise<void>((resolve) => setTimeout(resolve, delay)).then(() => {
      for (const r of keep) this.#queue(kind, r);
      this.flush();
    });
    const tracked = p.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  #refused(kind: "complete" | "fail", items: readonly Report[], e: unknown): void {
    if (e instanceof ApiError && e.status === 413 && items.length > 1) {
      const half = Math.ceil(items.length / 2);
      this.#post(kind, items.slice(0, half));
      this.#post(kind, items.slice(half));
      return;
    }
    const lone = items.length === 1 ? (items[0] as Report) : undefined;
    if (kind === "complete" && lone?.lease !== undefined && e instanceof ApiError && (e.status === 413 || e.status === 422)) {
      const error = `the result (${lone.bytes} bytes with its lease) was refused by the server: ${e.code}: ${e.message}`;
      this.#log.error(`signet worker: task ${lone.ctxId}: ${error}`);
      this.add("fail", `{"lease":${JSON.stringify(lone.lease)},"error":${JSON.stringify(error)}}`, lone.ctxId);
      return;
    }
    if (lone !== undefined && e instanceof ApiError && e.code === "lease_lost") {
      this.#log.warn(`signet worker: task ${lone.ctxId}: lease lost before its ${kind} was reported; dropped (the task runs again elsewhere)`);
      return;
    }
    if (e instanceof ApiError && (PASSING_STATUSES.has(e.status) || PASSING_CODES.has(e.code))) {
      this.#again(kind, items, `${e.code}: ${e.message}`);
      return;
    }
    this.#log.error(
      `signet worker: reporting ${items.length} ${kind === "complete" ? "completion(s)" : "failure(s)"} failed: ${errorText(e)}; those tasks run again when their leases end`,
    );
  }
}

/** Claim answers that stop the worker (with 401 and 403): the claim itself is wrong, as the Python SDK. */
const FATAL_CLAIM = new Set([400, 404, 422]);

/** A claimed task's id for the log, or `?`. */
function idOf(task: WireTask): string {
  const envelope: unknown = task.envelope;
  const id = envelope !== null && typeof envelope === "object" ? (envelope as { id?: unknown }).id : undefined;
  return typeof id === "string" ? id : "?";
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
  readonly #required: boolean;
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
    // A bare key ring means signatures are required; loadKeys() says (SIGNET_SIGNING_REQUIRED).
    this.#required = "required" in keys ? keys.required : true;
    if ("warnings" in keys) for (const w of keys.warnings) this.#log.warn(`signet worker: ${w}`);
    if (this.#dev) {
      this.#log.warn("signet worker: SIGNET_DEV is on: task signatures are NOT verified; never run like this in production");
    } else if (!this.#required) {
      this.#log.warn(
        "signet worker: SIGNET_SIGNING_REQUIRED is off: UNSIGNED tasks run without any check of who sent them (signed tasks are still verified)",
      );
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
      `signet worker: ${this.#client.url} queues ${this.#queues.join(", ")}; ${this.#concurrency} at once; tasks: ${[...this.#handlers.keys()].join(", ")}; ${this.#dev ? "verification OFF (dev)" : `verifying with ${this.#ring.describe()}${this.#required ? "" : "; unsigned tasks accepted"}`}`,
    );
    try {
      await Promise.all(
        Array.from({ length: this.#claims }, () =>
          this.#loop().catch((e: unknown) => {
            // A claim loop that fails stops the worker (the others stop claiming; running tasks finish and report).
            this.#fatal ??= new Error(`signet worker: a claim loop failed: ${errorText(e)}`);
            this.stop();
          }),
        ),
      );
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
      let tasks: unknown[];
      try {
        const answer = await this.#client.request<{ tasks?: unknown } | null>(
          "POST",
          "v1/work/claim",
          this.#claimBody(max),
          { signal: controller.signal, timeoutMs: this.#waitMs + 15_000 },
        );
        const list = answer !== null && typeof answer === "object" ? answer.tasks : undefined;
        if (!Array.isArray(list)) throw new Error("the server answered the claim without a tasks list; is it a Signet server?");
        tasks = list;
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
        if (e instanceof ApiError && FATAL_CLAIM.has(e.status)) {
          // The claim itself is wrong (queues, lease, wait): asking again cannot help (as the Python SDK).
          this.#fatal ??= new Error(`signet worker: the server refused to hand out work (${e.status} ${e.code}: ${e.message}); check the worker's queues and options`);
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
      for (const task of tasks) {
        try {
          this.#start(task, now);
        } catch (e) {
          // A task this worker cannot even read must not stop the loop.
          this.#unreadable(task, e);
        }
      }
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

  #start(claimed: unknown, now: number): void {
    if (claimed === null || typeof claimed !== "object" || typeof (claimed as WireTask).lease !== "string") {
      this.#log.error("signet worker: the server answered a task without a lease; skipped");
      return;
    }
    const task = claimed as WireTask;
    const lease = task.lease as string;
    const verdict = checkTask(task, { ring: this.#ring, hasHandler: this.#hasHandler, nowMs: now, dev: this.#dev, required: this.#required });
    if (!verdict.ok) {
      this.#dead(lease, idOf(task), verdict.reason, verdict.detail);
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

  /** A claimed task that could not be checked at all: dead `signature-invalid` (malformed) when it has a lease to report with. */
  #unreadable(claimed: unknown, e: unknown): void {
    const lease = claimed !== null && typeof claimed === "object" ? (claimed as { lease?: unknown }).lease : undefined;
    if (typeof lease !== "string") {
      this.#log.error(`signet worker: the server answered a task this worker cannot read (${errorText(e)}); skipped`);
      return;
    }
    this.#dead(lease, idOf(claimed as WireTask), "signature-invalid", `malformed: the task cannot be read: ${errorText(e)}`);
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
        const after = retryAfterOf(e);
        const retry = after === undefined ? "" : `,"retry_after_ms":${after}`;
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
        .request<{ items?: unknown } | null>("POST", "v1/work/heartbeat", body)
        .then(
          (answer) => {
            const items = answer !== null && typeof answer === "object" ? answer.items : undefined;
            if (!Array.isArray(items)) {
              this.#log.error(`signet worker: the server answered a heartbeat of ${chunk.length} task(s) without an items list; trying again next beat`);
              for (const ctx of chunk) ctx.beatAt = 0;
              return;
            }
            items.forEach((item: ItemAnswer, i) => {
              const ctx = chunk[i];
              const error = item !== null && typeof item === "object" ? item.error : undefined;
              if (error === undefined || error === null || ctx === undefined) return;
              const code = typeof error === "object" ? String(error.code) : String(error);
              if (code === "lease_lost") {
                this.#log.warn(`signet worker: task ${ctx.id}: lease lost (it ran past its lease or was rescued); its result will be dropped`);
                ctx.loseLease("the lease of this task was lost; it runs again elsewhere");
              } else {
                this.#log.error(`signet worker: task ${ctx.id}: heartbeat refused: ${code}: ${typeof error === "object" ? String(error.message) : ""}`);
              }
            });
          },
          (e: unknown) => this.#log.error(`signet worker: heartbeat of ${chunk.length} task(s) failed: ${errorText(e)}`),
        )
        .catch((e: unknown) => this.#log.error(`signet worker: handling a heartbeat's answer failed: ${errorText(e)}`));
    }
  }

  toString(): string {
    return `Worker(${this.#client.url}, queues ${this.#queues.join(",")})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}
