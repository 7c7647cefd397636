"""A push endpoint in FastAPI (or any ASGI framework): route the SDK's ASGI
app to the exact path the queue binding's URL points at.

    pip install ./sdks/python fastapi uvicorn
    export SIGNET_PUSH_SECRET=whsec_…      # the target's secret
    export SIGNET_KEYS_FILE=./signet.keys  # or SIGNET_SIGNING_PUBLIC_KEYS=… (Ed25519)
    uvicorn fastapi_push:app --port 8791

Handlers run in a worker thread, so blocking code does not stall the event
loop; an ``async def`` handler runs on that thread's own loop.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from signet_sdk import Handlers, PushEndpoint, Task, asgi_app

handlers = Handlers()


@handlers.task("report.build")
async def build_report(args: dict[str, Any], task: Task) -> dict[str, Any]:
    return {"month": args["month"], "attempt": task.attempt}


endpoint = PushEndpoint(secret=os.environ["SIGNET_PUSH_SECRET"], handlers=handlers)
app = FastAPI()
# add_route, not mount: a mount serves only paths below "/signet/push", so a
# POST to "/signet/push" itself would be redirected (307), and the
# dispatcher does not follow redirects: every attempt would fail.
# (Starlette types the endpoint as request -> response; an ASGI app object
# works there too, which the ignore below is about.)
app.add_route("/signet/push", asgi_app(endpoint), methods=["POST"])  # type: ignore[arg-type]
