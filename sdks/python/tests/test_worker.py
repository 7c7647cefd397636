"""The worker end to end against a real `signet serve`: handlers run on
verified tasks only, results and failures reach the store, heartbeats,
lost leases, graceful shutdown, a verify-only Ed25519 worker, and tasks
enqueued by the Rust CLI."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signet_sdk import Producer, Retry, Task, TaskRequest, Worker, load_keys

from signet_server import BIN, Server, needs_server

SDK = Path(__file__).resolve().parent.parent


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False})
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"


def make_worker(server: Server, queue: str, **kw: Any) -> Worker:
    kw.setdefault("keys", server.keys())
    return Worker(server.url, server.work_key, queues=[queue], **kw)


def test_handler_runs_and_its_result_is_stored(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    seen: list[Task] = []
    worker = make_worker(server, "e2e", concurrency=4)

    @worker.task("add")
    def add(args: dict[str, int], task: Task) -> dict[str, int]:
        seen.append(task)
        return {"sum": args["a"] + args["b"]}

    with running(worker):
        views = [producer.enqueue("e2e", "add", {"a": i, "b": 1}) for i in range(20)]
        done = [server.wait_state(v["id"], "succeeded", "dead") for v in views]
    assert [d["result"] for d in done] == [{"sum": i + 1} for i in range(20)]
    assert all(t.key_id == server.keys().signing.ring.active.id for t in seen)  # type: ignore[union-attr]
    assert worker.stats["succeeded"] == 20


def test_a_failing_handler_is_retried_by_the_server(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    calls: list[int] = []
    worker = make_worker(server, "retry")

    @worker.task("flaky")
    def flaky(args: object, task: Task) -> str:
        calls.append(task.attempt)
        if task.attempt == 1:
            raise RuntimeError("SMTP 451: try later")
        if task.attempt == 2:
            raise Retry(after_ms=0, message="asked to retry")
        return "ok"

    with running(worker):
        view = producer.enqueue("retry", "flaky", {}, max_attempts=5)
        done = server.wait_state(view["id"], "succeeded")
    assert calls == [1, 2, 3]
    outcomes = [h.get("outcome") for h in done["history"] if h["kind"] == "attempt"]
    assert outcomes == ["retry", "retry", "succeeded"], done["history"]
    assert "RuntimeError: SMTP 451" in json.dumps(done["history"])


def test_a_tampered_envelope_is_dead_and_never_runs(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    ran: list[object] = []
    view = producer.enqueue("tamper", "pay", {"amount": 10})
    server.sql("UPDATE tasks SET args = ? WHERE id = ?", b'{"amount":10000}', view["id"])
    worker = make_worker(server, "tamper")
    worker.task("pay")(ran.append)
    with running(worker):
        dead = server.wait_state(view["id"], "dead")
    assert ran == []
    assert dead["dead_reason"] == "signature-invalid"
    assert dead["dead_detail"].startswith("mismatch: ")


def test_unknown_tasks_are_dead(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    view = producer.enqueue("unknown", "nobody.handles", {})
    worker = make_worker(server, "unknown")
    worker.task("something.else")(lambda args: None)
    with running(worker):
        dead = server.wait_state(view["id"], "dead")
    assert dead["dead_reason"] == "unknown-task"


def test_a_lost_lease_drops_the_result(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    view = producer.enqueue("lost", "slow", {})
    worker = make_worker(server, "lost")

    @worker.task("slow")
    def slow(args: object) -> str:
        # Someone else owns the task now (as after a rescue and a new claim).
        server.sql("UPDATE tasks SET lease_owner = 'another-worker' WHERE id = ?", view["id"])
        return "late"

    with running(worker):
        deadline = time.monotonic() + 20
        while worker.stats["lost"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert worker.stats["lost"] == 1
    assert server.task(view["id"])["result"] is None


def test_heartbeats_keep_a_long_task(server: Server) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    view = producer.enqueue("beat", "long", {})
    worker = make_worker(server, "beat", lease_ms=1_000)

    leases: list[tuple[int, int]] = []

    @worker.task("long")
    def long(args: object) -> str:
        for _ in range(3):  # three leases long: only heartbeats keep it
            time.sleep(1)
            now = int(time.time() * 1000)
            leases.append((now, server.lease_expires_at_ms(view["id"])))
        return "done"

    with running(worker):
        done = server.wait_state(view["id"], "succeeded")
    assert done["result"] == "done"
    assert done["attempts_made"] == 1
    assert all(expires > now for now, expires in leases), leases


def test_a_cli_enqueued_task_runs_in_python(server: Server) -> None:
    out = server.cli(
        "enqueue", "--task", "greet", "--queue", "cli", "--args", '{"name": "Ada"}',
        "--header", "X-Tenant=acme", "--json",
    )
    task_id = json.loads(out)["id"]
    worker = make_worker(server, "cli")

    @worker.task("greet")
    def greet(args: dict[str, str], task: Task) -> str:
        return f"hello {args['name']} of {task.headers['x-tenant']}"

    with running(worker):
        done = server.wait_state(task_id, "succeeded")
    assert done["result"] == "hello Ada of acme"


@needs_server
def test_a_verify_only_ed25519_worker(tmp_path: Path) -> None:
    seed = Ed25519PrivateKey.generate()
    private = base64.b64encode(
        seed.private_bytes_raw()
    ).decode()
    public = base64.b64encode(
        seed.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
    server = Server(tmp_path, {
        "SIGNET_SIGNING_PRIVATE_KEYS": f"ed-1:{private}",
        "SIGNET_SIGNING_ACTIVE_KEY": "ed-1",
        "SIGNET_SIGNING_ALGORITHM": "ed25519",
    })
    try:
        producer = Producer(server.url, server.work_key, keys=server.keys())
        good = producer.enqueue("ed", "add", {"a": 2, "b": 3})
        bad = producer.enqueue("ed", "add", {"a": 1, "b": 1})
        server.sql("UPDATE tasks SET args = ? WHERE id = ?", b'{"a":100,"b":1}', bad["id"])
        verify_only = load_keys({"SIGNET_SIGNING_PUBLIC_KEYS": f"ed-1:{public}"})
        assert verify_only.signing.ring.active is None
        worker = Worker(server.url, server.work_key, queues=["ed"], keys=verify_only)
        worker.task("add")(lambda args: args["a"] + args["b"])
        with running(worker):
            assert server.wait_state(good["id"], "succeeded")["result"] == 5
            dead = server.wait_state(bad["id"], "dead")
        assert good["signature"]["alg"] == "ed25519"
        assert dead["dead_reason"] == "signature-invalid"
        assert dead["dead_detail"].startswith("mismatch: ")
    finally:
        server.stop()


def test_sigterm_lets_the_running_task_finish(server: Server, tmp_path: Path) -> None:
    producer = Producer(server.url, server.work_key, keys=server.keys())
    marker = tmp_path / "started"
    app = tmp_path / "graceful_app.py"
    app.write_text(textwrap.dedent(f"""
        import time
        from pathlib import Path
        from signet_sdk import Worker, load_keys

        worker = Worker({server.url!r}, {server.work_key!r}, queues=["graceful"],
                        keys=load_keys({{"SIGNET_KEYS_FILE": {str(server.root / "signet.keys")!r}}}))

        @worker.task("slow")
        def slow(args):
            Path({str(marker)!r}).write_text("x")
            time.sleep(2)
            return "finished"
    """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "signet_sdk.worker", "graceful_app:worker"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        view = producer.enqueue("graceful", "slow", {})
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "SIGTERM received" in output
    assert server.task(view["id"])["state"] == "succeeded"
    assert server.work_key not in output
    assert BIN  # the fixture ran against a real binary


def test_python_producer_to_the_rust_worker(server: Server, tmp_path: Path) -> None:
    rust_worker = Path(BIN).with_name("signet-example-worker")
    if not rust_worker.is_file():
        pytest.skip(f"no {rust_worker.name} beside SIGNET_BIN (cargo build -p signet-example-worker)")
    producer = Producer(server.url, server.work_key, keys=server.keys())
    text = "grüß  dich\nzweite Zeile"
    good = producer.enqueue("rust", "text.stats", {"text": text})
    bad = producer.enqueue("rust", "text.stats", {"text": "short"})
    server.sql("UPDATE tasks SET args = ? WHERE id = ?", b'{"text":"changed"}', bad["id"])
    proc = subprocess.Popen(
        [str(rust_worker), "--database-url", server.database_url, "--queue", "rust",
         "--outbox", str(tmp_path / "outbox")],
        env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        done = server.wait_state(good["id"], "succeeded")
        dead = server.wait_state(bad["id"], "dead")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert done["result"]["chars"] == len(text)
    assert done["result"]["words"] == len(text.split()) == 4
    assert dead["dead_reason"] == "signature-invalid"
    assert dead["dead_detail"].startswith("mismatch")


@pytest.mark.parametrize("report_bytes", [None, 10**9])
def test_large_results_are_reported_within_the_body_limit(
    server: Server, monkeypatch: pytest.MonkeyPatch, report_bytes: int | None
) -> None:
    # 24 results of 60 kB are more than the server's 1 MiB body limit at
    # once: the worker splits its batch by size (or, when told a limit too
    # high, halves it on 413) so no report is lost.
    import signet_sdk.worker as worker_module

    if report_bytes is not None:
        monkeypatch.setattr(worker_module, "MAX_REPORT_BYTES", report_bytes)
    queue = f"big-{report_bytes}"
    producer = Producer(server.url, server.work_key, keys=server.keys())
    views = producer.enqueue_batch(
        TaskRequest(queue, "big", {"i": i}, max_attempts=1) for i in range(24)
    )
    huge = producer.enqueue(queue, "huge", {}, max_attempts=1)
    worker = make_worker(server, queue, concurrency=30, flush_ms=200)
    worker.task("big")(lambda args: "x" * 60_000)
    worker.task("huge")(lambda args: "y" * 1_200_000)
    with running(worker):
        done = [server.wait_state(v["id"], "succeeded", "dead") for v in views]
        dead = server.wait_state(huge["id"], "dead")
    assert [d["state"] for d in done] == ["succeeded"] * 24
    assert all(len(d["result"]) == 60_000 for d in done)
    # A single result over the limit fails the attempt, saying why.
    assert "result was refused" in (dead["last_error"] or dead["dead_detail"])
