// A push endpoint with Express. Express is not a dependency of the SDK:
//   npm install express ./sdks/typescript
//   SIGNET_TARGET_SECRET=whsec_… SIGNET_DATABASE_URL=sqlite://./signet.db node examples/express-push.mjs
// then bind a queue to it: signet queues bind emails --url http://127.0.0.1:3000/signet --target T
// (127.0.0.1 must be allowed by the server's --allowed-target-cidrs).
import express from "express";
import { handlePush, loadKeys } from "@signet/sdk";

const options = {
  secret: process.env.SIGNET_TARGET_SECRET, // the target's whsec_… secret
  keys: loadKeys(), // the producers' keys: SIGNET_SIGNING_* or the key file
  handlers: {
    "welcome.send": async (args, ctx) => ({ sent: args.to, task: ctx.id }),
  },
};

const app = express();
// The raw body, byte for byte: the hop's signature is over it, so no JSON parser may run first.
app.post("/signet", express.raw({ type: "*/*", limit: "4mb" }), async (req, res) => {
  const out = await handlePush({ headers: req.headers, body: req.body }, options);
  res.status(out.status).set(out.headers).send(out.body);
});
app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => console.log("push endpoint on /signet"));
