// A webhook receiver that verifies with the `standardwebhooks` package from npm.
//
// Used by Signet's end-to-end tests so that every delivery is checked by a
// library we did not write. It listens on 127.0.0.1 (port from argv, 0 = any),
// prints `listening <port>` once, then one JSON line per request:
// {"receiver":"node","id":…,"verified":true|false,"error":…}. It answers 204 to
// a verified delivery and 401 otherwise. The secret comes from the
// SIGNET_RECEIVER_SECRET environment variable (whsec_…), never from argv.
"use strict";

const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const webhook = new Webhook(process.env.SIGNET_RECEIVER_SECRET.replace(/^whsec_/, ""));

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const event = { receiver: "node", id: req.headers["webhook-id"] || null };
    let status = 204;
    try {
      // Signet delivers text bodies too: verify only, do not parse as JSON.
      webhook.verify(body, req.headers, { jsonParse: false });
      event.verified = true;
    } catch (err) {
      event.verified = false;
      event.error = String(err && err.message ? err.message : err);
      status = 401;
    }
    process.stdout.write(JSON.stringify(event) + "\n");
    res.writeHead(status, { "content-length": "0" });
    res.end();
  });
});

const port = Number(process.argv[2] || 0);
server.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
