/** The key file and where keys come from: variables, SIGNET_KEYS_FILE, the file beside the database. */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { inspect } from "node:util";

import { KeyFile, SignetError, keyFileBeside, loadKeys, sqliteDatabaseFile, summary } from "../src/index.js";
import { b64 } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "signet-sdk-load-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const k1 = b64(new Uint8Array(32).fill(1));
const k2 = b64(new Uint8Array(32).fill(2));

function writeKeys(path: string, text: string, mode = 0o600): void {
  writeFileSync(path, text);
  chmodSync(path, mode);
}

function configError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SignetError && e.reason === "config", String(e));
    return e.message;
  }
  assert.fail("accepted");
}

test("key file text: export, quotes and comments accepted", () => {
  const file = KeyFile.parse("# c\n\nexport SIGNET_SIGNING_ACTIVE_KEY=\"k1\"\nSIGNET_DEV='0'\r\n");
  assert.equal(file.get("SIGNET_SIGNING_ACTIVE_KEY"), "k1");
  assert.equal(file.get("SIGNET_DEV"), "0");
});

test("key file errors name the line, never the value", () => {
  for (const [text, want] of [
    ["SIGNET_SIGNING_KEYS", "line 1 is not NAME=value; a key file holds lines like the ones `signet keys generate` prints"],
    [
      'SIGNET_SIGNING_KEYS="k1:secret-value"x"',
      "line 1: the value of SIGNET_SIGNING_KEYS holds a quote or a space; write it as SIGNET_SIGNING_KEYS=value with nothing around the value",
    ],
    [
      "\nPATH=/secret-value",
      'line 2: "PATH" is not a variable a key file may hold; use the SIGNET_SIGNING_* variables and SIGNET_MASTER_KEY',
    ],
    ["SIGNET_MASTER_KEY=a\nSIGNET_MASTER_KEY=secret-value", "line 2: SIGNET_MASTER_KEY is given twice; keep one line"],
  ] as const) {
    const message = configError(() => KeyFile.parse(text));
    assert.equal(message, want);
    assert.ok(!message.includes("secret-value"));
  }
  const file = KeyFile.parse(`SIGNET_SIGNING_KEYS=k1:${k1}\n`);
  assert.equal(inspect(file), "KeyFile(SIGNET_SIGNING_KEYS)");
  assert.ok(!JSON.stringify(file).includes(k1));
});

test("database URLs and the key file beside them, as signet reads them", () => {
  assert.equal(sqliteDatabaseFile("sqlite://./signet.db"), "./signet.db");
  assert.equal(sqliteDatabaseFile("sqlite:///var/lib/jobs.sqlite"), "/var/lib/jobs.sqlite");
  assert.equal(sqliteDatabaseFile("SQLITE:data"), "data");
  assert.equal(sqliteDatabaseFile("/plain/path.db"), "/plain/path.db");
  assert.equal(sqliteDatabaseFile("sqlite::memory:"), undefined);
  assert.equal(sqliteDatabaseFile("postgres://u@h:5432/db"), undefined);
  assert.equal(keyFileBeside("./signet.db"), "./signet.keys");
  assert.equal(keyFileBeside("/var/lib/jobs.sqlite"), "/var/lib/jobs.keys");
  assert.equal(keyFileBeside("data"), "data.keys");
  assert.equal(keyFileBeside("x.keys"), "x.keys.keys");
});

test("the file beside an SQLite database is read, and variables set here win over its lines", () => {
  const db = join(dir, "jobs.db");
  const keys = join(dir, "jobs.keys");
  writeKeys(
    keys,
    `# header\nSIGNET_SIGNING_ALGORITHM=hmac-sha256\nSIGNET_SIGNING_KEYS=k1:${k1},k2:${k2}\nSIGNET_SIGNING_ACTIVE_KEY=k1\nSIGNET_MASTER_KEY=${k1}\n`,
  );
  const loaded = loadKeys({ env: { SIGNET_DATABASE_URL: `sqlite://${db}` } });
  assert.deepEqual(loaded.source, { kind: "file", path: keys, named: false });
  assert.equal(loaded.ring.active?.id, "k1");
  assert.equal(loaded.description, `keys from ${keys}`);
  assert.deepEqual(loaded.warnings, []);
  const overridden = loadKeys({ env: { SIGNET_DATABASE_URL: db, SIGNET_SIGNING_ACTIVE_KEY: "k2" } });
  assert.equal(overridden.ring.active?.id, "k2");
  // A file other users can read loads, with a warning.
  chmodSync(keys, 0o644);
  const open = loadKeys({ env: { SIGNET_DATABASE_URL: db } });
  assert.deepEqual(open.warnings, [`the key file ${keys} can be read by other users (mode 0644); run \`chmod 600 ${keys}\``]);
  chmodSync(keys, 0o600);
  // A bad line in the file names the file; a bad combination too.
  assert.equal(
    configError(() => loadKeys({ env: { SIGNET_DATABASE_URL: db, SIGNET_SIGNING_ACTIVE_KEY: "k9" } })),
    `the key file ${keys} (with the SIGNET_SIGNING_* variables set here): SIGNET_SIGNING_ACTIVE_KEY is "k9", which is not among the configured keys (keys: k1, k2); add it to SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS, or pick another`,
  );
  const bad = join(dir, "bad.keys");
  writeKeys(bad, "PATH=/x\n");
  assert.equal(
    configError(() => loadKeys({ env: { SIGNET_KEYS_FILE: bad } })),
    `the key file ${bad}: line 1: "PATH" is not a variable a key file may hold; use the SIGNET_SIGNING_* variables and SIGNET_MASTER_KEY`,
  );
});

test("SIGNET_KEYS_FILE names the file; variables with key material win over any file", () => {
  const named = join(dir, "named.keys");
  writeKeys(named, `SIGNET_SIGNING_KEYS=n1:${k1}\n`);
  const loaded = loadKeys({ env: { SIGNET_KEYS_FILE: named, SIGNET_DATABASE_URL: join(dir, "jobs.db") } });
  assert.deepEqual(loaded.source, { kind: "file", path: named, named: true });
  assert.equal(loaded.ring.active?.id, "n1");
  assert.equal(loaded.description, `keys from ${named} (SIGNET_KEYS_FILE)`);

  const env = loadKeys({ env: { SIGNET_KEYS_FILE: named, SIGNET_SIGNING_KEYS: `v1:${k2}` } });
  assert.deepEqual(env.source, { kind: "environment" });
  assert.deepEqual(
    env.ring.keys.map((k) => k.id),
    ["v1"],
  );
  assert.deepEqual(env.warnings, [
    "both SIGNET_KEYS_FILE and SIGNET_SIGNING_KEYS (or the Ed25519 variables) are set: the variables win and only the file's SIGNET_MASTER_KEY is used; unset one of them",
  ]);
});

test("unknown SIGNET_ variables warn first, once each, with the closest name the SDK reads", () => {
  const unknown = (name: string, closest: string): string =>
    `${name} is not a Signet variable and is ignored; the closest known name is ${closest}`;
  const loaded = loadKeys({
    env: {
      SIGNET_SIGNING_KEYS: `k:${k1}`,
      SIGNET_MASTERKEY: "not-a-key",
      SIGNET_KEYSFILE: "/nowhere.keys",
      SIGNET_DATABASE_URLL: "sqlite://./x.db",
      SIGNET_MASTER_KEY: k2,
      SIGNET_TEST_DATABASE_URL: "postgres://x@localhost/t",
      SIGNET_DEV: "0",
      // Other programs' variables, from a shared .env file.
      SIGNET_LISTEN: "127.0.0.1:0",
      SIGNET_WORKER_QUEUES: "default",
      NOT_SIGNET: "1",
    },
  });
  assert.deepEqual(loaded.warnings, [
    unknown("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY"),
    unknown("SIGNET_KEYSFILE", "SIGNET_KEYS_FILE"),
    unknown("SIGNET_DATABASE_URLL", "SIGNET_DATABASE_URL"),
  ]);
  assert.ok(loaded.warnings.every((w) => !w.includes("not-a-key")), "names, never values");
  // Pairs may repeat a name: one warning; the loader's own warnings follow.
  const file = join(dir, "open.keys");
  writeKeys(file, `SIGNET_SIGNING_KEYS=o1:${k1}\n`, 0o644);
  const pairs = loadKeys({
    env: [
      ["SIGNET_KEYS_FILE", file],
      ["SIGNET_SIGNING_KEY", "x"],
      ["SIGNET_SIGNING_KEY", "y"],
    ],
  });
  assert.deepEqual(pairs.warnings, [
    unknown("SIGNET_SIGNING_KEY", "SIGNET_SIGNING_KEYS"),
    `the key file ${file} can be read by other users (mode 0644); run \`chmod 600 ${file}\``,
  ]);
});

test("no keys: each refusal, and SIGNET_DEV=1 runs without", () => {
  const missing = join(dir, "missing.keys");
  assert.equal(
    configError(() => loadKeys({ env: { SIGNET_KEYS_FILE: missing } })),
    `SIGNET_KEYS_FILE names ${missing}, which does not exist; Signet creates key files only beside an embedded (SQLite) database. Copy the key file every node shares there, or generate one with \`signet keys generate > ${missing}\` (and \`chmod 600\` it)`,
  );
  assert.match(
    configError(() => loadKeys({ env: { SIGNET_DATABASE_URL: "postgres://u@h/db" } })),
    /^no signing keys: this store has no key file of its own \(PostgreSQL, or an in-memory database\)/,
  );
  const fresh = join(dir, "fresh.db");
  assert.equal(
    configError(() => loadKeys({ env: { SIGNET_DATABASE_URL: fresh } })),
    `no signing keys: no SIGNET_SIGNING_* variables are set and there is no key file at ${join(dir, "fresh.keys")} beside the database; an SDK never creates one. Run a signet command on that database first (\`signet keys ls\` creates it), or set SIGNET_KEYS_FILE or the SIGNET_SIGNING_* variables (\`signet keys generate\` prints them); to run unsigned on purpose set SIGNET_DEV=1`,
  );
  assert.ok(!existsSync(join(dir, "fresh.keys")), "an SDK never creates a key file");
  const dev = loadKeys({ env: { SIGNET_DATABASE_URL: "sqlite::memory:", SIGNET_DEV: "1" } });
  assert.deepEqual(dev.source, { kind: "nothing" });
  assert.ok(dev.dev && !dev.required);
  // Dev mode is a state, said by the summary, not a warning.
  assert.deepEqual(dev.warnings, []);
  assert.equal(summary(dev), "signing off: no keys configured, unsigned work is accepted; DEV MODE: signatures are not verified");
});

test("a key file may hold the previous master keys of a rotation, which the SDK ignores", () => {
  const keys = join(dir, "rotating.keys");
  writeKeys(
    keys,
    `SIGNET_SIGNING_KEYS=k1:${k1}\nSIGNET_SIGNING_ACTIVE_KEY=k1\nSIGNET_MASTER_KEY=${k2}\nSIGNET_MASTER_KEY_PREVIOUS=${k1}\n`,
  );
  const loaded = loadKeys({ env: { SIGNET_KEYS_FILE: keys } });
  assert.equal(loaded.ring.active?.id, "k1");
  assert.deepEqual(loaded.warnings, []);
});
