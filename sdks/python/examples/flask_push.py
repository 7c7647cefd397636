"""A push endpoint in Flask: Signet POSTs each task of a bound queue here.

    pip install ./sdks/python flask
    export SIGNET_PUSH_SECRET=whsec_…      # the target's secret (POST /v1/targets gave it)
    export SIGNET_KEYS_FILE=./signet.keys  # or SIGNET_SIGNING_PUBLIC_KEYS=… (Ed25519)
    flask --app flask_push run --port 8791

Flask is not a dependency of signet-sdk; the SDK's part is framework-free
(PushEndpoint.handle takes headers and the raw body).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, request

from signet_sdk import Handlers, PushEndpoint, Retry

handlers = Handlers()


@handlers.task("email.send")
def send_email(args: dict[str, Any]) -> dict[str, Any]:
    if args.get("to", "").endswith("@example.invalid"):
        raise Retry(after_ms=60_000, message="mail server busy")
    return {"sent_to": args["to"]}  # becomes the task's result


endpoint = PushEndpoint(secret=os.environ["SIGNET_PUSH_SECRET"], handlers=handlers)
app = Flask(__name__)


@app.post("/signet/push")
def push() -> Response:
    # The raw bytes, exactly as signed: never request.json.
    answer = endpoint.handle(dict(request.headers), request.get_data())
    return Response(answer.body, status=answer.status, headers=answer.headers)
