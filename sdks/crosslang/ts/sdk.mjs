// Loads the TypeScript SDK this repository builds (sdks/typescript, `npm run
// build`), or the one CROSSLANG_TS_SDK names (a path to its index.js).
import { pathToFileURL } from "node:url";

const where =
  process.env.CROSSLANG_TS_SDK ?? new URL("../../typescript/dist/src/index.js", import.meta.url).pathname;

export const sdk = await import(pathToFileURL(where).href);

/** A required setting from the environment; exits 2 naming it when absent. */
export function need(name) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}
