/**
 * A publisher of messages: signed HTTP deliveries (webhooks) that
 * `signet serve` makes for you (`POST /v1/messages`,
 * `POST /v1/messages/batch`). The server signs each delivery, with the
 * target's secret when the message names a target, else with its own key
 * ring; nothing is signed here, so a publisher needs an API key with the
 * `publish` scope and no signing keys.
 *
 * Field rules (URLs, limits, signature profiles) are the server's: it
 * refuses a wrong field with `422` and names it. This module checks only
 * what it must to write the request: that a message is an object of the
 * known fields, with a body and times it can put in JSON.
 */
import { ApiError, SignetClient, type ClientOptions, type RequestOptions } from "./client.js";
import { DEFAULT_BATCH_BYTES } from "./producer.js";

/** Most messages in one `POST /v1/messages/batch`; {@link MessagePublisher.publishBatch} splits larger lists. */
export const MAX_BATCH_MESSAGES = 1000;
/** The variable a publisher reads the server's URL from when `url` is not given. */
export const URL_VAR = "SIGNET_URL";
/** The variable a publisher reads its API key from when `apiKey` is not given. */
export const API_KEY_VAR = "SIGNET_API_KEY";

/**
 * How a delivery is signed: `standard` (Standard Webhooks, the default),
 * `svix`, or a provider's scheme (`stromboli`, `krafter`, `github`,
 * `stripe`), which needs a target (its secret signs). The names listed are
 * the ones this SDK knows; any other is sent as it is, so a profile a newer
 * server adds works without a new SDK, and one the server does not know is
 * refused by it (`422` naming `signature_profile`).
 */
// `string & {}` keeps the known names as editor suggestions while allowing others.
export type SignatureProfile = "standard" | "svix" | "stromboli" | "krafter" | "github" | "stripe" | (string & {});

/** One message to publish. Times are unix ms, `Date`s or (for `notBefore`) RFC 3339 text. */
export interface Message {
  /** Where to deliver: an `http://` or `https://` URL (with a target, under its URL prefix). */
  readonly url: string;
  /** The HTTP method (default `POST`). */
  readonly method?: string;
  /** Headers to send. Signature headers, `Host`, `Content-Length` and hop-by-hop headers are refused by the server. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * The body: a string is sent as it is; any other JSON value is sent as
   * its JSON text, with `content-type: application/json` unless `headers`
   * set one. Absent: no body.
   */
  readonly body?: unknown;
  /** A target's id (`tgt_…`) or name: its secret signs, its limits apply. Without one the server's key ring signs. */
  readonly target?: string;
  /** How the delivery is signed (default `standard`). */
  readonly signatureProfile?: SignatureProfile;
  /** Where a signed callback goes when the message is delivered or dead. */
  readonly callbackUrl?: string;
  /** First attempt no sooner than this many ms from now (0 to one year). */
  readonly delayMs?: number;
  /** First attempt no sooner than this time: unix ms, a `Date`, or RFC 3339 text. */
  readonly notBefore?: number | Date | string;
  /** Attempts allowed, 1–100 (default: the retry schedule's steps + 1). */
  readonly maxAttempts?: number;
  /** Waits between attempts, ms (default the server's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
  readonly retryScheduleMs?: readonly number[];
  /**
   * Makes publishing exactly-once per key, for this API key: the same
   * message again answers the first one (`existing: true`); another
   * message under the same key is refused (`409 idempotency_conflict`).
   * With a key, a `503` or a broken connection is retried safely.
   */
  readonly idempotencyKey?: string;
}

/** A message as the server answered it. */
export interface PublishedMessage {
  /** The message id, `msg_…`. */
  readonly id: string;
  /** `available` or `scheduled` for a new message; an existing one's current state (`succeeded` once delivered, …). */
  readonly state: string;
  /** `true` when the idempotency key was already used with the same message: this is the first message, not a new one. */
  readonly existing: boolean;
  /** The whole answer (`GET /v1/messages/{id}`'s form, without the attempts). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Options of one {@link MessagePublisher.publish}. */
export interface PublishOptions {
  /** Aborts the request (and any wait before a retry). */
  readonly signal?: AbortSignal;
  /** Time the request may take, ms. */
  readonly timeoutMs?: number;
}

/** Options of a {@link MessagePublisher}. */
export interface MessagePublisherOptions extends Omit<ClientOptions, "url" | "apiKey"> {
  /** The server, e.g. `http://127.0.0.1:8787`. Default: `SIGNET_URL`. */
  readonly url?: string;
  /** An API key with the `publish` (or `work`, `admin`) scope. Default: `SIGNET_API_KEY`. */
  readonly apiKey?: string;
  /** Where `SIGNET_URL` and `SIGNET_API_KEY` are read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Most bytes in one batch body of {@link MessagePublisher.publishBatch} (default 1 000 000, as the producer's). */
  readonly batchBytes?: number;
}

/**
 * A part of {@link MessagePublisher.publishBatch} was refused (or failed).
 * The message says which message, why, and what was published before it;
 * `status` and `code` are the server's, as on any {@link ApiError}.
 */
export class PublishBatchError extends ApiError {
  /** The refused message's index in the whole list, when the server named one. */
  readonly index: number | undefined;
  /** The first and last index of the part that failed. */
  readonly part: { readonly first: number; readonly last: number };
  /** The messages published by earlier parts, in order (indices `0 … published.length - 1`). */
  readonly published: readonly PublishedMessage[];
  /** Whether the failed part may have been stored anyway (no answer, or a `5xx`): publish it again with idempotency keys to be sure. */
  readonly maybeStored: boolean;

  constructor(
    cause: ApiError,
    message: string,
    index: number | undefined,
    part: { readonly first: number; readonly last: number },
    published: readonly PublishedMessage[],
  ) {
    super(cause.status, cause.code, message, cause.retryAfterMs);
    this.name = "PublishBatchError";
    this.cause = cause;
    this.index = index;
    this.part = part;
    this.published = published;
    this.maybeStored = cause.status === 0 || cause.status >= 500;
  }

  override toString(): string {
    return `PublishBatchError: ${this.status} ${this.code}: ${this.message}`;
  }
}

const FIELDS: ReadonlyArray<readonly [keyof Message, string]> = [
  ["url", "url"],
  ["method", "method"],
  ["headers", "headers"],
  ["body", "body"],
  ["target", "target"],
  ["signatureProfile", "signature_profile"],
  ["callbackUrl", "callback_url"],
  ["delayMs", "delay_ms"],
  ["notBefore", "not_before"],
  ["maxAttempts", "max_attempts"],
  ["retryScheduleMs", "retry_schedule_ms"],
  ["idempotencyKey", "idempotency_key"],
];
const KNOWN = new Set<string>(FIELDS.map(([name]) => name));
const FIELD_LIST = FIELDS.map(([name]) => name).join(", ");

/**
 * Publishes messages to `signet serve`, one at a time or in batches. The
 * server signs every delivery (signed is the default and cannot be turned
 * off here).
 */
export class MessagePublisher {
  readonly #client: SignetClient;
  readonly #batchBytes: number;

  constructor(options: MessagePublisherOptions = {}) {
    const env = options.env ?? process.env;
    const url = options.url ?? env[URL_VAR];
    const apiKey = options.apiKey ?? env[API_KEY_VAR];
    if (url === undefined || url === "") {
      throw new TypeError(`no server URL: pass url (e.g. http://127.0.0.1:8787) or set ${URL_VAR}`);
    }
    if (apiKey === undefined || apiKey === "") {
      throw new TypeError(
        `no API key: pass apiKey or set ${API_KEY_VAR} (make one with \`signet api-keys create --name app --scope publish\`)`,
      );
    }
    const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    if (!Number.isSafeInteger(batchBytes) || batchBytes < 1024) {
      throw new TypeError(`batchBytes must be a whole number of bytes of at least 1024, got ${String(batchBytes)}`);
    }
    this.#batchBytes = batchBytes;
    this.#client = new SignetClient({ ...options, url, apiKey });
  }

  /** The HTTP client (for other routes, e.g. `GET v1/messages/{id}`, with the same key). */
  get client(): SignetClient {
    return this.#client;
  }

  /**
   * Publishes one message: `POST /v1/messages`. Answers the new message
   * (`existing: false`), or the first one when its `idempotencyKey` was
   * used before with the same message (`existing: true`). Throws
   * {@link ApiError} when the server refuses it: `422 invalid_value` names
   * the field (`url: …`), `409 idempotency_conflict` when the key was used
   * with another message, `503` when the server cannot sign. A
   * `TypeError` when the message cannot be written as a request.
   *
   * `429` is retried with backoff; a `503` or a broken connection only
   * when the message has an `idempotencyKey` (without one the message
   * may have been stored, and publishing it again would deliver it twice).
   */
  async publish(message: Message, options: PublishOptions = {}): Promise<PublishedMessage> {
    const body = messageJson(message, "message");
    const request: RequestOptions = {
      retry: message.idempotencyKey !== undefined ? true : "rate-limited",
      signal: options.signal,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    };
    const answer = await this.#client.send("POST", "v1/messages", body, request);
    return view(parseAnswer(answer.body, "POST /v1/messages"), answer.status === 200);
  }

  /**
   * Publishes many messages: `POST /v1/messages/batch` in parts of at most
   * 1 000 messages and `batchBytes` bytes, each part all or none on the
   * server, in order. Answers every message in the order given, each with
   * `existing` as {@link publish}'s. Each message may carry its own
   * `idempotencyKey`.
   *
   * When a part is refused (or fails), throws {@link PublishBatchError}:
   * its message is the server's with the item's index counted in the
   * whole list (`messages[1003].url: …`) and says which messages earlier
   * parts published; `published` holds them, and nothing of the refused
   * part or after it was stored (unless `maybeStored`: no answer or a
   * `5xx`). A part the server refuses as too large (`413`) is halved and
   * sent again. Retries are as {@link publish}'s: a `503` or a broken
   * connection only when every message of the part has an idempotency key.
   */
  async publishBatch(messages: readonly Message[]): Promise<PublishedMessage[]> {
    if (!Array.isArray(messages)) throw new TypeError("publishBatch takes an array of messages");
    const out: PublishedMessage[] = [];
    // Written first, all of them: a message that cannot be written is
    // refused before anything is published.
    const items = messages.map((m, i) => ({ json: messageJson(m, `messages[${i}]`), keyed: m.idempotencyKey !== undefined }));

    const send = async (first: number, part: typeof items): Promise<void> => {
      let answer: { messages?: unknown } | null;
      try {
        answer = await this.#client.request<{ messages?: unknown }>(
          "POST",
          "v1/messages/batch",
          `{"messages":[${part.map((p) => p.json).join(",")}]}`,
          { retry: part.every((p) => p.keyed) ? true : "rate-limited" },
        );
      } catch (e) {
        if (e instanceof ApiError && e.status === 413 && part.length > 1) {
          // Over this server's body limit: halve until it fits.
          const half = Math.ceil(part.length / 2);
          await send(first, part.slice(0, half));
          await send(first + half, part.slice(half));
          return;
        }
        if (e instanceof ApiError) throw batchError(e, first, part.length, out);
        throw e;
      }
      const got = answer !== null && typeof answer === "object" ? answer.messages : undefined;
      if (!Array.isArray(got) || got.length !== part.length) {
        const cause = new ApiError(
          0,
          "malformed_answer",
          `the server answered a batch of ${part.length} message(s) without a list of as many messages`,
        );
        throw batchError(cause, first, part.length, out);
      }
      for (const m of got as unknown[]) {
        const record = m !== null && typeof m === "object" ? (m as Record<string, unknown>) : {};
        out.push(view(record, record["existing"] === true));
      }
    };

    let first = 0;
    let size = 0;
    for (let i = 0; i < items.length; i++) {
      const bytes = Buffer.byteLength((items[i] as { json: string }).json);
      // `{"messages":[` `]}` and a comma a message.
      if (i > first && (i - first >= MAX_BATCH_MESSAGES || size + bytes + 16 > this.#batchBytes)) {
        await send(first, items.slice(first, i));
        first = i;
        size = 0;
      }
      size += bytes + 1;
    }
    if (items.length > first) await send(first, items.slice(first));
    return out;
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.#client.close();
  }

  toString(): string {
    return `MessagePublisher(${this.#client.url}, api key redacted)`;
  }
  toJSON(): object {
    return { url: this.#client.url, apiKey: "[redacted]" };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** One message's JSON text, the API's field names; `where` names it in errors. */
function messageJson(message: Message, where: string): string {
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw new TypeError(`${where} must be an object with at least a url, got ${message === null ? "null" : typeof message}`);
  }
  for (const key of Object.keys(message)) {
    if (!KNOWN.has(key)) {
      throw new TypeError(`${where} has an unknown field ${JSON.stringify(key)}; the fields are ${FIELD_LIST}`);
    }
  }
  if (typeof message.url !== "string") {
    throw new TypeError(`${where}.url is required: the http:// or https:// URL to deliver to`);
  }
  const wire: Record<string, unknown> = {};
  for (const [name, field] of FIELDS) {
    const value = message[name];
    if (value === undefined) continue;
    wire[field] = value;
  }
  if (message.body !== undefined) {
    const body = message.body;
    if (body instanceof Uint8Array || body instanceof ArrayBuffer) {
      throw new TypeError(`${where}.body is bytes; give a string (sent as it is) or a JSON value (sent as JSON)`);
    }
    if (typeof body !== "string") {
      let text: string | undefined;
      try {
        text = JSON.stringify(body);
      } catch (e) {
        throw new TypeError(`${where}.body cannot be written as JSON: ${(e as Error).message}`);
      }
      if (text === undefined) {
        throw new TypeError(`${where}.body cannot be written as JSON (a function, a symbol or undefined); give a string or a JSON value`);
      }
    }
  }
  if (message.notBefore instanceof Date) {
    const at = message.notBefore.getTime();
    if (Number.isNaN(at)) throw new TypeError(`${where}.notBefore is an invalid Date`);
    wire["not_before"] = at;
  }
  try {
    return JSON.stringify(wire);
  } catch (e) {
    throw new TypeError(`${where} cannot be written as JSON: ${(e as Error).message}`);
  }
}

/**
 * The error of a failed part: the server's message with every
 * `messages[i]` counted in the whole list, and what earlier parts published.
 */
function batchError(cause: ApiError, first: number, count: number, published: readonly PublishedMessage[]): PublishBatchError {
  let index: number | undefined;
  const rebased = cause.message.replace(/\bmessages\[(\d+)\]/g, (_, i: string) => {
    const absolute = first + Number(i);
    index ??= absolute;
    return `messages[${absolute}]`;
  });
  const last = first + count - 1;
  const range = count === 1 ? `message ${first}` : `messages ${first}..${last}`;
  const before =
    published.length === 0
      ? "no message was published before it"
      : `messages 0..${published.length - 1} were published by earlier requests, in PublishBatchError.published`;
  const stored =
    cause.status === 0 || cause.status >= 500
      ? `the part of ${range} may have been published (no answer or a server error): publish it again with idempotency keys to be sure`
      : `nothing of the part of ${range} was published, nor anything after it`;
  return new PublishBatchError(cause, `${rebased} (${stored}; ${before})`, index, { first, last }, published);
}

function parseAnswer(body: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ApiError(0, "malformed_answer", `the server's answer to ${what} is not JSON`);
  }
  if (parsed === null || typeof parsed !== "object") {
    throw new ApiError(0, "malformed_answer", `the server's answer to ${what} is not a message`);
  }
  return parsed as Record<string, unknown>;
}

function view(message: Record<string, unknown>, existing: boolean): PublishedMessage {
  return { id: String(message["id"]), state: String(message["state"]), existing, raw: message };
}
