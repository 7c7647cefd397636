/**
 * The endpoint side of a push queue (docs: PUSH contract in the README):
 * Signet's dispatcher POSTs each task to an endpoint as a Standard Webhooks
 * request whose body is a claimed task without the lease. This module
 * verifies the hop (the target's secret, 5 minutes' tolerance) and the
 * producer (the envelope's signature with the task key ring), runs the
 * handler, and answers — always signing the answer when it holds the
 * secret, so an operator may require signed answers.
 *
 * {@link handlePush} is framework-free (`{headers, body}` in,
 * `{status, headers, body}` out); {@link createPushListener} adapts it to
 * `node:http`. Express and others: see `examples/`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

import { SignetError } from "./errors.js";
import { KeyRing } from "./keys.js";
import type { LoadedKeys } from "./load.js";
import { defaultLogger, type Logger } from "./log.js";
import { TaskError, checkTask, errorText, resultJson, retryAfterOf, type TaskInfo, type WireTask } from "./task.js";
import { DEFAULT_TOLERANCE_SECS, STANDARD_HEADERS, parseWebhookSecret, signWebhook, verifyWebhook } from "./webhooks.js";

/** A push handler: the parsed args and the task's details; its return value (JSON) is the task's result. */
export type PushHandler = (args: any, ctx: PushContext) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What a push handler gets besides its args. */
export interface PushContext extends TaskInfo {
  /** The hop's `webhook-id` (the task id). */
  readonly webhookId: string;
}

/** Options of {@link handlePush}. */
export interface PushOptions {
  /** The target's secret (`whsec_…`, or `whpk_…` for an Ed25519 target: then answers cannot be signed), or a ring of them. */
  readonly secret: string | KeyRing;
  /** The keys that verify the producers' signatures (public keys suffice for Ed25519), or what `loadKeys()` returns. */
  readonly keys: KeyRing | LoadedKeys;
  /** Handlers by task name. */
  readonly handlers: Readonly<Record<string, PushHandler>> | ReadonlyMap<string, PushHandler>;
  /** Largest accepted |now − webhook-timestamp|, seconds (default 300). */
  readonly toleranceSecs?: number;
  /** The clock, unix ms (default `Date.now`). */
  readonly now?: () => number;
  /** Where refusals are logged (default: the console). */
  readonly logger?: Logger;
}

/** The request as received: its headers (any case) and the raw body, exactly as sent. */
export interface PushRequest {
  readonly headers:
    | { readonly [name: string]: string | readonly string[] | undefined }
    | { get(name: string): string | null };
  readonly body: Uint8Array | string;
}

/** The answer to send. */
export interface PushResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

interface Compiled {
  readonly hop: KeyRing;
  readonly ring: KeyRing;
  readonly dev: boolean;
  readonly required: boolean;
  readonly handlers: ReadonlyMap<string, PushHandler>;
  readonly tolerance: number;
  readonly now: () => number;
  readonly log: Logger;
}

const compiled = new WeakMap<PushOptions, Compiled>();

function compile(options: PushOptions): Compiled {
  const cached = compiled.get(options);
  if (cached !== undefined) return cached;
  const hop = typeof options.secret === "string" ? KeyRing.single(parseWebhookSecret(options.secret)) : options.secret;
  const keys = options.keys;
  const ring = "ring" in keys ? keys.ring : keys;
  const dev = "dev" in keys ? keys.dev : false;
  // A bare key ring means signatures are required; loadKeys() says (SIGNET_SIGNING_REQUIRED).
  const required = "required" in keys ? keys.required : true;
  if (!dev && required && ring.keys.length === 0) {
    throw SignetError.config("the push endpoint has no keys to verify tasks with; give the producers' keys (public keys suffice for Ed25519)");
  }
  const handlers =
    options.handlers instanceof Map
      ? (options.handlers as ReadonlyMap<string, PushHandler>)
      : new Map(Object.entries(options.handlers as Record<string, PushHandler>));
  const log = options.logger ?? defaultLogger;
  if (!dev && !required) {
    log.warn("signet push: SIGNET_SIGNING_REQUIRED is off: UNSIGNED tasks run without any check of who sent them (signed tasks are still verified)");
  }
  const out: Compiled = {
    hop,
    ring,
    dev,
    required,
    handlers,
    tolerance: options.toleranceSecs ?? DEFAULT_TOLERANCE_SECS,
    now: options.now ?? Date.now,
    log,
  };
  compiled.set(options, out);
  return out;
}

function header(headers: PushRequest["headers"], name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as { readonly [name: string]: string | readonly string[] | undefined };
  let value = record[name];
  if (value === undefined) {
    for (const k of Object.keys(record)) {
      if (k.toLowerCase() === name) {
        value = record[k];
        break;
      }
    }
  }
  return Array.isArray(value) ? value.join(" ") : (value as string | undefined);
}

/**
 * Verifies and runs one pushed task. Answers: `401` when the hop's
 * signature or timestamp is wrong (nothing runs); `400` for a body that is
 * not a pushed task; `422` `{"dead": {reason, detail}}` when the task must
 * not run (`signature-invalid`, `expired`, `unknown-task`,
 * `payload-invalid`); `500` when the handler throws (retried by Signet;
 * a {@link TaskError} with `retryAfterMs` sets `Retry-After`); `200` with
 * the handler's result as JSON. Every answer is signed with the target's
 * secret (`webhook-id`, `webhook-timestamp`, `webhook-signature` over
 * `{request webhook-id}.{timestamp}.{body}`) when the secret can sign.
 */
export async function handlePush(request: PushRequest, options: PushOptions): Promise<PushResponse> {
  const c = compile(options);
  const msgId = header(request.headers, STANDARD_HEADERS.id) ?? "";
  const nowMs = c.now();
  // Signed with the time of answering, not of arrival: a slow handler must not make its answer look stale.
  const answer = (status: number, body: string, extra?: Record<string, string>): PushResponse =>
    signed(c, msgId, c.now(), status, body, extra);
  try {
    verifyWebhook(
      c.hop,
      {
        [STANDARD_HEADERS.id]: msgId,
        [STANDARD_HEADERS.timestamp]: header(request.headers, STANDARD_HEADERS.timestamp),
        [STANDARD_HEADERS.signature]: header(request.headers, STANDARD_HEADERS.signature),
      },
      request.body,
      { now: Math.floor(nowMs / 1000), toleranceSecs: c.tolerance },
    );
  } catch (e) {
    if (!(e instanceof SignetError) || !e.isVerification) throw e;
    c.log.warn(`signet push: refused a request: webhook signature ${e.reason}: ${e.message}`);
    return answer(401, errorBody("unauthorized", `webhook signature ${e.reason}: ${e.message}`));
  }
  let task: WireTask;
  try {
    const text = typeof request.body === "string" ? request.body : Buffer.from(request.body).toString("utf8");
    task = JSON.parse(text) as WireTask;
    if (task === null || typeof task !== "object" || task.envelope === null || typeof task.envelope !== "object") {
      throw new Error("it has no envelope");
    }
  } catch (e) {
    return answer(400, errorBody("bad_request", `the body is not a pushed task: ${errorText(e)}`));
  }
  if (task.envelope.id !== msgId) {
    return answer(400, errorBody("bad_request", "webhook-id does not name the task in the body"));
  }
  const verdict = checkTask(task, { ring: c.ring, hasHandler: (n) => c.handlers.has(n), nowMs, dev: c.dev, required: c.required });
  if (!verdict.ok) {
    c.log.warn(`signet push: task ${msgId}: dead ${verdict.reason}: ${verdict.detail}`);
    return answer(422, JSON.stringify({ dead: { reason: verdict.reason, detail: verdict.detail } }));
  }
  const handler = c.handlers.get(verdict.info.name) as PushHandler;
  let result: unknown;
  try {
    result = await handler(verdict.args, { ...verdict.info, webhookId: msgId });
  } catch (e) {
    if (e instanceof TaskError && e.dead) {
      return answer(422, JSON.stringify({ dead: { reason: "payload-invalid", detail: errorText(e) } }));
    }
    const extra: Record<string, string> = {};
    const after = retryAfterOf(e);
    if (after !== undefined) extra["retry-after"] = String(Math.ceil(after / 1000));
    return answer(500, errorBody("task_failed", errorText(e)), extra);
  }
  const out = resultJson(result);
  if (!out.ok) return answer(500, errorBody("task_failed", out.error));
  return answer(200, out.json);
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

function signed(
  c: Compiled,
  msgId: string,
  nowMs: number,
  status: number,
  body: string,
  extra: Record<string, string> | undefined,
): PushResponse {
  const headers: Record<string, string> = { "content-type": "application/json", ...extra };
  if (c.hop.active !== undefined && msgId.length > 0 && !/[\u0000-\u001f\u007f]/.test(msgId)) {
    const ts = Math.floor(nowMs / 1000);
    headers[STANDARD_HEADERS.id] = msgId;
    headers[STANDARD_HEADERS.timestamp] = String(ts);
    headers[STANDARD_HEADERS.signature] = signWebhook(c.hop, msgId, ts, body);
  }
  return { status, headers, body };
}

/** Options of {@link createPushListener}. */
export interface PushListenerOptions extends PushOptions {
  /** Largest accepted body, bytes (default 4 MiB; larger ones answer 413). */
  readonly maxBodyBytes?: number;
}

/**
 * A `node:http` request listener serving {@link handlePush} on every POST
 * (use it as `http.createServer(createPushListener({...}))`, or call it from
 * your own router for one path).
 */
export function createPushListener(options: PushListenerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  compile(options); // refuse bad options now, not on the first request
  const limit = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const log = options.logger ?? defaultLogger;
  return (req, res) => {
    const send = (out: PushResponse): void => {
      res.writeHead(out.status, { ...out.headers, "content-length": Buffer.byteLength(out.body) });
      res.end(out.body);
    };
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      send({ status: 405, headers: { "content-type": "application/json" }, body: errorBody("method_not_allowed", "a push endpoint takes POST") });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on("error", () => res.destroy());
    req.on("end", () => {
      if (over) {
        send({ status: 413, headers: { "content-type": "application/json" }, body: errorBody("payload_too_large", `the body is over ${limit} bytes`) });
        return;
      }
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      handlePush({ headers: req.headers, body }, options).then(send, (e: unknown) => {
        log.error(`signet push: ${errorText(e)}`);
        send({ status: 500, headers: { "content-type": "application/json" }, body: errorBody("internal", "the push endpoint failed; see its log") });
      });
    });
  };
}
