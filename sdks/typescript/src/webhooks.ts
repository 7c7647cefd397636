/**
 * Standard Webhooks, Signet's native HTTP format (`signet-sign`'s
 * `standard.rs`): signed content `{webhook-id}.{webhook-timestamp}.{body}`,
 * a `webhook-signature` header of space-separated `v1,<base64 HMAC-SHA256>`
 * and `v1a,<base64 Ed25519>` entries; a verifier accepts when any entry
 * matches any key, ignores versions it does not know, and refuses
 * timestamps more than the tolerance (300 s) away from its clock.
 */
import { Base64Error, decodeKey, decodeSignature, encodeBase64 } from "./b64.js";
import { SignetError, quote } from "./errors.js";
import { Ed25519PrivateKey, Ed25519PublicKey, HmacKey, algorithmVersion, type Algorithm, type Key, type KeyRing } from "./keys.js";

/** Default freshness tolerance, seconds, both directions. */
export const DEFAULT_TOLERANCE_SECS = 300;

/** The three header names of a message. */
export interface HeaderNames {
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
}

/** `webhook-id`, `webhook-timestamp`, `webhook-signature`. */
export const STANDARD_HEADERS: HeaderNames = {
  id: "webhook-id",
  timestamp: "webhook-timestamp",
  signature: "webhook-signature",
};

/** `svix-id`, `svix-timestamp`, `svix-signature` (same scheme, Svix branding). */
export const SVIX_HEADERS: HeaderNames = { id: "svix-id", timestamp: "svix-timestamp", signature: "svix-signature" };

const encoder = new TextEncoder();

/**
 * A key from a secret in any Standard Webhooks form: `whsec_` + base64
 * (HMAC), `whsk_` + base64(seed ‖ public) (Ed25519 private), `whpk_` +
 * base64(public) (Ed25519 public), or base64 without a prefix (HMAC).
 * No length policy: a receiver uses the secret the sender issued.
 */
export function parseWebhookSecret(text: string, id = "default"): Key {
  const t = text.trim();
  let form = "";
  let payload = t;
  for (const prefix of ["whsec_", "whsk_", "whpk_"]) {
    if (t.startsWith(prefix)) {
      form = prefix;
      payload = t.slice(prefix.length);
      break;
    }
  }
  const what =
    form === "whsk_"
      ? "Ed25519 private key (whsk_)"
      : form === "whpk_"
        ? "Ed25519 public key (whpk_)"
        : form === "whsec_"
          ? "secret (whsec_)"
          : "secret";
  if (payload.length === 0) {
    throw SignetError.config(`${what} is empty; give the whsec_, whsk_ or whpk_ value issued for this endpoint`);
  }
  let bytes: Uint8Array;
  try {
    bytes = decodeKey(payload);
  } catch (e) {
    throw SignetError.config(`${what} is not valid base64: ${e instanceof Base64Error ? e.message : "it cannot be decoded"}`);
  }
  try {
    if (form === "whsk_") return new Ed25519PrivateKey(id, bytes);
    if (form === "whpk_") return new Ed25519PublicKey(id, bytes);
    return new HmacKey(id, bytes);
  } finally {
    bytes.fill(0);
  }
}

function content(msgId: string, timestamp: string, body: Uint8Array | string): Uint8Array {
  const head = encoder.encode(`${msgId}.${timestamp}.`);
  const tail = typeof body === "string" ? encoder.encode(body) : body;
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}

/**
 * The `webhook-signature` value: one entry per signing key of the ring
 * (the active key first, then rotation-overlap keys), space-separated.
 * A ring without a signing key is `config`; an empty or control-character
 * id or a negative timestamp is `unsupported`.
 */
export function signWebhook(ring: KeyRing, msgId: string, timestamp: number, body: Uint8Array | string): string {
  if (ring.active === undefined) {
    throw SignetError.config(`the key ring has no signing key (${ring.describe()}); set an active key that can sign`);
  }
  if (msgId.length === 0) {
    throw SignetError.unsupported("message id is empty; every Standard Webhooks message needs a webhook-id");
  }
  if (/[\u0000-\u001f\u007f]/.test(msgId)) {
    throw SignetError.unsupported("message id contains control characters and cannot be sent as a header");
  }
  if (!Number.isSafeInteger(timestamp)) {
    throw SignetError.unsupported(`timestamp ${String(timestamp)} is not a whole number of unix seconds`);
  }
  if (timestamp < 0) {
    throw SignetError.unsupported(`timestamp ${timestamp} is negative; use unix seconds`);
  }
  const message = content(msgId, timestamp.toString(), body);
  return ring
    .signers()
    .map((key) => `${algorithmVersion(key.algorithm)},${encodeBase64(key.sign(message))}`)
    .join(" ");
}

/** The three headers to send, named by `names` (default {@link STANDARD_HEADERS}). */
export function webhookHeaders(
  ring: KeyRing,
  msgId: string,
  timestamp: number,
  body: Uint8Array | string,
  names: HeaderNames = STANDARD_HEADERS,
): Record<string, string> {
  const signature = signWebhook(ring, msgId, timestamp, body);
  return { [names.id]: msgId, [names.timestamp]: timestamp.toString(), [names.signature]: signature };
}

/** Options of {@link verifyWebhook}. There is no default clock: say what time it is. */
export interface VerifyWebhookOptions {
  /** Current time, unix seconds. */
  readonly now: number;
  /** Largest accepted |now − timestamp|, seconds (default 300; negative counts as 0). */
  readonly toleranceSecs?: number;
  /** Header names used in messages (default {@link STANDARD_HEADERS}). */
  readonly names?: HeaderNames;
}

/** Which key verified a message. */
export interface WebhookVerified {
  readonly keyId: string;
  readonly algorithm: Algorithm;
}

/** Refuses a timestamp more than `toleranceSecs` from `now` either way. */
export function checkFresh(timestamp: number, now: number, toleranceSecs: number): void {
  const tolerance = Math.max(0, toleranceSecs);
  const age = now - timestamp;
  if (age > tolerance) throw SignetError.tooOld(`timestamp is ${age} s old; tolerance is ${tolerance} s`);
  if (-age > tolerance) {
    throw SignetError.tooNew(`timestamp is ${-age} s in the future; tolerance is ${tolerance} s`);
  }
}

function splitEntries(header: string): string[] {
  return header.split(" ").filter((e) => e.length > 0);
}

/** The entries of one version, numbered from 1 by position in the header. */
function entries(header: string, version: string): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  splitEntries(header).forEach((entry, i) => {
    if (entry.startsWith(`${version},`)) out.push([i + 1, entry.slice(version.length + 1)]);
  });
  return out;
}

function decodeOrUndefined(value: string): Uint8Array | undefined {
  try {
    return decodeSignature(value);
  } catch {
    return undefined;
  }
}

/**
 * Verifies a message. `headers` holds the received header values (any
 * case; absent or empty ones count as missing); `body` is the raw body.
 * Throws {@link SignetError}: `config` (empty ring), `missing`,
 * `malformed`, `too-old`, `too-new`, `algorithm-mismatch`, `mismatch`, in
 * the Rust side's order and words.
 */
export function verifyWebhook(
  ring: KeyRing,
  headers: { readonly [name: string]: string | undefined },
  body: Uint8Array | string,
  options: VerifyWebhookOptions,
): WebhookVerified {
  const names = options.names ?? STANDARD_HEADERS;
  const find = (name: string): string => {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name && v !== undefined) return v;
    return "";
  };
  const msgId = find(names.id);
  const timestampText = find(names.timestamp).trim();
  const signatureHeader = find(names.signature);
  if (ring.keys.length === 0) {
    throw SignetError.config("the key ring has no keys to verify with; configure the sender's secret or public key");
  }
  if (msgId.length === 0) throw SignetError.missing(`${names.id} header is missing or empty`);
  if (timestampText.length === 0) throw SignetError.missing(`${names.timestamp} header is missing or empty`);
  if (!/^[0-9]{1,19}$/.test(timestampText) || BigInt(timestampText) > (1n << 63n) - 1n) {
    const shown = [...timestampText].slice(0, 24).join("");
    throw SignetError.malformed(`${names.timestamp} header ${quote(shown)} is not a whole number of unix seconds`);
  }
  checkFresh(Number(timestampText), options.now, options.toleranceSecs ?? DEFAULT_TOLERANCE_SECS);

  // The timestamp is signed as the sender wrote it (digits only, checked above).
  const message = content(msgId, timestampText, body);
  const bodyLength = typeof body === "string" ? encoder.encode(body).length : body.length;
  for (const [alg, version, length] of [
    ["hmac-sha256", "v1", 32],
    ["ed25519", "v1a", 64],
  ] as const) {
    const keys = ring.keys.filter((k) => k.algorithm === alg);
    if (keys.length === 0) continue;
    const sigs = entries(signatureHeader, version)
      .map(([, value]) => decodeOrUndefined(value))
      .filter((s): s is Uint8Array => s !== undefined && s.length === length);
    for (const key of keys) {
      for (const sig of sigs) {
        try {
          key.verify(message, sig);
          return { keyId: key.id, algorithm: alg };
        } catch {
          // try the next entry
        }
      }
    }
  }
  throw explainFailure(names, ring, signatureHeader, bodyLength);
}

function explainFailure(names: HeaderNames, ring: KeyRing, header: string, bodyLength: number): SignetError {
  if (header.trim().length === 0) return SignetError.missing(`${names.signature} header is missing or empty`);
  let hmacEntries = 0;
  let edEntries = 0;
  let firstUnknown: string | undefined;
  for (const entry of splitEntries(header)) {
    const comma = entry.indexOf(",");
    const version = comma < 0 ? undefined : entry.slice(0, comma);
    if (version === "v1") hmacEntries++;
    else if (version === "v1a") edEntries++;
    else firstUnknown ??= version ?? entry;
  }
  if (hmacEntries + edEntries === 0) {
    const found =
      firstUnknown !== undefined && Buffer.byteLength(firstUnknown) <= 16 && !firstUnknown.includes(",")
        ? ` (found ${quote(firstUnknown)})`
        : "";
    return SignetError.malformed(
      `${names.signature} header has no v1 or v1a entry${found}; expected "v1,<base64>" or "v1a,<base64>"`,
    );
  }
  const hmacKeys = ring.keys.filter((k) => k.algorithm === "hmac-sha256").length;
  const edKeys = ring.keys.length - hmacKeys;
  const useHmac = hmacKeys > 0 && hmacEntries > 0;
  const useEd = edKeys > 0 && edEntries > 0;
  if (!useHmac && !useEd) {
    const [have, need] = hmacEntries > 0 ? ["v1 (HMAC-SHA256)", "hmac-sha256"] : ["v1a (Ed25519)", "ed25519"];
    return SignetError.algorithmMismatch(
      `${names.signature} header has only ${have} signatures but the key ring has no ${need} key (${ring.describe()})`,
    );
  }
  let readable = 0;
  let firstProblem: string | undefined;
  for (const [version, want, algName, usable] of [
    ["v1", 32, "HMAC-SHA256", useHmac],
    ["v1a", 64, "Ed25519", useEd],
  ] as const) {
    if (!usable) continue;
    for (const [index, value] of entries(header, version)) {
      const sig = decodeOrUndefined(value);
      let problem: string;
      if (sig !== undefined && sig.length === want) {
        readable++;
        continue;
      } else if (sig !== undefined && sig.length <= 65) {
        problem = `decodes to ${sig.length} bytes; ${algName} signatures are ${want}`;
      } else if (value.length === 0) {
        problem = "is empty";
      } else {
        problem = `is not valid base64 of a ${want}-byte ${algName} signature`;
      }
      firstProblem ??= `${names.signature} entry ${index} (${version}) ${problem}`;
    }
  }
  if (readable === 0 && firstProblem !== undefined) return SignetError.malformed(firstProblem);
  const tried = ring.keys
    .filter((k) => (k.algorithm === "hmac-sha256" ? useHmac : useEd))
    .map((k) => k.id);
  const which = tried.length === 1 ? `key ${quote(tried[0] ?? "")}` : `any of ${tried.length} keys`;
  return SignetError.mismatch(`no signature matched ${which} (body ${bodyLength} bytes; was the body re-serialised?)`);
}
