"""End-to-end speed of the Python SDK: a producer batch-enqueueing signed
tasks over HTTP and a Python SDK worker process draining them, through a
real `signet serve` on SQLite, measured the way ../shared/peers measures
Celery and BullMQ: enqueue (no worker), drain (a worker started on the
full queue, to its last completion) and e2e (worker warm, first publish to
last completion); no-op tasks; producer and worker share the machine. The
CPU figures are of the e2e phase.

    SIGNET_BIN=target/release/signet python sdks/python/bench/bench_worker.py
    N=20000 RUNS=3 CONCURRENCY=100 python sdks/python/bench/bench_worker.py

SIGNET_BIN defaults to target/release/signet, else target/debug/signet
(it says which: a debug server is several times slower). Prints one
``RESULT …`` line per run. PROFILE=1 writes a cProfile of the worker to
/tmp/signet-py-worker.prof. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
sys.path.insert(0, str(HERE.parent / "tests"))


def worker_main(url: str, api_key: str, keys_file: str, n: int, concurrency: int) -> None:
    """The worker process: runs until it has completed ``n`` tasks, then
    prints the time of the last completion."""
    import threading

    from signet_sdk import Worker, load_keys

    worker = Worker(
        url, api_key, queues=["bench"], concurrency=concurrency,
        flush_ms=float(os.environ.get("FLUSH_MS", "5")),
        keys=load_keys({"SIGNET_KEYS_FILE": keys_file}),
    )

    @worker.task("noop")
    def noop(args: object) -> None:
        return None

    def watch() -> None:
        while worker.stats["succeeded"] + worker.stats["failed"] + worker.stats["dead"] < n:
            time.sleep(0.001)
        done = time.time()
        worker.stop()
        cpu = time.process_time()
        print(json.dumps({"done": done, "cpu_s": cpu, "stats": worker.stats}), flush=True)

    threading.Thread(target=watch, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    if os.environ.get("PROFILE"):
        import cProfile

        cProfile.runctx("worker.run()", globals(), locals(), "/tmp/signet-py-worker.prof")
    else:
        worker.run()


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from signet_server import Server

    from signet_sdk import Producer, TaskRequest

    n = int(os.environ.get("N", "20000"))
    runs = int(os.environ.get("RUNS", "1"))
    concurrency = int(os.environ.get("CONCURRENCY", "100"))
    binary = os.environ.get("SIGNET_BIN")
    if not binary:
        release = REPO / "target/release/signet"
        binary = str(release if release.is_file() else REPO / "target/debug/signet")
        os.environ["SIGNET_BIN"] = binary
    kind = "release" if "/release/" in binary else "debug"
    print(f"# signet serve: {binary} ({kind} build); N={n} concurrency={concurrency}", flush=True)
    import signet_server

    signet_server.BIN = binary
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(Path(tmp))
            try:
                keys_file = str(Path(tmp) / "signet.keys")
                producer = Producer(server.url, server.work_key, keys=server.keys())

                def start_worker() -> subprocess.Popen[str]:
                    proc = subprocess.Popen(
                        [sys.executable, __file__, "--worker", server.url, server.work_key,
                         keys_file, str(n), str(concurrency)],
                        stdout=subprocess.PIPE, text=True,
                    )
                    assert proc.stdout is not None
                    json.loads(proc.stdout.readline())  # ready
                    return proc

                def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
                    assert proc.stdout is not None
                    line = proc.stdout.readline()
                    proc.wait(60)
                    out: dict[str, Any] = json.loads(line)
                    return out

                # enqueue (no worker), then drain: a worker on the full queue.
                items = [TaskRequest("bench", "noop", {"i": i}) for i in range(n)]
                t0 = time.time()
                producer.enqueue_batch(items)
                enqueue = n / (time.time() - t0)
                worker = start_worker()
                t0 = time.time()
                drain = n / (finish(worker)["done"] - t0)

                # e2e: a warm (long-polling) worker, then N more published.
                worker = start_worker()
                time.sleep(0.5)
                items = [TaskRequest("bench", "noop", {"i": i}) for i in range(n)]
                server_cpu0 = _cpu(server.proc.pid)
                t0 = time.time()
                cpu0 = time.process_time()
                producer.enqueue_batch(items)
                t_enq = time.time()
                producer_cpu = time.process_time() - cpu0
                out = finish(worker)
                server_cpu = _cpu(server.proc.pid) - server_cpu0
                e2e = n / (out["done"] - t0)
                print(
                    f"RESULT system=signet-python-sdk run={run + 1} n={n} server={kind} "
                    f"concurrency={concurrency} enqueue_per_s={enqueue:.0f} "
                    f"drain_per_s={drain:.0f} e2e_per_s={e2e:.0f} "
                    f"enqueue_while_consuming_per_s={n / (t_enq - t0):.0f} "
                    f"e2e_wall_s={out['done'] - t0:.2f} producer_cpu_s={producer_cpu:.2f} "
                    f"worker_cpu_s={out['cpu_s']:.2f} server_cpu_s={server_cpu:.2f} "
                    f"stats={json.dumps(out['stats'], separators=(',', ':'))}",
                    flush=True,
                )
            finally:
                server.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
