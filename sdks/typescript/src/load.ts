/**
 * Where a process's signing keys come from, by the Rust side's rule
 * (`signet-runtime`'s `keys.rs`, docs/keys.md), read-only:
 *
 * 1. Key material in the environment (`SIGNET_SIGNING_KEYS`,
 *    `…_PRIVATE_KEYS` or `…_PUBLIC_KEYS`): the variables are the keys.
 * 2. Else `SIGNET_KEYS_FILE`, or else the key file beside the SQLite
 *    database `SIGNET_DATABASE_URL` names (default `sqlite://./signet.db`,
 *    as for the `signet` commands): the file's lines, with any other
 *    signing variable set in the environment winning over the file's line.
 * 3. Else no keys: an error, unless `SIGNET_DEV=1`.
 *
 * Any other `SIGNET_…` variable in the environment is one the SDK does not
 * read: {@link loadKeys} warns about it with the closest known name
 * ({@link unknownVariables}).
 *
 * Unlike `signet serve`, an SDK never creates a key file.
 */
import { readFileSync, statSync } from "node:fs";
import { extname } from "node:path";

import { SignetError } from "./errors.js";
import { KeyFile } from "./keyfile.js";
import {
  MASTER_KEY_PREVIOUS_VAR,
  MASTER_KEY_VAR,
  MATERIAL_VARIABLES,
  VAR_DEV,
  VAR_KEYS,
  signingConfigFromVars,
  unknownVariables,
  varPairs,
  type SigningConfig,
  type Vars,
} from "./config.js";

/** `SIGNET_KEYS_FILE`: names the key file explicitly. */
export const KEYS_FILE_VAR = "SIGNET_KEYS_FILE";
/** `SIGNET_DATABASE_URL`: where the key file beside an SQLite database is looked for. */
export const DATABASE_URL_VAR = "SIGNET_DATABASE_URL";
/** The `signet` commands' default database. */
export const DEFAULT_DATABASE_URL = "sqlite://./signet.db";

/**
 * The variables the SDK reads besides the shared ones
 * (`SHARED_VARIABLES` in config.ts); any other `SIGNET_…` name gets a warning
 * from {@link loadKeys}.
 */
export const KNOWN_VARIABLES = [KEYS_FILE_VAR, DATABASE_URL_VAR] as const;

/** Where the keys came from. */
export type KeySource =
  | { readonly kind: "environment" }
  | { readonly kind: "file"; readonly path: string; readonly named: boolean }
  | { readonly kind: "nothing" };

/** A process's keys and where they came from. */
export interface LoadedKeys extends SigningConfig {
  readonly source: KeySource;
  /** One line for a banner: where the keys come from, without secrets. */
  readonly description: string;
}

/** Options of {@link loadKeys}. */
export interface LoadKeysOptions {
  /** The environment; default `process.env`. */
  readonly env?: Vars;
}

/**
 * The SQLite database file a database URL names, as `signet` reads it:
 * `sqlite://./a.db` → `./a.db`, `sqlite:///abs.db` → `/abs.db`, a plain
 * path → itself; `undefined` for `sqlite::memory:`, PostgreSQL and other
 * URLs (which have no key file of their own).
 */
export function sqliteDatabaseFile(url: string): string | undefined {
  const s = url.trim();
  let rest: string;
  if (s.slice(0, 7).toLowerCase() === "sqlite:") {
    rest = s.slice(7);
  } else {
    const sep = s.indexOf("://");
    if (sep > 0 && /^[A-Za-z0-9+.-]+$/.test(s.slice(0, sep))) return undefined;
    rest = s;
  }
  if (rest === ":memory:") return undefined;
  const path = rest.startsWith("//") ? rest.slice(2) : rest;
  if (path.length === 0 || path.includes("?") || path.includes("#")) return undefined;
  return path;
}

/**
 * The key file beside the database file `db`: its extension replaced by
 * `.keys` (`./signet.db` → `./signet.keys`, `data` → `data.keys`; a
 * database named `x.keys` gets `x.keys.keys`).
 */
export function keyFileBeside(db: string): string {
  const ext = extname(db);
  if (ext === ".keys") return `${db}.keys`;
  return ext.length > 0 ? `${db.slice(0, -ext.length)}.keys` : `${db}.keys`;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readKeyFile(path: string, warnings: string[]): KeyFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw SignetError.config(`cannot read the key file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (process.platform !== "win32") {
    try {
      const mode = statSync(path).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        warnings.push(
          `the key file ${path} can be read by other users (mode ${mode.toString(8).padStart(4, "0")}); run \`chmod 600 ${path}\``,
        );
      }
    } catch {
      // read above; a vanished file shows up on the next load
    }
  }
  try {
    return KeyFile.parse(text);
  } catch (e) {
    throw SignetError.config(`the key file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Loads the signing configuration by the rule in this module's comment.
 * Throws a `config` {@link SignetError} that names the file or variable and
 * says what to do; never prints a secret. Every `SIGNET_…` name in the
 * environment the SDK does not read gets a warning (first in `warnings`)
 * naming the closest known one.
 */
export function loadKeys(options: LoadKeysOptions = {}): LoadedKeys {
  const env = varPairs(options.env ?? process.env);
  const envGet = (name: string): string | undefined => {
    for (let i = env.length - 1; i >= 0; i--) {
      const entry = env[i];
      if (entry !== undefined && entry[0] === name) {
        const v = entry[1].trim();
        return v.length > 0 ? v : undefined;
      }
    }
    return undefined;
  };
  const devValue = envGet(VAR_DEV);
  const dev = devValue === "1" || devValue === "true";
  // Each name once, in order (pairs may repeat one).
  const warnings = unknownVariables(new Set(env.map(([name]) => name)), KNOWN_VARIABLES);
  const named = envGet(KEYS_FILE_VAR);
  const databaseFile = sqliteDatabaseFile(envGet(DATABASE_URL_VAR) ?? DEFAULT_DATABASE_URL);
  const path = named ?? (databaseFile === undefined ? undefined : keyFileBeside(databaseFile));
  const envHasKeys = MATERIAL_VARIABLES.some((v) => envGet(v) !== undefined);

  let file: KeyFile | undefined;
  let source: KeySource;
  if (envHasKeys) {
    if (named !== undefined) {
      warnings.push(
        `both ${KEYS_FILE_VAR} and ${VAR_KEYS} (or the Ed25519 variables) are set: the variables win and only the file's ${MASTER_KEY_VAR} is used; unset one of them`,
      );
    }
    source = { kind: "environment" };
  } else if (path !== undefined && exists(path)) {
    file = readKeyFile(path, warnings);
    source = { kind: "file", path, named: named !== undefined };
  } else if (named !== undefined) {
    throw SignetError.config(
      `${KEYS_FILE_VAR} names ${named}, which does not exist; Signet creates key files only beside an embedded (SQLite) database. Copy the key file every node shares there, or generate one with \`signet keys generate > ${named}\` (and \`chmod 600\` it)`,
    );
  } else if (dev) {
    source = { kind: "nothing" };
  } else if (path !== undefined) {
    throw SignetError.config(
      `no signing keys: no SIGNET_SIGNING_* variables are set and there is no key file at ${path} beside the database; an SDK never creates one. Run a signet command on that database first (\`signet keys ls\` creates it), or set ${KEYS_FILE_VAR} or the SIGNET_SIGNING_* variables (\`signet keys generate\` prints them); to run unsigned on purpose set SIGNET_DEV=1`,
    );
  } else {
    throw SignetError.config(
      `no signing keys: this store has no key file of its own (PostgreSQL, or an in-memory database), and every node must be given the same keys. Set ${KEYS_FILE_VAR} to a key file, or set the SIGNET_SIGNING_* variables (\`signet keys generate\` prints them); to run unsigned on purpose set SIGNET_DEV=1`,
    );
  }

  // The file's lines first, then the environment's signing variables, so a
  // variable set in the environment wins (empty ones are absent).
  const fromFile = (file?.vars() ?? []).filter(
    ([k]) => k !== MASTER_KEY_VAR && k !== MASTER_KEY_PREVIOUS_VAR,
  );
  const fromEnv = env.filter(
    ([k, v]) => (k.startsWith("SIGNET_SIGNING_") || k === VAR_DEV) && v.trim().length > 0,
  );
  let config: SigningConfig;
  try {
    config = signingConfigFromVars([...fromFile, ...fromEnv]);
  } catch (e) {
    if (source.kind === "file" && e instanceof SignetError) {
      throw SignetError.config(
        `the key file ${source.path} (with the SIGNET_SIGNING_* variables set here): ${e.message}`,
      );
    }
    throw e;
  }
  const description =
    source.kind === "environment"
      ? "keys from the SIGNET_SIGNING_* variables"
      : source.kind === "file"
        ? `keys from ${source.path}${source.named ? ` (${KEYS_FILE_VAR})` : ""}`
        : "keys from none (no variables, no key file)";
  return { ...config, warnings: [...warnings, ...config.warnings], source, description };
}
