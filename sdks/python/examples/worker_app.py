"""A pull worker: run it with

    export SIGNET_URL=http://127.0.0.1:8787 SIGNET_API_KEY=sk_…   # a `work` key
    export SIGNET_KEYS_FILE=./signet.keys                          # or SIGNET_SIGNING_PUBLIC_KEYS
    python -m signet_sdk.worker worker_app:worker

SIGTERM or Ctrl-C: it stops claiming, lets running tasks finish and report,
and exits 0.
"""

from __future__ import annotations

import os
from typing import Any

from signet_sdk import Retry, Task, Worker

worker = Worker(
    os.environ.get("SIGNET_URL", "http://127.0.0.1:8787"),
    os.environ["SIGNET_API_KEY"],
    queues=["emails"],
    concurrency=16,
)


@worker.task("email.send")
def send(args: dict[str, Any], task: Task) -> dict[str, Any]:
    if task.attempt < 2 and args.get("flaky"):
        raise Retry(after_ms=1_000, message="try once more")
    return {"sent_to": args["to"], "tenant": task.headers.get("tenant")}
