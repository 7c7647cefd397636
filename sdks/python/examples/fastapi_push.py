"""A push endpoint in FastAPI (or any ASGI framework): mount the SDK's ASGI
app where the queue binding's URL points.

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
app.mount("/signet/push", asgi_app(endpoint))  # type: ignore[arg-type]
