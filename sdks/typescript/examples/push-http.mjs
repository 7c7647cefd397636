// A push endpoint with node:http only:
//   SIGNET_TARGET_SECRET=whsec_… SIGNET_DATABASE_URL=sqlite://./signet.db node examples/push-http.mjs
import http from "node:http";
import { createPushListener, loadKeys } from "@signet/sdk";

const listener = createPushListener({
  secret: process.env.SIGNET_TARGET_SECRET, // the target's whsec_… secret
  keys: loadKeys(), // the producers' keys (public keys suffice for Ed25519)
  handlers: {
    "welcome.send": async (args, ctx) => ({ sent: args.to, task: ctx.id }),
  },
});
const server = http.createServer(listener);
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () =>
  console.log(`push endpoint on http://127.0.0.1:${server.address().port}/`),
);
