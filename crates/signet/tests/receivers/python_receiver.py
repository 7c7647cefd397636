"""A webhook receiver that verifies with the `standardwebhooks` package from PyPI.

Used by Signet's end-to-end tests so that every delivery is checked by a
library we did not write. It listens on 127.0.0.1 (port from argv, 0 = any),
prints `listening <port>` once, then one JSON line per request:
{"receiver":"python","id":…,"verified":true|false,"error":…}. It answers 204
to a verified delivery and 401 otherwise. The secret comes from the
SIGNET_RECEIVER_SECRET environment variable (whsec_…), never from argv.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

WEBHOOK = Webhook(os.environ["SIGNET_RECEIVER_SECRET"])
# Requests are handled on several threads; print() writes the text and the
# newline separately, so lines could interleave. One locked write per line.
OUTPUT = threading.Lock()


def emit(event):
    line = json.dumps(event) + "\n"
    with OUTPUT:
        sys.stdout.write(line)
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {k: v for k, v in self.headers.items()}
        event = {"receiver": "python", "id": headers.get("webhook-id") or headers.get("Webhook-Id")}
        try:
            WEBHOOK.verify(body, headers, json_parse=False)
            event["verified"] = True
            status = 204
        except Exception as exc:  # report every failure to the test
            event["verified"] = False
            event["error"] = str(exc)
            status = 401
        emit(event)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
