/**
 * A real `signet serve` for tests (and the benchmark): SIGNET_BIN on a free
 * port with a temporary SQLite database; the admin key it prints on first
 * start, a `work` key made with `signet api-keys create`, and the keys
 * the server signs with.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { loadKeys, type LoadedKeys } from "../src/index.js";

/** Why the server tests are skipped, or false when SIGNET_BIN is usable. */
export function serverSkip(): string | false {
  const bin = process.env["SIGNET_BIN"];
  if (bin === undefined || bin === "") {
    return "SIGNET_BIN is not set: point it at the signet binary (e.g. target/debug/signet) to run the tests against a real server";
  }
  if (!existsSync(bin)) return `SIGNET_BIN is ${bin}, which does not exist`;
  return false;
}

export interface TestServer {
  readonly url: string;
  /** The server's process id. */
  readonly pid: number;
  readonly adminKey: string;
  readonly workKey: string;
  readonly dir: string;
  readonly db: string;
  /** The environment the server runs with (no SIGNET_* of the parent). */
  readonly env: Record<string, string>;
  /** The server's keys, as the SDK loads them from the same place. */
  readonly keys: LoadedKeys;
  /** Runs `signet` on the same database. */
  signet(...args: string[]): string;
  stop(): Promise<void>;
}

/** Starts `signet serve`. `env` adds variables (e.g. SIGNET_SIGNING_PRIVATE_KEYS). */
export async function startServer(env: Record<string, string> = {}, bin = process.env["SIGNET_BIN"] as string): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), "signet-sdk-ts-"));
  const db = join(dir, "s.db");
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("SIGNET_")) base[k] = v;
  const fullEnv: Record<string, string> = { ...base, SIGNET_DATABASE_URL: `sqlite://${db}`, ...env };
  const child: ChildProcess = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], {
    cwd: dir,
    env: fullEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const banner = await new Promise<{ url: string; adminKey: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`signet serve did not start in 30 s:\n${out}\n${err}`)), 30_000);
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      const key = /api key: (sk_\S+)/.exec(out)?.[1];
      if (url !== undefined && key !== undefined) {
        clearTimeout(timer);
        resolve({ url, adminKey: key });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`signet serve exited (${code}) before it listened:\n${out}\n${err}`));
    });
  });
  const signet = (...args: string[]): string =>
    execFileSync(bin, args, { cwd: dir, env: fullEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const workKey = /sk_\S+/.exec(signet("api-keys", "create", "--name", "sdk-test-worker", "--scope", "work"))?.[0];
  if (workKey === undefined) throw new Error("signet api-keys create printed no key");
  const keys = loadKeys({ env: fullEnv });
  return {
    url: banner.url,
    pid: child.pid as number,
    adminKey: banner.adminKey,
    workKey,
    dir,
    db,
    env: fullEnv,
    keys,
    signet,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs SQL on the server's SQLite file with python3's sqlite3 module (node:sqlite is not in Node 20). */
export function sqlite(db: string, sql: string, params: ReadonlyArray<string | number> = []): string {
  const script =
    "import json,sqlite3,sys\n" +
    "c=sqlite3.connect(sys.argv[1],timeout=10)\n" +
    "rows=c.execute(sys.argv[2],json.loads(sys.argv[3])).fetchall()\n" +
    "c.commit()\n" +
    "print(json.dumps([[x.decode() if isinstance(x,bytes) else x for x in r] for r in rows]))\n";
  return execFileSync("python3", ["-c", script, db, sql, JSON.stringify(params)], { encoding: "utf8" });
}

/** Polls `check` until it returns a value other than undefined (bounded). */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
