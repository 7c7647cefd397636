/**
 * Signing configuration from the `SIGNET_SIGNING_*` variables, with the
 * Rust side's rules and messages (`signet-sign`'s `config.rs`).
 *
 * {@link signingConfigFromVars} takes `(name, value)` pairs and never reads
 * the process environment itself. Variables it does not read are ignored;
 * {@link unknownVariables} names the mistyped ones (any `SIGNET_…` name no
 * Signet program reads), with the closest known name. Errors name the variable
 * and the key id, never the secret.
 */
import { Base64Error, decodeKey } from "./b64.js";
import { SignetError, quote } from "./errors.js";
import {
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HmacKey,
  KeyRing,
  checkKeyId,
  parseAlgorithm,
  type Algorithm,
  type Key,
} from "./keys.js";

export const VAR_ALGORITHM = "SIGNET_SIGNING_ALGORITHM";
export const VAR_KEYS = "SIGNET_SIGNING_KEYS";
export const VAR_ACTIVE_KEY = "SIGNET_SIGNING_ACTIVE_KEY";
export const VAR_PUBLIC_KEYS = "SIGNET_SIGNING_PUBLIC_KEYS";
export const VAR_PRIVATE_KEYS = "SIGNET_SIGNING_PRIVATE_KEYS";
export const VAR_OVERLAP_KEYS = "SIGNET_SIGNING_OVERLAP_KEYS";
export const VAR_REQUIRED = "SIGNET_SIGNING_REQUIRED";
export const VAR_DEV = "SIGNET_DEV";

/** Every variable {@link signingConfigFromVars} reads. */
export const VARIABLES = [
  VAR_ALGORITHM,
  VAR_KEYS,
  VAR_ACTIVE_KEY,
  VAR_PUBLIC_KEYS,
  VAR_PRIVATE_KEYS,
  VAR_OVERLAP_KEYS,
  VAR_REQUIRED,
  VAR_DEV,
] as const;

/** `SIGNET_MASTER_KEY`: a key file holds it (sealed target secrets); the SDK ignores it. */
export const MASTER_KEY_VAR = "SIGNET_MASTER_KEY";
/** `SIGNET_MASTER_KEY_PREVIOUS`: earlier master keys during a rotation; a key file may hold it; the SDK ignores it. */
export const MASTER_KEY_PREVIOUS_VAR = "SIGNET_MASTER_KEY_PREVIOUS";
/**
 * `SIGNET_TEST_DATABASE_URL`: the database Signet's test suites and CI use.
 * No program reads it, but it is set where programs run.
 */
export const VAR_TEST_DATABASE_URL = "SIGNET_TEST_DATABASE_URL";
/** The prefix every Signet variable starts with. */
export const VAR_PREFIX = "SIGNET_";

/**
 * The variables the Signet programs read through their flags (`signet` and
 * its subcommands, the example worker's `SIGNET_WORKER_…`) and
 * `SIGNET_KEYS_FILE`: `PROGRAM_VARIABLES` in `signet-sign`'s `config.rs`,
 * in its order (a test checks this copy against it). Programs often share
 * one environment (a `.env` file, a container spec), so none of them
 * reports another's variable as unknown.
 */
export const PROGRAM_VARIABLES = [
  "SIGNET_ALLOWED_TARGET_CIDRS",
  "SIGNET_API_KEY",
  "SIGNET_DATABASE_SCHEMA",
  "SIGNET_DATABASE_URL",
  "SIGNET_DELIVERY_CA_FILE",
  "SIGNET_DELIVERY_CONCURRENCY",
  "SIGNET_DELIVERY_TIMEOUT",
  "SIGNET_HEADER_READ_TIMEOUT",
  "SIGNET_IPV6_BUCKET_PREFIX",
  "SIGNET_KEYS_FILE",
  "SIGNET_LEADER_TTL",
  "SIGNET_LISTEN",
  "SIGNET_MAX_BODY_BYTES",
  "SIGNET_METRICS_MAX_LABEL_VALUES",
  "SIGNET_METRICS_TARGET_NAMES",
  "SIGNET_METRICS_TOKEN",
  "SIGNET_NODE_ID",
  "SIGNET_RATE_LIMIT_PER_IP",
  "SIGNET_RATE_LIMIT_PER_KEY",
  "SIGNET_REQUEST_TIMEOUT",
  "SIGNET_RETRY_SCHEDULE",
  "SIGNET_SHUTDOWN_GRACE",
  "SIGNET_TRUSTED_PROXIES",
  "SIGNET_TRUST_X_REAL_IP",
  "SIGNET_UNSIGNED",
  "SIGNET_URL",
  "SIGNET_WORKER_CONCURRENCY",
  "SIGNET_WORKER_HANDLER_TIMEOUT_MS",
  "SIGNET_WORKER_LEADER_TTL_MS",
  "SIGNET_WORKER_LEASE_MS",
  "SIGNET_WORKER_METRICS_LISTEN",
  "SIGNET_WORKER_OUTBOX",
  "SIGNET_WORKER_POLL_MS",
  "SIGNET_WORKER_QUEUES",
  "SIGNET_WORKER_SHUTDOWN_GRACE_MS",
] as const;

/**
 * The variables every Signet program knows (`shared_variables()` on the
 * Rust side, in its order): the signing ones, `SIGNET_DEV`, the master key
 * and the previous ones, `SIGNET_TEST_DATABASE_URL` and
 * {@link PROGRAM_VARIABLES}. A program adds its own when it calls
 * {@link unknownVariables}.
 */
export const SHARED_VARIABLES = [
  ...VARIABLES,
  MASTER_KEY_VAR,
  MASTER_KEY_PREVIOUS_VAR,
  VAR_TEST_DATABASE_URL,
  ...PROGRAM_VARIABLES,
] as const;

/** The variables that hold key material. */
export const MATERIAL_VARIABLES = [VAR_KEYS, VAR_PRIVATE_KEYS, VAR_PUBLIC_KEYS] as const;

/** Shortest HMAC secret accepted for Signet's own keys, in bytes. */
export const MIN_HMAC_SECRET_LEN = 16;
/** HMAC secrets shorter than this get a warning, in bytes. */
export const RECOMMENDED_HMAC_SECRET_LEN = 32;

/** The parsed signing configuration. */
export interface SigningConfig {
  /** The keys, with the active key and overlap signers set. */
  readonly ring: KeyRing;
  /** Reject unsigned work (`SIGNET_SIGNING_REQUIRED`, default on when keys exist). */
  readonly required: boolean;
  /** Dev mode: verification off (`SIGNET_DEV=1|true` only). */
  readonly dev: boolean;
  /**
   * Allowed but should be fixed (short secrets, a `SIGNET_DEV` value that
   * looks like "yes"); log them as warnings. Never hold a secret. The state
   * itself (signing off, dev mode) is not among them: `required`, `dev` and
   * {@link summary} say it. Mistyped names are found by
   * {@link unknownVariables} (`loadKeys` calls it).
   */
  readonly warnings: readonly string[];
}

/** `(name, value)` pairs, or an object such as `process.env`. */
export type Vars = Iterable<readonly [string, string | undefined]> | Readonly<Record<string, string | undefined>>;

/** The pairs of a {@link Vars}, in order. */
export function varPairs(vars: Vars): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const iterable = (vars as Partial<Iterable<unknown>>)[Symbol.iterator] !== undefined;
  const entries = iterable
    ? (vars as Iterable<readonly [string, string | undefined]>)
    : Object.entries(vars as Readonly<Record<string, string | undefined>>);
  for (const [name, value] of entries) {
    if (value !== undefined) out.push([name, value]);
  }
  return out;
}

/** Splits `id:value,id:value` into validated ids and values. Errors never quote a value. */
function entries(variable: string, list: string | undefined): Array<[string, string]> {
  if (list === undefined) return [];
  const out: Array<[string, string]> = [];
  const items = list
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  items.forEach((entry, n) => {
    const position = n + 1;
    const colon = entry.indexOf(":");
    if (colon < 0) {
      throw SignetError.config(
        `${variable}: entry ${position} has no ':'; write each key as id:base64, separated by commas`,
      );
    }
    const id = entry.slice(0, colon).trim();
    if (id.length === 0) {
      throw SignetError.config(`${variable}: entry ${position} has an empty key id; write it as id:base64`);
    }
    try {
      checkKeyId(id);
    } catch {
      // Not quoted: a malformed "id" may be a secret pasted without its id.
      throw SignetError.config(
        `${variable}: entry ${position} has an invalid key id (1 to 64 of A-Z a-z 0-9 . _ -); write each key as id:base64`,
      );
    }
    const value = entry.slice(colon + 1).trim();
    if (value.length === 0) {
      throw SignetError.config(`${variable}: key ${quote(id)} has no key material after ':'`);
    }
    out.push([id, value]);
  });
  return out;
}

function strip(text: string, prefix: string): string {
  return text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

function decode(variable: string, id: string, text: string): Uint8Array {
  try {
    return decodeKey(text);
  } catch (e) {
    const why = e instanceof Base64Error ? e.message : "it cannot be decoded";
    throw SignetError.config(`${variable}: key ${quote(id)} is not valid base64: ${why}`);
  }
}

function duplicate(id: string, first: string, second: string): SignetError {
  if (first === second) {
    return SignetError.config(`${first}: key id ${quote(id)} is given twice; give each key its own id`);
  }
  return SignetError.config(
    `key id ${quote(id)} is given in both ${first} and ${second}; give each key its own id`,
  );
}

function describe(keys: ReadonlyArray<readonly [string, Key]>): string {
  if (keys.length === 0) return "none are configured";
  return `keys: ${keys.map(([, k]) => k.id).join(", ")}`;
}

function withPrefix(variable: string, id: string, e: unknown): SignetError {
  const message = e instanceof Error ? e.message : String(e);
  return SignetError.config(`${variable}: key ${quote(id)}: ${message}`);
}

/**
 * Parses the signing configuration from `(name, value)` pairs (or an object
 * like `process.env`). An empty value is the same as an absent variable; a
 * variable given twice takes the last value. Throws a `config`
 * {@link SignetError} with the Rust side's message.
 */
export function signingConfigFromVars(vars: Vars): SigningConfig {
  const warnings: string[] = [];
  const set = new Map<string, string>();
  const known: readonly string[] = VARIABLES;
  for (const [name, raw] of varPairs(vars)) {
    const value = raw.trim();
    if (known.includes(name)) {
      if (value.length === 0) set.delete(name);
      else set.set(name, value);
    }
  }
  const get = (name: string): string | undefined => set.get(name);

  let dev = false;
  const devValue = get(VAR_DEV);
  if (devValue === "1" || devValue === "true") {
    dev = true;
  } else if (devValue !== undefined && devValue !== "0" && devValue !== "false") {
    warnings.push(
      `${VAR_DEV} is set to a value other than 1 or true, so dev mode stays off; set it to 1 or true to turn it on, or remove it`,
    );
  }

  const algorithmText = get(VAR_ALGORITHM);
  let explicitAlgorithm: Algorithm | undefined;
  if (algorithmText !== undefined) {
    try {
      explicitAlgorithm = parseAlgorithm(algorithmText);
    } catch {
      throw SignetError.config(`${VAR_ALGORITHM} is ${quote(algorithmText)}; use "hmac-sha256" or "ed25519"`);
    }
  }

  const keys: Array<[string, Key]> = [];
  for (const [id, secret] of entries(VAR_KEYS, get(VAR_KEYS))) {
    const bytes = decode(VAR_KEYS, id, strip(secret, "whsec_"));
    if (bytes.length < MIN_HMAC_SECRET_LEN) {
      throw SignetError.config(
        `${VAR_KEYS}: key ${quote(id)} is ${bytes.length} bytes; HMAC keys must be at least ${MIN_HMAC_SECRET_LEN} bytes (generate one with \`signet keys generate\`)`,
      );
    }
    if (bytes.length < RECOMMENDED_HMAC_SECRET_LEN) {
      warnings.push(
        `${VAR_KEYS}: key ${quote(id)} is ${bytes.length} bytes; ${RECOMMENDED_HMAC_SECRET_LEN} or more are recommended`,
      );
    }
    let key: HmacKey;
    try {
      key = new HmacKey(id, bytes);
    } finally {
      bytes.fill(0);
    }
    keys.push([VAR_KEYS, key]);
  }

  const publics: Array<[string, Ed25519PublicKey]> = [];
  for (const [id, text] of entries(VAR_PUBLIC_KEYS, get(VAR_PUBLIC_KEYS))) {
    const bytes = decode(VAR_PUBLIC_KEYS, id, strip(text, "whpk_"));
    let key: Ed25519PublicKey;
    try {
      key = new Ed25519PublicKey(id, bytes);
    } catch (e) {
      throw withPrefix(VAR_PUBLIC_KEYS, id, e);
    }
    if (publics.some(([other]) => other === id)) throw duplicate(id, VAR_PUBLIC_KEYS, VAR_PUBLIC_KEYS);
    publics.push([id, key]);
  }

  const privates: string[] = [];
  for (const [id, text] of entries(VAR_PRIVATE_KEYS, get(VAR_PRIVATE_KEYS))) {
    const bytes = decode(VAR_PRIVATE_KEYS, id, strip(text, "whsk_"));
    let key: Ed25519PrivateKey;
    try {
      key = new Ed25519PrivateKey(id, bytes);
    } catch (e) {
      throw withPrefix(VAR_PRIVATE_KEYS, id, e);
    } finally {
      bytes.fill(0);
    }
    const pub = publics.find(([other]) => other === id);
    if (pub !== undefined && Buffer.compare(Buffer.from(pub[1].publicKey), Buffer.from(key.publicKey)) !== 0) {
      throw SignetError.config(
        `${VAR_PRIVATE_KEYS}: key ${quote(id)} does not match the public key of the same id in ${VAR_PUBLIC_KEYS}; export both halves of one key pair`,
      );
    }
    privates.push(id);
    keys.push([VAR_PRIVATE_KEYS, key]);
  }
  for (const [id, key] of publics) {
    if (!privates.includes(id)) keys.push([VAR_PUBLIC_KEYS, key]);
  }

  // Ids must be unique across variables.
  keys.forEach(([variable, key], i) => {
    const earlier = keys.slice(0, i).find(([, k]) => k.id === key.id);
    if (earlier !== undefined) throw duplicate(key.id, earlier[0], variable);
  });

  const hasHmac = keys.some(([, k]) => k.algorithm === "hmac-sha256");
  const algorithm: Algorithm =
    explicitAlgorithm ?? (hasHmac || keys.length === 0 ? "hmac-sha256" : "ed25519");

  let active: string | undefined;
  const activeText = get(VAR_ACTIVE_KEY);
  if (activeText !== undefined) {
    try {
      checkKeyId(activeText);
    } catch {
      throw SignetError.config(
        `${VAR_ACTIVE_KEY} is not a key id (1 to 64 of A-Z a-z 0-9 . _ -); set it to the id of a configured key, not to a key`,
      );
    }
    const found = keys.find(([, k]) => k.id === activeText);
    if (found === undefined) {
      throw SignetError.config(
        `${VAR_ACTIVE_KEY} is ${quote(activeText)}, which is not among the configured keys (${describe(keys)}); add it to ${VAR_KEYS} or ${VAR_PRIVATE_KEYS}, or pick another`,
      );
    }
    const key = found[1];
    if (!key.canSign) {
      throw SignetError.config(
        `${VAR_ACTIVE_KEY} is ${quote(activeText)}, an Ed25519 public key, which cannot sign; add its private key to ${VAR_PRIVATE_KEYS} or unset ${VAR_ACTIVE_KEY} for a verify-only setup`,
      );
    }
    if (explicitAlgorithm !== undefined && key.algorithm !== algorithm) {
      throw SignetError.config(
        `${VAR_ACTIVE_KEY} is ${quote(activeText)}, a ${key.algorithm} key, but ${VAR_ALGORITHM} is ${algorithm}; make them agree`,
      );
    }
    active = activeText;
  } else {
    const candidates = keys.map(([, k]) => k).filter((k) => k.canSign && k.algorithm === algorithm);
    if (candidates.length === 1) {
      active = candidates[0]?.id;
    } else if (candidates.length > 1) {
      throw SignetError.config(
        `${VAR_ACTIVE_KEY} is not set and ${candidates.length} ${algorithm} keys can sign (${candidates
          .map((k) => k.id)
          .join(", ")}); set it to the one that should sign`,
      );
    }
  }

  if (explicitAlgorithm !== undefined && keys.length > 0 && !keys.some(([, k]) => k.algorithm === algorithm)) {
    const hint = algorithm === "hmac-sha256" ? VAR_KEYS : `${VAR_PRIVATE_KEYS} or ${VAR_PUBLIC_KEYS}`;
    throw SignetError.config(
      `${VAR_ALGORITHM} is ${algorithm} but no ${algorithm} key is configured; add one to ${hint}`,
    );
  }

  const anyKeys = keys.length > 0;
  const overlapText = get(VAR_OVERLAP_KEYS);
  const overlap: string[] = [];
  if (overlapText !== undefined) {
    if (active === undefined) {
      throw SignetError.config(
        `${VAR_OVERLAP_KEYS} is set but there is no active key; set ${VAR_ACTIVE_KEY} first`,
      );
    }
    overlap.push(
      ...overlapText
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    );
  }
  const ringKeys = keys.map(([, k]) => k);
  let ring = new KeyRing(ringKeys, active);
  for (const id of overlap) {
    try {
      ring = new KeyRing(ringKeys, active, [...ring.signers().slice(1).map((k) => k.id), id]);
    } catch (e) {
      throw SignetError.config(`${VAR_OVERLAP_KEYS}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  let required: boolean;
  const requiredText = get(VAR_REQUIRED);
  if (requiredText === undefined) {
    required = anyKeys;
  } else if (requiredText === "1" || requiredText.toLowerCase() === "true") {
    required = true;
  } else if (requiredText === "0" || requiredText.toLowerCase() === "false") {
    required = false;
  } else {
    throw SignetError.config(`${VAR_REQUIRED} is ${quote(requiredText)}; use true, false, 1 or 0`);
  }
  if (required && !anyKeys) {
    throw SignetError.config(
      `${VAR_REQUIRED} is on but no keys are configured; set ${VAR_KEYS} (HMAC) or ${VAR_PRIVATE_KEYS}/${VAR_PUBLIC_KEYS} (Ed25519)`,
    );
  }
  return { ring, required, dev, warnings };
}

/**
 * One warning per `SIGNET_…` name in `names` that is neither in `known` nor
 * in {@link SHARED_VARIABLES}, each naming the closest known name
 * (`SIGNET_MASTERKEY` → `SIGNET_MASTER_KEY`): the fewest byte edits, the
 * first in `known` then `SHARED_VARIABLES` order on a tie, as
 * `signet-sign`'s `unknown_variables`. Names without the prefix are not
 * Signet's and pass.
 *
 * The Rust message goes on with `` (`--help` lists the variables this
 * program reads)``; an SDK has no `--help`, so its message ends at the
 * closest name.
 */
export function unknownVariables(names: Iterable<string>, known: Iterable<string>): string[] {
  const candidates: string[] = [...known, ...SHARED_VARIABLES];
  const warnings: string[] = [];
  for (const name of names) {
    if (!name.startsWith(VAR_PREFIX) || candidates.includes(name)) continue;
    let closest = VAR_KEYS;
    let best = Infinity;
    for (const candidate of candidates) {
      const distance = editDistance(name, candidate);
      if (distance < best) {
        best = distance;
        closest = candidate;
      }
    }
    warnings.push(`${name} is not a Signet variable and is ignored; the closest known name is ${closest}`);
  }
  return warnings;
}

/** Levenshtein distance over the UTF-8 bytes (variable names are ASCII). */
export function editDistance(a: string, b: string): number {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  const row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 0; i < x.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i + 1;
    for (let j = 0; j < y.length; j++) {
      const substitute = diagonal + (x[i] === y[j] ? 0 : 1);
      diagonal = row[j + 1] ?? 0;
      row[j + 1] = Math.min(substitute, (row[j] ?? 0) + 1, diagonal + 1);
    }
  }
  return row[y.length] ?? 0;
}

/**
 * One line for a start-up log, without secrets, as the Rust side prints it:
 * `signing on: hmac-sha256, active key "k2", 2 keys (k1, k2)`.
 */
export function summary(config: SigningConfig): string {
  const ids = config.ring.keys.map((k) => k.id);
  const keys = ids.length === 1 ? `1 key (${ids[0] ?? ""})` : `${ids.length} keys (${ids.join(", ")})`;
  const dev = config.dev ? "; DEV MODE: signatures are not verified" : "";
  const active = config.ring.active;
  if (!config.required) {
    if (ids.length === 0) return `signing off: no keys configured, unsigned work is accepted${dev}`;
    return `signing off (${VAR_REQUIRED}=false): ${keys}${dev}`;
  }
  if (active === undefined) return `signing on (verify only): ${keys}${dev}`;
  const overlap = config.ring
    .signers()
    .slice(1)
    .map((k) => k.id);
  const also = overlap.length === 0 ? "" : `, also signing with ${overlap.join(", ")}`;
  return `signing on: ${active.algorithm}, active key ${quote(active.id)}${also}, ${keys}${dev}`;
}
