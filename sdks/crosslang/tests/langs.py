"""The languages of the matrix as producers and consumers, each a real
process (or, for Python, the SDK in this process) against one `signet serve`.

Producers sign and enqueue: ``python`` (signet_sdk.Producer), ``typescript``
(ts/producer.mjs, the TypeScript SDK's Producer) and ``cli`` (`signet
enqueue`, the Rust side). Consumers verify and run: ``rust``
(signet-example-worker on the same store), ``python`` (signet_sdk.Worker),
``typescript`` (ts/worker.mjs), ``push-python`` (signet_sdk.PushEndpoint on a
wsgiref server) and ``push-typescript`` (ts/push.mjs), the push ones with the
queue bound to them (`signet queues bind … --signed-response`).

Keys are given to every process the same way: a dict of the variables
`load_keys` reads (``SIGNET_KEYS_FILE=…``, or ``SIGNET_SIGNING_*``), which a
subprocess gets as its whole environment besides ``PATH``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from signet_sdk import Client, Handlers, Producer, PushEndpoint, Task, Worker, load_keys, wsgi_app

from signet_server import BIN, Server

HERE = Path(__file__).resolve().parent
CROSSLANG = HERE.parent
ROOT = CROSSLANG.parent.parent
TS_SCRIPTS = CROSSLANG / "ts"
TS_SDK = Path(
    os.environ.get("CROSSLANG_TS_SDK") or ROOT / "sdks/typescript/dist/src/index.js"
)

PRODUCERS = ["python", "typescript", "cli"]
PULL_WORKERS = ["rust", "python", "typescript"]
PUSH_ENDPOINTS = ["push-python", "push-typescript"]
CONSUMERS = PULL_WORKERS + PUSH_ENDPOINTS

#: Text with multi-byte characters, so a wrong byte in a hop shows.
TEXT = "grüß  dich\nzweite Zeile 🎉"

Keys = dict[str, str]


def key_file(server: Server) -> Keys:
    """The keys of a server that made its own key file (SQLite, no variables)."""
    return {"SIGNET_KEYS_FILE": str(server.root / "signet.keys")}


def _path_env(keys: Keys, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **keys, **(extra or {})}


# ---------------------------------------------------------------- what is there


def rust_worker_bin() -> Path:
    """signet-example-worker: SIGNET_EXAMPLE_WORKER_BIN, else beside SIGNET_BIN."""
    named = os.environ.get("SIGNET_EXAMPLE_WORKER_BIN")
    if named:
        if not Path(named).is_file():
            pytest.fail(f"SIGNET_EXAMPLE_WORKER_BIN={named} is not a file")
        return Path(named)
    beside = Path(BIN).with_name("signet-example-worker")
    if not beside.is_file():
        pytest.skip(
            "no signet-example-worker: build it (cargo build -p signet-example-worker) "
            "and set SIGNET_EXAMPLE_WORKER_BIN"
        )
    return beside


@functools.cache
def _typescript_missing() -> str:
    """Why the TypeScript legs cannot run here, or "" when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not TS_SDK.is_file():
        return (f"the TypeScript SDK is not built ({TS_SDK} is missing): "
                "cd sdks/typescript && npm ci && npm run build")
    probe = subprocess.run(
        ["node", "--input-type=module", "-e",
         f"const m = await import({json.dumps(TS_SDK.as_uri())});"
         "const want = ['Producer', 'Worker', 'createPushListener', 'loadKeys'];"
         "const gone = want.filter((n) => typeof m[n] !== 'function');"
         "if (gone.length) { console.log(gone.join(', ')); process.exit(3); }"],
        capture_output=True, text=True, timeout=60,
    )
    if probe.returncode == 3:
        return (f"the TypeScript SDK at {TS_SDK} has no {probe.stdout.strip()} "
                "(it predates its producer, worker and push helper)")
    if probe.returncode != 0:
        pytest.fail(f"the TypeScript SDK at {TS_SDK} does not load: {probe.stderr.strip()}")
    return ""


@functools.cache
def _push_missing() -> str:
    """Why the push legs cannot run with SIGNET_BIN, or "" when they can."""
    out = subprocess.run([BIN, "queues", "bind", "--help"], capture_output=True, text=True,
                         timeout=60)
    if out.returncode == 0:
        return ""
    said = (out.stderr or out.stdout).strip().splitlines()
    return (f"{BIN} has no push queues (`signet queues bind --help`: "
            f"{said[0] if said else f'exit {out.returncode}'}); build it with them")


def need(kind: str) -> None:
    """Skips a producer or consumer whose language is not available here."""
    missing = (_typescript_missing() if "typescript" in kind else "") or (
        _push_missing() if kind.startswith("push-") else "")
    if missing:
        pytest.skip(missing)
    if kind == "rust":
        rust_worker_bin()


# ---------------------------------------------------------------- the server


def start_server(root: Path, env: dict[str, str] | None = None) -> Server:
    """`signet serve` that may deliver to loopback (the push endpoints); the
    variable also lets `signet queues bind` (server.cli) bind loopback URLs."""
    return Server(root, {"SIGNET_ALLOWED_TARGET_CIDRS": "127.0.0.1", **(env or {})})


def restart(server: Server) -> None:
    """Stops `signet serve` and starts it again on the same store (a new port;
    the admin and work keys stay, they are in the store), as an operator does
    after changing the key file."""
    server.stop()
    n = len(list(server.root.glob("serve*.log")))
    server.log = server.root / f"serve-{n}.log"
    with open(server.log, "wb") as out:
        server.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--database-url", server.database_url],
            env=server.env, stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = server.log.read_text(errors="replace")
        url = re.search(r"listening on (http://\S+)", text)
        if url and "leadership" in text:
            server.url = url.group(1)
            server.admin = Client(server.url, server.admin_key)
            return
        if server.proc.poll() is not None:
            pytest.fail(f"signet serve exited on restart: {text}")
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"signet serve did not restart: {server.log.read_text()}")


# ---------------------------------------------------------------- producers


@dataclass
class Item:
    queue: str
    name: str
    args: Any


def produce(kind: str, server: Server, keys: Keys, items: list[Item]) -> list[dict[str, Any]]:
    """Signs and enqueues ``items`` in ``kind``'s language; the tasks as the
    server then shows them (``GET /v1/tasks/{id}``: the stored signature)."""
    return [server.task(i) for i in _enqueue(kind, server, keys, items)]


def _enqueue(kind: str, server: Server, keys: Keys, items: list[Item]) -> list[str]:
    need(kind)
    if kind == "python":
        producer = Producer(server.url, server.work_key, keys=load_keys(keys))
        try:
            return [producer.enqueue(i.queue, i.name, i.args)["id"] for i in items]
        finally:
            producer.close()
    if kind == "typescript":
        out = subprocess.run(
            ["node", str(TS_SCRIPTS / "producer.mjs"),
             json.dumps([{"queue": i.queue, "name": i.name, "args": i.args} for i in items])],
            env=_path_env(keys, {"CROSSLANG_TS_SDK": str(TS_SDK), "CROSSLANG_URL": server.url,
                                 "CROSSLANG_API_KEY": server.work_key}),
            capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, f"ts/producer.mjs failed: {out.stderr}"
        return [v["id"] for v in json.loads(out.stdout)]
    if kind == "cli":
        ids = []
        for i in items:
            out = subprocess.run(
                [BIN, "enqueue", "--queue", i.queue, "--task", i.name,
                 "--args", json.dumps(i.args, ensure_ascii=False), "--json",
                 "--database-url", server.database_url],
                env=_path_env(keys), capture_output=True, text=True, timeout=60,
            )
            assert out.returncode == 0, f"signet enqueue failed: {out.stderr}"
            ids.append(json.loads(out.stdout)["id"])
        return ids
    raise ValueError(f"unknown producer {kind!r}")


# ---------------------------------------------------------------- consumers


def item_for(kind: str, queue: str, label: str) -> Item:
    """A task consumer ``kind`` has a handler for; ``label`` makes it unique."""
    if kind == "rust":
        return Item(queue, "files.write", {"path": f"{label}.txt", "content": f"{label}: {TEXT}"})
    return Item(queue, "echo", {"label": label, "text": TEXT})


def expected(kind: str, item: Item, key_id: str) -> Any:
    """The result consumer ``kind``'s handler gives for ``item``, verified
    with ``key_id``."""
    if kind == "rust":
        content = item.args["content"].encode()
        return {"path": item.args["path"], "bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest()}
    return {"lang": kind.removeprefix("push-"), "args": item.args, "key_id": key_id,
            "attempt": 1}


@dataclass
class Consumer:
    """A running consumer and what its handler ran."""

    kind: str
    workdir: Path
    ran_ids: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def check_alive(self) -> None:
        """Fails at once, with its log, when the consumer's process died."""
        if self.proc is not None and self.proc.poll() is not None:
            log = self.workdir / f"{self.kind}.log"
            raise AssertionError(
                f"the {self.kind} consumer exited ({self.proc.returncode}): {log.read_text(errors='replace')}"
            )

    def ran(self) -> list[str]:
        """What the handler ran: task ids (Python, TypeScript), or for the
        Rust worker the files its files.write wrote."""
        if self.kind == "rust":
            outbox = self.workdir / "outbox"
            return sorted(str(p.relative_to(outbox)) for p in outbox.rglob("*") if p.is_file())
        if "typescript" in self.kind:
            log = self.workdir / "ran.log"
            return log.read_text().split() if log.exists() else []
        return list(self.ran_ids)

    def ran_task(self, item: Item, task_id: str) -> bool:
        """Whether the handler ran ``task_id`` (``item``: its args as enqueued
        or as changed in the store)."""
        if self.kind == "rust":
            return str(item.args["path"]) in self.ran()
        return task_id in self.ran()


def _echo_py(lang: str, ran: list[str]) -> Any:
    def echo(args: Any, task: Task) -> Any:
        ran.append(task.id)
        return {"lang": lang, "args": args, "key_id": task.key_id, "attempt": task.attempt}
    return echo


@contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _no_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [])
    return [b"not ready"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _create_target(server: Server, name: str, port: int) -> str:
    """A target for a push endpoint on 127.0.0.1:port; its secret."""
    view: dict[str, Any] = server.admin.call(
        "POST", "/v1/targets", {"name": name, "url_prefix": f"http://127.0.0.1:{port}/"}
    )
    secret: str = view["secret"]
    return secret


@contextmanager
def _bound(server: Server, queue: str, port: int, target: str) -> Iterator[None]:
    server.cli("queues", "bind", queue, "--url", f"http://127.0.0.1:{port}/push",
               "--target", target, "--signed-response")
    try:
        yield
    finally:
        server.cli("queues", "unbind", queue)


@contextmanager
def consume(kind: str, server: Server, queue: str, keys: Keys, workdir: Path) -> Iterator[Consumer]:
    """Runs a ``kind`` consumer on ``queue``, verifying with ``keys``, until
    the block ends (then stops it gracefully)."""
    need(kind)
    workdir.mkdir(parents=True, exist_ok=True)
    consumer = Consumer(kind, workdir)
    log = workdir / f"{kind}.log"
    ts_env = {"CROSSLANG_TS_SDK": str(TS_SDK), "CROSSLANG_URL": server.url,
              "CROSSLANG_API_KEY": server.work_key, "CROSSLANG_QUEUES": queue,
              "CROSSLANG_RAN": str(workdir / "ran.log")}
    if kind == "rust":
        argv = [str(rust_worker_bin()), "--database-url", server.database_url, "--queue", queue,
                "--outbox", str(workdir / "outbox"), "--poll-ms", "50"]
        with _process(argv, _path_env(keys), log) as consumer.proc:
            yield consumer
    elif kind == "python":
        worker = Worker(server.url, server.work_key, queues=[queue], keys=load_keys(keys),
                        concurrency=4, wait_ms=1000)
        worker.task("echo")(_echo_py("python", consumer.ran_ids))
        thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
        thread.start()
        try:
            yield consumer
        finally:
            worker.stop()
            thread.join(30)
            assert not thread.is_alive(), "the Python worker did not stop"
    elif kind == "typescript":
        with _process(["node", str(TS_SCRIPTS / "worker.mjs")], _path_env(keys, ts_env),
                      log) as consumer.proc:
            yield consumer
    elif kind == "push-python":
        handlers = Handlers()
        handlers.task("echo")(_echo_py("python", consumer.ran_ids))
        httpd = make_server("127.0.0.1", 0, _no_app, server_class=_ThreadingWSGIServer,
                            handler_class=_Quiet)
        target = f"t-{queue}"
        secret = _create_target(server, target, httpd.server_port)
        httpd.set_app(wsgi_app(PushEndpoint(secret=secret, handlers=handlers,
                                            keys=load_keys(keys))))
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            with _bound(server, queue, httpd.server_port, target):
                yield consumer
        finally:
            httpd.shutdown()
            httpd.server_close()
    elif kind == "push-typescript":
        # The endpoint needs the target's secret, the target its port: pick a
        # free port, make the target, then start the endpoint on that port.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        target = f"t-{queue}"
        secret = _create_target(server, target, port)
        env = _path_env(keys, {**ts_env, "CROSSLANG_SECRET": secret,
                               "CROSSLANG_PORT": str(port)})
        with _process(["node", str(TS_SCRIPTS / "push.mjs")], env, log) as consumer.proc:
            _wait_for(lambda: f"listening {port}" in log.read_text(errors="replace"),
                      f"ts/push.mjs did not listen: {log}", consumer)
            with _bound(server, queue, port, target):
                yield consumer
    else:
        raise ValueError(f"unknown consumer {kind!r}")


def _wait_for(ok: Any, message: str, consumer: Consumer | None = None,
              timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if consumer is not None:
            consumer.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def wait_all(server: Server, ids: list[str], consumer: Consumer | None = None,
             timeout: float = 60) -> list[dict[str, Any]]:
    """Each task's view once it is finished (succeeded or dead); fails at
    once if the consumer's process dies meanwhile."""
    views: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    for task_id in ids:
        while True:
            view: dict[str, Any] = server.task(task_id)
            if view["state"] in ("succeeded", "dead"):
                views.append(view)
                break
            if consumer is not None:
                consumer.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} is {view['state']} after {timeout} s: {view}")
            time.sleep(0.05)
    return views
