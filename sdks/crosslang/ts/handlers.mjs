// The handler every TypeScript consumer of the matrix runs: it records the
// task id in CROSSLANG_RAN (one line per run, so a test can tell that a
// handler never ran) and answers what it saw.
import { appendFileSync } from "node:fs";
import { need } from "./sdk.mjs";

const ran = need("CROSSLANG_RAN");

export const handlers = {
  echo: async (args, ctx) => {
    appendFileSync(ran, `${ctx.id}\n`);
    return { lang: "typescript", args, key_id: ctx.keyId ?? null, attempt: ctx.attempt };
  },
};
