// The TypeScript pull worker of the matrix: verifies with loadKeys() (an
// Ed25519 worker gets SIGNET_SIGNING_PUBLIC_KEYS only), runs `echo` on
// CROSSLANG_QUEUES (comma separated) until SIGTERM.
import { handlers } from "./handlers.mjs";
import { need, sdk } from "./sdk.mjs";

const worker = new sdk.Worker({
  url: need("CROSSLANG_URL"),
  apiKey: need("CROSSLANG_API_KEY"),
  queues: need("CROSSLANG_QUEUES").split(","),
  concurrency: 4,
  waitMs: 1000,
});
for (const [name, handler] of Object.entries(handlers)) worker.task(name, handler);
await worker.run();
