/**
 * The README's examples run as written: each ```js block is run with Node
 * against the built package (imported as "@signet/sdk" through the
 * package's own exports), and each `console.log(…); // value` line prints
 * that value. Blocks that talk to `http://127.0.0.1:8787` run, in order,
 * against one real `signet serve` (SIGNET_BIN) with the README's
 * environment (`SIGNET_API_KEY`, `SIGNET_DATABASE_URL`), the URL replaced
 * by the test server's; without SIGNET_BIN they are skipped.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";

import { SDK_DIR } from "./helpers.js";
import { serverSkip, startServer, type TestServer } from "./server.js";

const readme = readFileSync(join(SDK_DIR, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");

/** The value a `// …` comment promises: a "string", a 'string' or a bare word. */
function promised(comment: string): string {
  const c = comment.trim();
  if (c.startsWith('"')) return JSON.parse(c.slice(0, c.indexOf('"', 1) + 1)) as string;
  if (c.startsWith("'")) return c.slice(1, c.indexOf("'", 1));
  return c.split(/[\s:;,]/)[0] ?? "";
}

test("the README has examples", () => {
  assert.ok(blocks.length >= 3, `found ${blocks.length}`);
});

const DEFAULT_URL = "http://127.0.0.1:8787";
const skip = serverSkip();
let server: TestServer | undefined;
after(async () => server?.stop());

blocks.forEach((block, i) => {
  const needsServer = block.includes(DEFAULT_URL);
  test(`README example ${i + 1} runs and prints what it says`, { skip: needsServer ? skip : false }, async () => {
    const file = join(SDK_DIR, "dist", `readme-example-${i + 1}.mjs`);
    let code = block;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith("SIGNET_")) env[k] = v;
    }
    if (needsServer) {
      server ??= await startServer();
      code = code.replaceAll(DEFAULT_URL, server.url.replace(/\/$/, ""));
      env["SIGNET_API_KEY"] = server.workKey;
      env["SIGNET_DATABASE_URL"] = server.env["SIGNET_DATABASE_URL"] as string;
    }
    writeFileSync(file, code);
    try {
      const out = execFileSync(process.execPath, [file], { cwd: SDK_DIR, env, encoding: "utf8" });
      const printed = out.split("\n");
      const expected = code
        .split("\n")
        .map((line) => /console\.log\(.*\);\s*\/\/(.*)$/.exec(line)?.[1])
        .filter((c): c is string => c !== undefined)
        .map(promised);
      assert.ok(expected.length > 0, "the example promises some output");
      assert.deepEqual(printed.slice(0, expected.length), expected);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
