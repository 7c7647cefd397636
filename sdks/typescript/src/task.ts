/**
 * A task as the server hands it out: a claimed task of the pull protocol
 * (docs/worker-protocol.md) or the body of a push request (the same object
 * without the lease fields), and the one check both run before a handler
 * sees anything: the producer's signature, expiry, a handler for the name,
 * and args that parse.
 */
import { Base64Error, decodeStrict } from "./b64.js";
import { checkEnvelope, parseStoredSignature, type TaskEnvelope } from "./envelope.js";
import { SignetError } from "./errors.js";
import type { KeyRing } from "./keys.js";

/** The envelope as the server writes it (snake_case, args as the producer's bytes in `args_b64`). */
export interface WireEnvelope {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly args_b64: string;
  readonly args?: unknown;
  readonly headers?: Readonly<Record<string, string>> | null;
  readonly created_at_ms: number;
  readonly not_before_ms?: number | null;
  readonly expires_at_ms?: number | null;
  readonly max_attempts: number;
  readonly callback_url?: string | null;
}

/** A task as claimed (or pushed): its envelope, signature and attempt. Unknown fields are ignored. */
export interface WireTask {
  readonly lease?: string;
  readonly attempt: number;
  readonly max_attempts: number;
  readonly envelope: WireEnvelope;
  readonly signature: unknown;
}

/** The reasons a worker may make a task dead (the server decides `max-attempts`). */
export type DeadReason = "signature-invalid" | "payload-invalid" | "unknown-task" | "expired";

/** What a task's handler gets besides its args. */
export interface TaskInfo {
  /** The task id (`task_…`). */
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  /** This attempt, from 1. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The task's signed headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The exact bytes the producer signed. */
  readonly argsBytes: Buffer;
  /** The id of the key that verified the task (`undefined` in dev mode, when nothing is verified). */
  readonly keyId: string | undefined;
  /** The signed envelope, rebuilt from the producer's bytes. */
  readonly envelope: TaskEnvelope;
}

/** The outcome of {@link checkTask}: run it, or make it dead with a reason and detail. */
export type TaskVerdict =
  | { readonly ok: true; readonly args: unknown; readonly info: TaskInfo }
  | { readonly ok: false; readonly reason: DeadReason; readonly detail: string };

/** Options of {@link checkTask}. */
export interface CheckTaskOptions {
  /** The keys that verify (public keys are enough for Ed25519). */
  readonly ring: KeyRing;
  /** Whether a handler exists for a task name. */
  readonly hasHandler: (name: string) => boolean;
  /** Now, unix ms. */
  readonly nowMs: number;
  /** Dev mode: the signature is not checked (`SIGNET_DEV=1`). */
  readonly dev?: boolean;
  /**
   * Whether a task must be signed (`SIGNET_SIGNING_REQUIRED`, default
   * true). When false, a task with no signature runs unverified; a signed
   * task is still verified.
   */
  readonly required?: boolean;
}

function dead(reason: DeadReason, detail: string): TaskVerdict {
  return { ok: false, reason, detail };
}

/**
 * Checks a claimed or pushed task, in the protocol's order: its envelope
 * and signature (`signature-invalid`, detail `"<outcome>: <message>"`),
 * then expiry (`expired`), a handler for its name (`unknown-task`), and
 * args that are JSON (`payload-invalid`). The args are parsed from the
 * signed bytes (`args_b64`), never from the server's convenience copy.
 */
export function checkTask(task: WireTask, options: CheckTaskOptions): TaskVerdict {
  const wire = task.envelope;
  if (wire === null || typeof wire !== "object" || typeof wire.args_b64 !== "string") {
    return dead("signature-invalid", "malformed: the task has no envelope with args_b64; is the server a Signet server?");
  }
  let argsBytes: Buffer;
  try {
    const bytes = decodeStrict(wire.args_b64);
    argsBytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (e) {
    if (!(e instanceof Base64Error)) throw e;
    return dead("signature-invalid", `malformed: args_b64 is not base64: ${e.message}`);
  }
  let envelope: TaskEnvelope;
  try {
    envelope = {
      id: wire.id,
      queue: wire.queue,
      name: wire.name,
      args: argsBytes,
      headers: wire.headers ?? {},
      createdAtMs: wire.created_at_ms,
      notBeforeMs: wire.not_before_ms ?? null,
      expiresAtMs: wire.expires_at_ms ?? null,
      maxAttempts: wire.max_attempts,
      callbackUrl: wire.callback_url ?? null,
    };
  } catch (e) {
    return dead("signature-invalid", `malformed: ${(e as Error).message}`);
  }
  let keyId: string | undefined;
  const unsigned = task.signature === null || task.signature === undefined;
  if (options.dev !== true && !(unsigned && options.required === false)) {
    let verdict;
    try {
      const signature = unsigned ? null : parseStoredSignature(task.signature);
      verdict = checkEnvelope(envelope, signature, options.ring);
    } catch (e) {
      if (e instanceof SignetError) {
        const reason = e.isVerification ? e.reason : "malformed";
        return dead("signature-invalid", `${reason}: ${e.message}`);
      }
      return dead("signature-invalid", `malformed: the envelope cannot be encoded: ${(e as Error).message}`);
    }
    if (!verdict.ok) return dead("signature-invalid", `${verdict.reason}: ${verdict.message}`);
    keyId = verdict.keyId;
  }
  const expires = wire.expires_at_ms;
  if (typeof expires === "number" && expires <= options.nowMs) {
    return dead("expired", `the task expired at ${when(expires)}, before it could run`);
  }
  if (!options.hasHandler(wire.name)) {
    return dead("unknown-task", `this worker has no handler for task ${JSON.stringify(wire.name)}`);
  }
  let args: unknown;
  try {
    args = JSON.parse(argsBytes.toString("utf8"));
  } catch (e) {
    return dead("payload-invalid", `args are not JSON (${argsBytes.length} bytes): ${(e as Error).message}`);
  }
  return {
    ok: true,
    args,
    info: {
      id: wire.id,
      queue: wire.queue,
      name: wire.name,
      attempt: task.attempt,
      maxAttempts: task.max_attempts,
      headers: wire.headers ?? {},
      argsBytes,
      keyId,
      envelope,
    },
  };
}

/** A unix-ms time as ISO text, or the number itself when no Date can hold it. */
function when(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms after 1970` : d.toISOString();
}

/** Longest `retryAfterMs` of a {@link TaskError}: one year, as the Python SDK's `Retry`. */
export const MAX_RETRY_AFTER_MS = 365 * 86_400_000;

/**
 * Thrown by a handler to control what happens to its task: retry after a
 * given time, or make the task dead now (`payload-invalid`: args the
 * handler cannot use). Any other error is an ordinary failed attempt,
 * retried with the server's backoff.
 */
export class TaskError extends Error {
  /** Retry after this many ms instead of the server's backoff. */
  readonly retryAfterMs: number | undefined;
  /** Make the task dead now with `payload-invalid` (no retry). */
  readonly dead: boolean;

  /** Throws a RangeError when `retryAfterMs` is not a number of ms from 0 to one year. */
  constructor(message: string, options: { retryAfterMs?: number; dead?: boolean } = {}) {
    super(message);
    this.name = "TaskError";
    const after = options.retryAfterMs;
    if (after !== undefined && (typeof after !== "number" || !Number.isFinite(after) || after < 0 || after > MAX_RETRY_AFTER_MS)) {
      throw new RangeError(`retryAfterMs is ${String(after)}; it must be a number of ms from 0 to one year (${MAX_RETRY_AFTER_MS})`);
    }
    this.retryAfterMs = after;
    this.dead = options.dead ?? false;
  }
}

/**
 * The retry delay a handler's error asks for, whole ms from 0 to one year,
 * or `undefined` for the server's backoff. Anything that is not a finite
 * number (a `TaskError` changed after construction) is ignored, so a
 * report never carries a value JSON cannot hold.
 */
export function retryAfterOf(e: unknown): number | undefined {
  if (!(e instanceof TaskError)) return undefined;
  const after = e.retryAfterMs;
  if (typeof after !== "number" || !Number.isFinite(after)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.floor(after)));
}

/** Longest error text kept, in UTF-16 units (the server keeps 1 024 bytes). */
const MAX_ERROR_TEXT = 1000;

/**
 * A handler's error as the text the server records (an excerpt; never an
 * object dump), cut at a code-point boundary so that no lone surrogate
 * (which JSON parsers refuse) reaches the server.
 */
export function errorText(e: unknown): string {
  let text: string;
  try {
    text = e instanceof Error ? `${e.name === "Error" ? "" : `${e.name}: `}${e.message}` : String(e);
  } catch {
    text = "an error that cannot be written as text";
  }
  if (text.length <= MAX_ERROR_TEXT) return text;
  let end = MAX_ERROR_TEXT;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // a high surrogate whose pair would be cut off
  return `${text.slice(0, end)}…`;
}

/**
 * A handler's result as JSON text (`null` for `undefined`), or an error
 * message when it cannot be written as JSON (a BigInt, a cycle).
 */
export function resultJson(result: unknown): { ok: true; json: string } | { ok: false; error: string } {
  try {
    const json = JSON.stringify(result === undefined ? null : result);
    // A function or symbol alone stringifies to undefined.
    return json === undefined ? { ok: true, json: "null" } : { ok: true, json };
  } catch (e) {
    return { ok: false, error: `the handler's result cannot be written as JSON: ${(e as Error).message}` };
  }
}
