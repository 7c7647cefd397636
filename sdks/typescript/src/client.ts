/**
 * A small HTTP client for `signet serve`'s JSON API: base URL, API key,
 * JSON bodies, errors as {@link ApiError}, and bounded retries of `429`
 * and `503` (and of connections that break) honouring `Retry-After`.
 *
 * It speaks `node:http` / `node:https` over a keep-alive agent: measured on
 * the worker's claim/complete loop it was faster than the global `fetch`
 * (see the README's "Speed" section). The API key is kept in a private
 * field and never appears in messages, `String()`, `JSON.stringify` or
 * `util.inspect`.
 */
import http from "node:http";
import https from "node:https";

/** An error answer of the API: `{"error": {"code", "message"}}` with its HTTP status. */
export class ApiError extends Error {
  /** The HTTP status (0 when no answer came: the connection failed). */
  readonly status: number;
  /** The stable code (`lease_lost`, `invalid_value`, `unauthorized`, …; `network` when no answer came). */
  readonly code: string;
  /** `Retry-After` of the answer, milliseconds, when it had one. */
  readonly retryAfterMs: number | undefined;

  constructor(status: number, code: string, message: string, retryAfterMs?: number) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  override toString(): string {
    return `ApiError: ${this.status} ${this.code}: ${this.message}`;
  }
}

/** Options of {@link SignetClient}. */
export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:8787` (a path prefix is kept). */
  readonly url: string;
  /** An API key, `sk_…`. */
  readonly apiKey: string;
  /** Retries of a `429`, `503` or broken connection before giving up (default 5). */
  readonly maxRetries?: number;
  /** The longest single wait between retries, ms (default 10 000). */
  readonly maxBackoffMs?: number;
  /** Time one request may take, ms, when the call gives none (default 60 000). */
  readonly timeoutMs?: number;
  /** Connections kept open to the server (default 16). */
  readonly maxSockets?: number;
}

/** Options of one request. */
export interface RequestOptions {
  /** Extra headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time this request may take, ms. */
  readonly timeoutMs?: number;
  /** Aborts the request (and any wait before a retry). */
  readonly signal?: AbortSignal | undefined;
  /**
   * What to retry: `true` (default) `429`, `503` and broken connections;
   * `"rate-limited"` only `429` (refused before anything was done, so
   * safe for a request that must not be made twice); `false` nothing.
   */
  readonly retry?: boolean | "rate-limited";
}

const VERSION = "0.1.0";
const USER_AGENT = `signet-sdk-typescript/${VERSION} node/${process.versions.node}`;
const NETWORK_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "ETIMEDOUT", "ECONNABORTED", "EAI_AGAIN"]);

interface RawAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** `Retry-After` as milliseconds: delta seconds or an HTTP date; `undefined` when absent or unreadable. */
export function retryAfterMs(value: string | string[] | undefined, nowMs = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const t = text.trim();
  if (/^[0-9]{1,9}$/.test(t)) return Number(t) * 1000;
  const at = Date.parse(t);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** A client of one server with one API key. */
export class SignetClient {
  readonly #base: URL;
  readonly #auth: string;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;
  readonly #maxRetries: number;
  readonly #maxBackoffMs: number;
  readonly #timeoutMs: number;
  /** Resolved URLs of the paths used (a worker uses four, over and over). */
  readonly #urls = new Map<string, URL>();

  constructor(options: ClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new TypeError(`server url ${JSON.stringify(options.url)} is not a URL; give e.g. http://127.0.0.1:8787`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new TypeError(`server url must start with http:// or https://, got ${base.protocol}//`);
    }
    if (typeof options.apiKey !== "string" || !options.apiKey.startsWith("sk_")) {
      throw new TypeError("apiKey must be a Signet API key (sk_…); create one with `signet api-keys create --scope work`");
    }
    if (/[\s\u0000-\u001f]/.test(options.apiKey)) {
      throw new TypeError("apiKey contains spaces or control characters; copy the sk_… key exactly");
    }
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.#base = base;
    this.#auth = `Bearer ${options.apiKey}`;
    const tls = base.protocol === "https:";
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16, scheduling: "lifo" as const };
    this.#agent = tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = tls ? https.request : http.request;
    this.#maxRetries = Math.max(0, options.maxRetries ?? 5);
    this.#maxBackoffMs = Math.max(0, options.maxBackoffMs ?? 10_000);
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** The server's base URL. */
  get url(): string {
    return this.#base.href;
  }

  /**
   * Sends `body` (JSON text, or a value to `JSON.stringify`) and returns the
   * parsed JSON answer of a 2xx. Any other answer throws {@link ApiError}
   * after the retries `429`/`503` get.
   */
  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const text = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const answer = await this.send(method, path, text, options);
    if (answer.body.length === 0) return null as T;
    try {
      return JSON.parse(answer.body) as T;
    } catch {
      throw new ApiError(answer.status, "malformed_answer", `the server's answer to ${method} /${path} is not JSON`);
    }
  }

  /** As {@link request}, giving the status and raw body of a 2xx. */
  async send(method: string, path: string, body: string | undefined, options: RequestOptions = {}): Promise<RawAnswer> {
    const retry = options.retry ?? true;
    for (let attempt = 0; ; attempt++) {
      let answer: RawAnswer;
      try {
        answer = await this.#once(method, path, body, options);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        const network = e instanceof Error && typeof code === "string" && NETWORK_CODES.has(code);
        if (!network) throw e;
        const error = new ApiError(0, "network", `${method} /${path}: ${(e as Error).message}`);
        if (retry !== true || attempt >= this.#maxRetries) throw error;
        await this.#wait(attempt, undefined, options.signal);
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) return answer;
      const error = toApiError(answer);
      const retried = answer.status === 429 ? retry !== false : answer.status === 503 && retry === true;
      if (!retried || attempt >= this.#maxRetries) throw error;
      await this.#wait(attempt, error.retryAfterMs, options.signal);
    }
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  async #wait(attempt: number, after: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    // Full jitter over an exponential ceiling, unless the server said when.
    const ceiling = Math.min(this.#maxBackoffMs, 100 * 2 ** attempt);
    const ms = after !== undefined ? Math.min(after, this.#maxBackoffMs) : Math.random() * ceiling;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        signal?.removeEventListener("abort", aborted);
        resolve();
      }
      function aborted(): void {
        clearTimeout(timer);
        reject(abortError(signal));
      }
      if (signal?.aborted === true) aborted();
      else signal?.addEventListener("abort", aborted, { once: true });
    });
  }

  #once(method: string, path: string, body: string | undefined, options: RequestOptions): Promise<RawAnswer> {
    let url = this.#urls.get(path);
    if (url === undefined) {
      url = new URL(path.replace(/^\//, ""), this.#base);
      if (this.#urls.size < 256) this.#urls.set(path, url);
    }
    const headers: Record<string, string | number> = {
      authorization: this.#auth,
      accept: "application/json",
      "user-agent": USER_AGENT,
      ...options.headers,
    };
    const payload = body === undefined ? undefined : Buffer.from(body, "utf8");
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = payload.length;
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    return new Promise<RawAnswer>((resolve, reject) => {
      const signal = options.signal;
      if (signal?.aborted === true) {
        reject(abortError(signal));
        return;
      }
      const req = this.#request(url, { method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        res.on("end", () => {
          cleanup();
          const status = res.statusCode ?? 0;
          resolve({
            status,
            headers: res.headers,
            body: chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8"),
          });
        });
      });
      const timer = setTimeout(() => {
        const e = new Error(`no answer within ${timeoutMs} ms`) as Error & { code: string };
        e.code = "ETIMEDOUT";
        req.destroy(e);
      }, timeoutMs);
      const onAbort = (): void => {
        req.destroy(abortError(signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      function cleanup(): void {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
      function fail(e: Error): void {
        cleanup();
        reject(e);
      }
      req.on("error", fail);
      req.end(payload);
    });
  }

  toString(): string {
    return `SignetClient(${this.#base.href}, api key redacted)`;
  }
  toJSON(): object {
    return { url: this.#base.href, apiKey: "[redacted]" };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  const e = new Error("the request was aborted");
  e.name = "AbortError";
  return e;
}

function toApiError(answer: RawAnswer): ApiError {
  const after = retryAfterMs(answer.headers["retry-after"]);
  try {
    const parsed = JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } };
    const code = parsed.error?.code;
    const message = parsed.error?.message;
    if (typeof code === "string" && typeof message === "string") {
      return new ApiError(answer.status, code, message, after);
    }
  } catch {
    // not the API's error body: described below
  }
  const excerpt = answer.body.slice(0, 200).replace(/[\u0000-\u001f]+/g, " ");
  return new ApiError(answer.status, `http_${answer.status}`, `HTTP ${answer.status}${excerpt ? `: ${excerpt}` : ""}`, after);
}
