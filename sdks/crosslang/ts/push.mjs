// The TypeScript push endpoint of the matrix: createPushListener on
// 127.0.0.1:CROSSLANG_PORT (printed as "listening <port>" once it listens), the target's secret
// from CROSSLANG_SECRET, the task keys from loadKeys(); runs until SIGTERM.
import http from "node:http";
import { handlers } from "./handlers.mjs";
import { need, sdk } from "./sdk.mjs";

const listener = sdk.createPushListener({ secret: need("CROSSLANG_SECRET"), keys: sdk.loadKeys(), handlers });
const server = http.createServer(listener);
server.listen(Number(process.env.CROSSLANG_PORT ?? 0), "127.0.0.1", () =>
  console.log(`listening ${server.address().port}`),
);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
