/** The SIGNET_SIGNING_* rules: each refusal with its message, warnings, unknown variables, and redaction. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";

import {
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HmacKey,
  KeyRing,
  PROGRAM_VARIABLES,
  SignetError,
  SHARED_VARIABLES,
  VARIABLES,
  checkKeyId,
  loadKeys,
  signingConfigFromVars,
  summary,
  unknownVariables,
  type SigningConfig,
} from "../src/index.js";
import { editDistance } from "../src/config.js";
import { b64, repoFile } from "./helpers.js";

const secret = b64(Buffer.from("0123456789abcdef0123456789abcdef"));

function edPair(seed: number): [string, string] {
  const key = new Ed25519PrivateKey("x", new Uint8Array(32).fill(seed));
  return [b64(new Uint8Array(32).fill(seed)), b64(key.publicKey)];
}

function parse(vars: Record<string, string>): SigningConfig {
  return signingConfigFromVars(vars);
}

function refusal(vars: Array<[string, string]> | Record<string, string>): string {
  try {
    signingConfigFromVars(vars);
  } catch (e) {
    assert.ok(e instanceof SignetError && e.reason === "config", String(e));
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(Object.keys(vars))}`);
}

// A non-canonical encoding of a point (y = p + k, the same point as y = k;
// the first such k that is a point of large order) and the identity (small order).
const nonCanonical = (() => {
  for (let k = 0; k < 19; k++) {
    const b = new Uint8Array(32).fill(0xff);
    b[0] = 0xed + k;
    b[31] = 0x7f;
    try {
      new Ed25519PublicKey("n", b);
    } catch (e) {
      if (e instanceof Error && e.message.includes("not canonically encoded")) return b;
    }
  }
  throw new Error("no non-canonical encoding of a large-order point found");
})();
const identity = (() => {
  const b = new Uint8Array(32);
  b[0] = 1;
  return b;
})();

test("each refusal says what is wrong, naming the variable and id, never the secret", () => {
  const cases: Array<[Array<[string, string]>, string]> = [
    [
      [["SIGNET_SIGNING_KEYS", `k1:${secret}`], ["SIGNET_SIGNING_ACTIVE_KEY", "k9"]],
      'SIGNET_SIGNING_ACTIVE_KEY is "k9", which is not among the configured keys (keys: k1); add it to SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS, or pick another',
    ],
    [
      [["SIGNET_SIGNING_ACTIVE_KEY", "k9"]],
      'SIGNET_SIGNING_ACTIVE_KEY is "k9", which is not among the configured keys (none are configured); add it to SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS, or pick another',
    ],
    [
      [["SIGNET_SIGNING_KEYS", `k1:${secret}`], ["SIGNET_SIGNING_ACTIVE_KEY", secret]],
      "SIGNET_SIGNING_ACTIVE_KEY is not a key id (1 to 64 of A-Z a-z 0-9 . _ -); set it to the id of a configured key, not to a key",
    ],
    [
      [["SIGNET_SIGNING_KEYS", `k1:${secret}*`]],
      'SIGNET_SIGNING_KEYS: key "k1" is not valid base64: character 44 is not in the base64 alphabet',
    ],
    [
      [["SIGNET_SIGNING_KEYS", `k1:${b64(new Uint8Array(15).fill(1))}`]],
      'SIGNET_SIGNING_KEYS: key "k1" is 15 bytes; HMAC keys must be at least 16 bytes (generate one with `signet keys generate`)',
    ],
    [
      [["SIGNET_SIGNING_PUBLIC_KEYS", `p:${b64(new Uint8Array(31).fill(1))}`]],
      'SIGNET_SIGNING_PUBLIC_KEYS: key "p": Ed25519 public key is 31 bytes; it must be 32',
    ],
    [
      [["SIGNET_SIGNING_PUBLIC_KEYS", `p:${b64(nonCanonical)}`]],
      'SIGNET_SIGNING_PUBLIC_KEYS: key "p": Ed25519 public key is not canonically encoded (the point has a shorter, canonical encoding); re-export the key',
    ],
    [
      [["SIGNET_SIGNING_PUBLIC_KEYS", `p:${b64(identity)}`]],
      'SIGNET_SIGNING_PUBLIC_KEYS: key "p": Ed25519 public key is of small order and would accept forged signatures',
    ],
    [
      [["SIGNET_SIGNING_PRIVATE_KEYS", `s:${b64(new Uint8Array(33).fill(1))}`]],
      'SIGNET_SIGNING_PRIVATE_KEYS: key "s": Ed25519 private key is 33 bytes; it must be 32 (seed) or 64 (seed ‖ public key)',
    ],
    [
      [["SIGNET_SIGNING_PRIVATE_KEYS", `s:${b64([...new Uint8Array(32).fill(1), ...new Uint8Array(32).fill(2)])}`]],
      "SIGNET_SIGNING_PRIVATE_KEYS: key \"s\": Ed25519 key pair's public half does not match its private seed",
    ],
    [[["SIGNET_SIGNING_ALGORITHM", "rsa"]], 'SIGNET_SIGNING_ALGORITHM is "rsa"; use "hmac-sha256" or "ed25519"'],
    [[["SIGNET_SIGNING_KEYS", `:${secret}`]], "SIGNET_SIGNING_KEYS: entry 1 has an empty key id; write it as id:base64"],
    [
      [["SIGNET_SIGNING_KEYS", secret]],
      "SIGNET_SIGNING_KEYS: entry 1 has no ':'; write each key as id:base64, separated by commas",
    ],
    [
      [["SIGNET_SIGNING_KEYS", `${secret}+/:${secret}`]],
      "SIGNET_SIGNING_KEYS: entry 1 has an invalid key id (1 to 64 of A-Z a-z 0-9 . _ -); write each key as id:base64",
    ],
    [[["SIGNET_SIGNING_KEYS", "k1:  ,"]], 'SIGNET_SIGNING_KEYS: key "k1" has no key material after \':\''],
    [
      [["SIGNET_SIGNING_KEYS", `a:${secret},a:${secret}`]],
      'SIGNET_SIGNING_KEYS: key id "a" is given twice; give each key its own id',
    ],
    [
      [["SIGNET_SIGNING_PUBLIC_KEYS", `p:${edPair(1)[1]},p:${edPair(2)[1]}`]],
      'SIGNET_SIGNING_PUBLIC_KEYS: key id "p" is given twice; give each key its own id',
    ],
    [
      [["SIGNET_SIGNING_KEYS", `a:${secret}`], ["SIGNET_SIGNING_PUBLIC_KEYS", `a:${edPair(1)[1]}`]],
      'key id "a" is given in both SIGNET_SIGNING_KEYS and SIGNET_SIGNING_PUBLIC_KEYS; give each key its own id',
    ],
    [
      [["SIGNET_SIGNING_PRIVATE_KEYS", `e:${edPair(1)[0]}`], ["SIGNET_SIGNING_PUBLIC_KEYS", `e:${edPair(2)[1]}`]],
      'SIGNET_SIGNING_PRIVATE_KEYS: key "e" does not match the public key of the same id in SIGNET_SIGNING_PUBLIC_KEYS; export both halves of one key pair',
    ],
    [
      [["SIGNET_SIGNING_REQUIRED", "true"]],
      "SIGNET_SIGNING_REQUIRED is on but no keys are configured; set SIGNET_SIGNING_KEYS (HMAC) or SIGNET_SIGNING_PRIVATE_KEYS/SIGNET_SIGNING_PUBLIC_KEYS (Ed25519)",
    ],
    [
      [["SIGNET_SIGNING_KEYS", `a:${secret}`], ["SIGNET_SIGNING_REQUIRED", "yes"]],
      'SIGNET_SIGNING_REQUIRED is "yes"; use true, false, 1 or 0',
    ],
    [
      [["SIGNET_SIGNING_ALGORITHM", "ed25519"], ["SIGNET_SIGNING_KEYS", `a:${secret}`]],
      "SIGNET_SIGNING_ALGORITHM is ed25519 but no ed25519 key is configured; add one to SIGNET_SIGNING_PRIVATE_KEYS or SIGNET_SIGNING_PUBLIC_KEYS",
    ],
    [
      [["SIGNET_SIGNING_ALGORITHM", "hmac-sha256"], ["SIGNET_SIGNING_PRIVATE_KEYS", `e:${edPair(1)[0]}`]],
      "SIGNET_SIGNING_ALGORITHM is hmac-sha256 but no hmac-sha256 key is configured; add one to SIGNET_SIGNING_KEYS",
    ],
    [
      [
        ["SIGNET_SIGNING_ALGORITHM", "hmac-sha256"],
        ["SIGNET_SIGNING_KEYS", `a:${secret}`],
        ["SIGNET_SIGNING_PRIVATE_KEYS", `e:${edPair(1)[0]}`],
        ["SIGNET_SIGNING_ACTIVE_KEY", "e"],
      ],
      'SIGNET_SIGNING_ACTIVE_KEY is "e", a ed25519 key, but SIGNET_SIGNING_ALGORITHM is hmac-sha256; make them agree',
    ],
    [
      [["SIGNET_SIGNING_PUBLIC_KEYS", `e1:${edPair(1)[1]}`], ["SIGNET_SIGNING_ACTIVE_KEY", "e1"]],
      'SIGNET_SIGNING_ACTIVE_KEY is "e1", an Ed25519 public key, which cannot sign; add its private key to SIGNET_SIGNING_PRIVATE_KEYS or unset SIGNET_SIGNING_ACTIVE_KEY for a verify-only setup',
    ],
    [
      [["SIGNET_SIGNING_KEYS", `a:${secret},b:${secret}`]],
      "SIGNET_SIGNING_ACTIVE_KEY is not set and 2 hmac-sha256 keys can sign (a, b); set it to the one that should sign",
    ],
    [
      [["SIGNET_SIGNING_PUBLIC_KEYS", `p:${edPair(1)[1]}`], ["SIGNET_SIGNING_OVERLAP_KEYS", "p"]],
      "SIGNET_SIGNING_OVERLAP_KEYS is set but there is no active key; set SIGNET_SIGNING_ACTIVE_KEY first",
    ],
    [
      [["SIGNET_SIGNING_KEYS", `old:${secret},new:${secret}`], ["SIGNET_SIGNING_ACTIVE_KEY", "new"], ["SIGNET_SIGNING_OVERLAP_KEYS", "gone"]],
      'SIGNET_SIGNING_OVERLAP_KEYS: key "gone" is not in the key ring (keys: old, new); it cannot sign during the overlap',
    ],
    [
      [
        ["SIGNET_SIGNING_KEYS", `k:${secret}`],
        ["SIGNET_SIGNING_PUBLIC_KEYS", `p:${edPair(1)[1]}`],
        ["SIGNET_SIGNING_OVERLAP_KEYS", "p"],
      ],
      'SIGNET_SIGNING_OVERLAP_KEYS: key "p" is an Ed25519 public key and cannot sign during the overlap; give its private key',
    ],
  ];
  for (const [vars, expected] of cases) {
    const message = refusal(vars);
    assert.equal(message, expected);
    assert.ok(!message.includes(secret.slice(0, 12)), `secret leaked: ${message}`);
  }
});

test("HMAC keys: one key is active by default, whsec_ and URL-safe base64 accepted", () => {
  const keys = `k1:${b64(new Uint8Array(32).fill(1))},k2:${b64(new Uint8Array(32).fill(2))}`;
  const cfg = parse({ SIGNET_SIGNING_KEYS: keys, SIGNET_SIGNING_ACTIVE_KEY: "k2" });
  assert.equal(cfg.ring.active?.id, "k2");
  assert.equal(cfg.ring.algorithm, "hmac-sha256");
  assert.ok(cfg.required && !cfg.dev);
  assert.deepEqual(cfg.warnings, []);
  const one = parse({ SIGNET_SIGNING_KEYS: `only:whsec_${b64(new Uint8Array(32).fill(0xfb))}` });
  assert.equal(one.ring.active?.id, "only");
  const urlSafe = Buffer.from(new Uint8Array(32).fill(0xfb)).toString("base64url");
  const same = parse({ SIGNET_SIGNING_KEYS: `only:${urlSafe}` });
  assert.equal(same.ring.active?.fingerprint, one.ring.active?.fingerprint);
});

test("Ed25519: private with public, verify-only with public keys alone", () => {
  const [seed, pub] = edPair(4);
  const cfg = parse({
    SIGNET_SIGNING_ALGORITHM: "ed25519",
    SIGNET_SIGNING_PRIVATE_KEYS: `e1:${seed}`,
    SIGNET_SIGNING_PUBLIC_KEYS: `e1:${pub}`,
  });
  assert.equal(cfg.ring.keys.length, 1);
  assert.equal(cfg.ring.algorithm, "ed25519");
  const vo = parse({ SIGNET_SIGNING_PUBLIC_KEYS: `e1:whpk_${pub}` });
  assert.equal(vo.ring.active, undefined);
  assert.ok(vo.required);
  assert.equal(summary(vo), "signing on (verify only): 1 key (e1)");
});

test("warnings: short keys and SIGNET_DEV values; signing off and dev mode are states, not warnings", () => {
  const short = parse({ SIGNET_SIGNING_KEYS: `k:${b64(new Uint8Array(20).fill(5))}` });
  assert.deepEqual(short.warnings, ['SIGNET_SIGNING_KEYS: key "k" is 20 bytes; 32 or more are recommended']);
  // A mistyped name is no business of the configuration: loadKeys names it.
  const typo = parse({
    SIGNET_SIGNING_KEYS: `a:${secret}`,
    SIGNET_SIGNING_ACTIV_KEY: "b",
    PATH: "/bin",
  });
  assert.deepEqual(typo.warnings, []);
  for (const [value, on] of [
    ["1", true],
    ["true", true],
    ["TRUE", false],
    ["0", false],
    ["yes", false],
    ["on", false],
    ["", false],
  ] as const) {
    const cfg = parse({ SIGNET_DEV: value });
    assert.equal(cfg.dev, on, value);
    const odd = ["yes", "on", "TRUE"].includes(value);
    assert.deepEqual(
      cfg.warnings,
      odd
        ? [
            "SIGNET_DEV is set to a value other than 1 or true, so dev mode stays off; set it to 1 or true to turn it on, or remove it",
          ]
        : [],
      value,
    );
    // Dev mode is a state: the summary says it.
    assert.equal(summary(cfg).endsWith("; DEV MODE: signatures are not verified"), on, value);
  }
  const off = parse({});
  assert.ok(!off.required && off.ring.keys.length === 0);
  assert.deepEqual(off.warnings, []);
  assert.equal(summary(off), "signing off: no keys configured, unsigned work is accepted");
  const offWithKeys = parse({ SIGNET_SIGNING_KEYS: `k:${secret}`, SIGNET_SIGNING_REQUIRED: "false" });
  assert.deepEqual(offWithKeys.warnings, []);
  assert.equal(summary(offWithKeys), "signing off (SIGNET_SIGNING_REQUIRED=false): 1 key (k)");
});

const unknown = (name: string, closest: string): string =>
  `${name} is not a Signet variable and is ignored; the closest known name is ${closest}`;

test("unknown SIGNET_ variables are named with the closest known one", () => {
  // The Rust side's unit test, name for name.
  const names = [
    "SIGNET_SIGNING_ACTIV_KEY",
    "SIGNET_MASTERKEY",
    "SIGNET_LISTN",
    "SIGNET_LISTEN",
    "SIGNET_SIGNING_KEYS",
    "SIGNET_TEST_DATABASE_URL",
    "PATH",
    "NO_COLOR",
  ];
  assert.deepEqual(unknownVariables(names, ["SIGNET_LISTEN"]), [
    unknown("SIGNET_SIGNING_ACTIV_KEY", "SIGNET_SIGNING_ACTIVE_KEY"),
    unknown("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY"),
    unknown("SIGNET_LISTN", "SIGNET_LISTEN"),
  ]);
  // SIGNET_LISTEN is every program's (PROGRAM_VARIABLES), own or not.
  assert.deepEqual(unknownVariables(names, []), [
    unknown("SIGNET_SIGNING_ACTIV_KEY", "SIGNET_SIGNING_ACTIVE_KEY"),
    unknown("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY"),
    unknown("SIGNET_LISTN", "SIGNET_LISTEN"),
  ]);
  // The prefix is case-sensitive, as every variable name is.
  assert.deepEqual(unknownVariables(["signet_dev", "Signet_X"], []), []);
  // Rust's shared_variables() order: VARIABLES, the master key, the test
  // database, then PROGRAM_VARIABLES.
  assert.deepEqual(SHARED_VARIABLES, [
    ...VARIABLES,
    "SIGNET_MASTER_KEY",
    "SIGNET_MASTER_KEY_PREVIOUS",
    "SIGNET_TEST_DATABASE_URL",
    ...PROGRAM_VARIABLES,
  ]);
});

test("one program's variables are no alarm in another's environment", () => {
  // A worker started beside `signet serve`, with one `.env` file.
  assert.deepEqual(unknownVariables(["SIGNET_LISTEN", "SIGNET_WORKER_QUEUES"], []), []);
  const env = { SIGNET_SIGNING_KEYS: `k:${secret}`, SIGNET_LISTEN: "127.0.0.1:8080", SIGNET_WORKER_QUEUES: "default" };
  assert.deepEqual(loadKeys({ env }).warnings, []);
});

test("PROGRAM_VARIABLES is signet-sign's list, name for name and in its order", () => {
  // Read from the Rust source at test time, like the vectors.
  const path = "crates/signet-sign/src/config.rs";
  const found = /pub const PROGRAM_VARIABLES\s*:[^=]*=\s*\[([\s\S]*?)\];/.exec(repoFile(path));
  assert.ok(found, `no PROGRAM_VARIABLES array in ${path}`);
  const rust = [...(found[1] ?? "").matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  assert.ok(rust.length > 0, `PROGRAM_VARIABLES in ${path} has no names`);
  assert.deepEqual(
    [...PROGRAM_VARIABLES],
    rust,
    `PROGRAM_VARIABLES in src/config.ts differs from PROGRAM_VARIABLES in ${path}; copy the list from that file, in its order`,
  );
});

test("a tie goes to the first known name, the program's own before the shared ones", () => {
  assert.deepEqual(unknownVariables(["SIGNET_X"], ["SIGNET_A", "SIGNET_B"]), [unknown("SIGNET_X", "SIGNET_A")]);
  assert.deepEqual(unknownVariables(["SIGNET_X"], ["SIGNET_B", "SIGNET_A"]), [unknown("SIGNET_X", "SIGNET_B")]);
  // SIGNET_DEW is one edit from SIGNET_DEX and from SIGNET_DEV.
  assert.deepEqual(unknownVariables(["SIGNET_DEW"], ["SIGNET_DEX"]), [unknown("SIGNET_DEW", "SIGNET_DEX")]);
});

test("edit distance counts bytes", () => {
  for (const [a, b, distance] of [
    ["SIGNET_MASTERKEY", "SIGNET_MASTER_KEY", 1],
    ["", "ab", 2],
    ["kitten", "sitting", 3],
    ["ab", "", 2],
    ["same", "same", 0],
    ["é", "e", 2], // é is two bytes
  ] as const) {
    assert.equal(editDistance(a, b), distance, `${a} ${b}`);
    assert.equal(editDistance(b, a), distance, `${b} ${a}`);
  }
});

test("overlap keys sign beside the active one; the summary names ids only", () => {
  const keys = `old:${b64(new Uint8Array(32).fill(1))},new:${b64(new Uint8Array(32).fill(2))}`;
  const cfg = parse({
    SIGNET_SIGNING_KEYS: keys,
    SIGNET_SIGNING_ACTIVE_KEY: "new",
    SIGNET_SIGNING_OVERLAP_KEYS: "old",
  });
  assert.deepEqual(
    cfg.ring.signers().map((k) => k.id),
    ["new", "old"],
  );
  assert.equal(
    summary(cfg),
    'signing on: hmac-sha256, active key "new", also signing with old, 2 keys (old, new)',
  );
});

test("empty values are absent and the last of a repeated variable wins", () => {
  const cfg = signingConfigFromVars([
    ["SIGNET_SIGNING_KEYS", `a:${secret}`],
    ["SIGNET_SIGNING_ACTIVE_KEY", "zzz"],
    ["SIGNET_SIGNING_ACTIVE_KEY", "  "],
  ]);
  assert.equal(cfg.ring.active?.id, "a");
});

test("key ids: 1 to 64 of A-Z a-z 0-9 . _ -", () => {
  assert.equal(checkKeyId("primary-2024.v1_a"), "primary-2024.v1_a");
  assert.equal(checkKeyId("x".repeat(64)), "x".repeat(64));
  const message = (id: string): string => {
    try {
      checkKeyId(id);
    } catch (e) {
      assert.ok(e instanceof SignetError && e.reason === "config");
      return e.message;
    }
    return "accepted";
  };
  assert.equal(message(""), "key id is empty; use 1 to 64 characters of A-Z a-z 0-9 . _ -");
  assert.equal(message("x".repeat(65)), "key id is 65 characters long; the limit is 64");
  assert.equal(message("has space"), `key id "has space" contains ' '; use only A-Z a-z 0-9 . _ -`);
});

test("the key ring refuses duplicate ids, an active key it lacks, a public active key", () => {
  const a = new HmacKey("a", new Uint8Array(32).fill(1));
  const pub = new Ed25519PrivateKey("p", new Uint8Array(32).fill(9)).toVerifying();
  const message = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof SignetError && e.reason === "config");
      return e.message;
    }
    return "accepted";
  };
  assert.equal(
    message(() => new KeyRing([a, new HmacKey("a", new Uint8Array(32).fill(2))])),
    'key id "a" appears twice in the key ring; give each key its own id',
  );
  assert.equal(
    message(() => new KeyRing([a], "b")),
    'active key "b" is not in the key ring (keys: a); add it or pick one of those',
  );
  assert.equal(
    message(() => new KeyRing([pub], "p")),
    'active key "p" is an Ed25519 public key and cannot sign; give its private key or leave the active key unset for a verify-only ring',
  );
  assert.equal(KeyRing.single(pub).active, undefined);
});

test("no secret is ever printed: inspect, String, JSON of keys and rings", () => {
  const raw = Buffer.from("super-secret-value-1234567890abc");
  const seed = new Uint8Array(32).fill(7);
  const hmac = new HmacKey("k1", raw);
  const ed = new Ed25519PrivateKey("e1", seed);
  const ring = new KeyRing([hmac, ed], "k1");
  const seedB64 = b64(seed);
  const seedHex = Buffer.from(seed).toString("hex");
  for (const shown of [
    inspect(hmac),
    inspect(ed),
    inspect(ring),
    inspect(ring, { showHidden: true, depth: 10 }),
    inspect({ nested: [hmac, ed] }, { depth: 10 }),
    String(hmac),
    String(ed),
    String(ring),
    JSON.stringify(hmac),
    JSON.stringify(ed),
    JSON.stringify(ring),
    `${hmac}`,
  ]) {
    assert.ok(!shown.includes("super-secret"), shown);
    assert.ok(!shown.includes(raw.toString("base64")), shown);
    assert.ok(!shown.includes(raw.toString("hex")), shown);
    assert.ok(!shown.includes(seedB64) && !shown.includes(seedHex), shown);
  }
  assert.match(inspect(hmac), /^HmacKey\(k1, hmac-sha256, sha256:[0-9a-f]{16}\) \[secret redacted\]$/);
  assert.match(String(ring), /^KeyRing\[k1 \(hmac-sha256, sha256:[0-9a-f]{16}, active\), e1 \(ed25519, sha256:[0-9a-f]{16}\)\]$/);
  assert.deepEqual(Object.keys(hmac).sort(), ["algorithm", "canSign", "fingerprint", "id"]);
});
