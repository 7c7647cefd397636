/**
 * A producer that signs tasks locally and enqueues them over HTTP
 * (`POST /v1/tasks`, `POST /v1/tasks/batch`, client-signed): it picks the
 * task id and creation time, serialises the args once, signs those exact
 * bytes, and sends those bytes. The server verifies the signature at the
 * door and stores it unchanged.
 */
import { randomFillSync } from "node:crypto";

import { ApiError, SignetClient, type ClientOptions } from "./client.js";
import { normaliseHeaders, signEnvelope, storedSignature, type HeaderInput, type TaskEnvelope } from "./envelope.js";
import { SignetError } from "./errors.js";
import type { KeyRing } from "./keys.js";
import { loadKeys, type LoadedKeys } from "./load.js";
import type { Logger } from "./log.js";
import { defaultLogger } from "./log.js";

/** The server's default `max_attempts`, signed when a task gives none. */
export const DEFAULT_MAX_ATTEMPTS = 25;
/** Most tasks in one `POST /v1/tasks/batch`; {@link Producer.enqueueBatch} splits larger lists. */
export const MAX_BATCH_TASKS = 1000;
/**
 * Most bytes in one `POST /v1/tasks/batch` body by default (the server's
 * default body limit is 1 MiB); a body the server still refuses as too
 * large (`413`) is halved and each half sent.
 */
export const DEFAULT_BATCH_BYTES = 1_000_000;

/** Options of one task. Times are unix ms or `Date`s. */
export interface EnqueueOptions {
  /** Headers carried with the task (names lower-cased; signed). */
  readonly headers?: HeaderInput;
  /** Run no sooner than this many ms from now (signed as `not_before`). */
  readonly delayMs?: number;
  /** Run no sooner than this time. */
  readonly notBefore?: number | Date;
  /** Do not run after this time. */
  readonly expiresAt?: number | Date;
  /** Attempts allowed, 1–1000 (default 25). */
  readonly maxAttempts?: number;
  /** -1000–1000, higher first (not signed). */
  readonly priority?: number;
  /** Where a signed callback goes when the task finishes. */
  readonly callbackUrl?: string;
  /** Makes the enqueue exactly-once per key for this API key (the same request again answers the first task). */
  readonly idempotencyKey?: string;
  /**
   * The args as JSON text, sent and signed byte for byte instead of
   * `JSON.stringify(args)` (the `args` argument is then ignored).
   */
  readonly argsJson?: string;
}

/** One task of {@link Producer.enqueueBatch}. */
export interface BatchItem extends EnqueueOptions {
  readonly queue: string;
  readonly name: string;
  readonly args?: unknown;
}

/** A task as the server answered it. */
export interface EnqueuedTask {
  /** The task id (`task_…`), chosen by this producer when it signs. */
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  /** `scheduled` or `available` for a new task. */
  readonly state: string;
  /** `true` when an idempotency key was already used with the same request: this is the first task. */
  readonly existing: boolean;
  /** The whole answer (`GET /v1/tasks/{id}`'s form). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Options of a {@link Producer}. */
export interface ProducerOptions extends ClientOptions {
  /**
   * The keys to sign with: a ring with an active key, or what
   * {@link loadKeys} returns. Default: `loadKeys()` (the `SIGNET_SIGNING_*`
   * variables or the key file, as `signet` finds them).
   */
  readonly keys?: KeyRing | LoadedKeys;
  /** Send tasks unsigned and let the server sign them (it logs a warning). Off by default. */
  readonly unsigned?: boolean;
  /** Where warnings go (default: `console.warn`). */
  readonly logger?: Logger;
  /** Most bytes in one batch body of {@link Producer.enqueueBatch} (default 1 000 000). */
  readonly batchBytes?: number;
}

const ID_POOL = 16 * 256;
let idPool = Buffer.alloc(0);
let idAt = ID_POOL;

/** A fresh task id: `task_` and a UUIDv7 in lower-case hex, as the server makes them. */
export function newTaskId(nowMs = Date.now()): string {
  if (idAt >= ID_POOL) {
    idPool = Buffer.alloc(ID_POOL);
    randomFillSync(idPool);
    idAt = 0;
  }
  const b = idPool.subarray(idAt, idAt + 16);
  idAt += 16;
  b.writeUIntBE(nowMs, 0, 6);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x70;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  return `task_${b.toString("hex")}`;
}

function ms(value: number | Date | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const n = value instanceof Date ? value.getTime() : value;
  if (!Number.isSafeInteger(n)) {
    throw new TypeError(`${field} must be unix milliseconds (a whole number) or a valid Date, got ${String(value)}`);
  }
  return n;
}

/** Signs tasks locally and enqueues them over HTTP. */
export class Producer {
  readonly #client: SignetClient;
  readonly #ring: KeyRing | undefined;
  readonly #batchBytes: number;

  constructor(options: ProducerOptions) {
    const logger = options.logger ?? defaultLogger;
    const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    if (!Number.isSafeInteger(batchBytes) || batchBytes < 1024) {
      throw new TypeError(`batchBytes must be a whole number of bytes of at least 1024, got ${String(batchBytes)}`);
    }
    this.#batchBytes = batchBytes;
    this.#client = new SignetClient(options);
    if (options.unsigned === true) {
      logger.warn(
        "signet producer: UNSIGNED: tasks are sent without a signature (unsigned: true); the server signs them, so workers cannot tell what this producer sent",
      );
      this.#ring = undefined;
      return;
    }
    const keys = options.keys ?? loadKeys();
    const ring = "ring" in keys ? keys.ring : keys;
    if ("warnings" in keys) for (const w of keys.warnings) logger.warn(`signet producer: ${w}`);
    if (ring.active === undefined) {
      throw SignetError.config(
        `the producer's keys cannot sign (${ring.describe()}); give a key ring with an active signing key (SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS), or pass unsigned: true to send tasks unsigned`,
      );
    }
    this.#ring = ring;
  }

  /** The HTTP client (for other routes, with the same key). */
  get client(): SignetClient {
    return this.#client;
  }

  /**
   * Signs and enqueues one task. `args` is serialised once with
   * `JSON.stringify` (or taken from `options.argsJson`); those bytes are
   * signed and sent. Throws {@link ApiError} when the server refuses it
   * (`422 invalid_value` names the field).
   */
  async enqueue(queue: string, name: string, args?: unknown, options: EnqueueOptions = {}): Promise<EnqueuedTask> {
    const body = this.#item({ ...options, queue, name, args }, Date.now());
    const answer = await this.#client.send("POST", "v1/tasks", body);
    const task = JSON.parse(answer.body) as Record<string, unknown>;
    return view(task, answer.status === 200);
  }

  /**
   * Signs and enqueues many tasks, in chunks of at most 1 000 and under
   * `batchBytes` (a chunk the server refuses as too large, `413`, is
   * halved), each chunk all or nothing on the server; an error names the
   * item, `tasks[3].…`, counted within its chunk, and says how many items
   * before it were enqueued. Answers in the order given. Each item may
   * carry its own `idempotencyKey`.
   */
  async enqueueBatch(items: readonly BatchItem[]): Promise<EnqueuedTask[]> {
    const out: EnqueuedTask[] = [];
    const now = Date.now();
    const send = async (part: readonly string[]): Promise<void> => {
      const start = out.length;
      let answer;
      try {
        answer = await this.#client.request<{ tasks?: unknown }>("POST", "v1/tasks/batch", `{"tasks":[${part.join(",")}]}`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 413 && part.length > 1) {
          // Over this server's body limit: halve until it fits.
          const half = Math.ceil(part.length / 2);
          await send(part.slice(0, half));
          await send(part.slice(half));
          return;
        }
        if (e instanceof ApiError && start > 0) {
          throw new ApiError(
            e.status,
            e.code,
            `${e.message} (in the chunk of items ${start}..${start + part.length - 1}; the ${start} items before it were enqueued)`,
            e.retryAfterMs,
          );
        }
        throw e;
      }
      const tasks = answer !== null && typeof answer === "object" ? answer.tasks : undefined;
      if (!Array.isArray(tasks) || tasks.length !== part.length) {
        throw new Error(
          `the server answered a batch of ${part.length} task(s) without a list of as many tasks (items ${start}..${start + part.length - 1}; they may have been enqueued)`,
        );
      }
      for (const t of tasks as Array<Record<string, unknown>>) out.push(view(t, t["existing"] === true));
    };
    let chunk: string[] = [];
    let size = 0;
    for (const item of items) {
      const body = this.#item(item, now);
      const bytes = Buffer.byteLength(body);
      if (chunk.length > 0 && (chunk.length >= MAX_BATCH_TASKS || size + bytes + 16 > this.#batchBytes)) {
        await send(chunk);
        chunk = [];
        size = 0;
      }
      chunk.push(body);
      size += bytes + 1;
    }
    if (chunk.length > 0) await send(chunk);
    return out;
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.#client.close();
  }

  /** One task's JSON text, signed unless unsigned. */
  #item(item: BatchItem, now: number): string {
    if (typeof item.queue !== "string" || typeof item.name !== "string") {
      throw new TypeError("a task needs a queue and a name (strings)");
    }
    let argsText: string;
    if (item.argsJson !== undefined) {
      argsText = item.argsJson;
      try {
        JSON.parse(argsText);
      } catch (e) {
        throw new TypeError(`argsJson is not JSON: ${(e as Error).message}`);
      }
    } else {
      const text = JSON.stringify(item.args === undefined ? {} : item.args);
      if (text === undefined) throw new TypeError("args cannot be written as JSON (a function or a symbol)");
      argsText = text;
    }
    const maxAttempts = item.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const headers = item.headers === undefined ? {} : normaliseHeaders(item.headers);
    let notBefore = ms(item.notBefore, "notBefore");
    if (item.delayMs !== undefined) {
      if (notBefore !== undefined) throw new TypeError("give delayMs or notBefore, not both");
      const delay = ms(item.delayMs, "delayMs") ?? 0;
      notBefore = now + delay;
    }
    const expiresAt = ms(item.expiresAt, "expiresAt");
    let body = `{"queue":${JSON.stringify(item.queue)},"task":${JSON.stringify(item.name)},"args":${argsText}`;
    body += `,"max_attempts":${JSON.stringify(maxAttempts)}`;
    if (Object.keys(headers).length > 0) body += `,"headers":${JSON.stringify(headers)}`;
    if (notBefore !== undefined) body += `,"not_before":${notBefore}`;
    if (expiresAt !== undefined) body += `,"expires_at":${expiresAt}`;
    if (item.priority !== undefined) body += `,"priority":${JSON.stringify(item.priority)}`;
    if (item.callbackUrl !== undefined) body += `,"callback_url":${JSON.stringify(item.callbackUrl)}`;
    if (item.idempotencyKey !== undefined) body += `,"idempotency_key":${JSON.stringify(item.idempotencyKey)}`;
    if (this.#ring !== undefined) {
      const id = newTaskId(now);
      const envelope: TaskEnvelope = {
        id,
        queue: item.queue,
        name: item.name,
        args: argsText,
        headers,
        createdAtMs: now,
        notBeforeMs: notBefore ?? null,
        expiresAtMs: expiresAt ?? null,
        maxAttempts,
        callbackUrl: item.callbackUrl ?? null,
      };
      const signature = storedSignature(signEnvelope(envelope, this.#ring));
      body += `,"id":"${id}","created_at":${now},"signature":${JSON.stringify(signature)}`;
    }
    return `${body}}`;
  }

  toString(): string {
    return `Producer(${this.#client.url}, ${this.#ring === undefined ? "unsigned" : `signing with ${this.#ring.active?.id ?? "?"}`})`;
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

function view(task: Record<string, unknown>, existing: boolean): EnqueuedTask {
  return {
    id: String(task["id"]),
    queue: String(task["queue"]),
    name: String(task["name"] ?? task["task"]),
    state: String(task["state"]),
    existing,
    raw: task,
  };
}
