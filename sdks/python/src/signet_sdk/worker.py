"""A pull worker over Signet's HTTP worker protocol (docs/worker-protocol.md).

::

    worker = Worker("http://127.0.0.1:8787", api_key, queues=["emails"], concurrency=16)

    @worker.task("email.send")
    def send(args):
        ...
        return {"sent": True}

    worker.run()   # blocks; SIGTERM / SIGINT stop it gracefully

It long-polls for at most as many tasks as it has free slots, verifies
each one before its handler sees it (a task that fails is reported dead
``signature-invalid`` and never runs), heartbeats running tasks every
third of the lease, and reports outcomes in batches (a few ms apart, or
as soon as many are ready). Retries are the server's: a handler that
raises fails the attempt, ``raise Retry(after_ms)`` asks for a delay.
On SIGTERM/SIGINT it stops claiming, lets running tasks finish and report,
and ``run()`` returns.

Command line: ``python -m signet_sdk.worker package.module:worker`` imports
the module and runs the Worker named after the colon.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, TypeVar

from .client import ApiError, Client, TransportError
from .config import SigningConfig
from .errors import ConfigError
from .keys import KeyRing
from .loader import LoadedKeys, load_keys
from .tasks import Dead, Handler, Handlers, Retry, Task, check_task, cut, describe_error, signing_config

__all__ = ["Worker", "main"]

log = logging.getLogger("signet_sdk.worker")

F = TypeVar("F", bound=Handler)

#: Most tasks one claim asks for (the server's limit).
MAX_CLAIM = 100
#: Most items in one batched report (the server's limit).
MAX_REPORT = 1000
#: Largest batched report body, bytes (half the server's default 1 MiB
#: body limit; a batch the server still finds too large is halved).
MAX_REPORT_BYTES = 512 * 1024
#: The error code of reports that could not be sent at all.
UNREPORTED = "unreported"
#: Error codes of a report the server could not take *now* (busy, rate
#: limited, unreachable): the same report is sent again later.
TRANSIENT_CODES = frozenset(
    {UNREPORTED, "rate_limited", "unavailable", "store_unavailable", "timeout"}
)


def _transient(err: Mapping[str, Any]) -> bool:
    """Whether a report's error says "try again later" rather than "no"."""
    status = err.get("status")
    if isinstance(status, int) and (status == 429 or status >= 500):
        return True
    return err.get("code") in TRANSIENT_CODES


class _Report:
    """One outcome to report: the item's JSON, already encoded."""

    __slots__ = ("lease", "task_id", "complete", "item", "give_up_at", "tries")

    def __init__(
        self, lease: str, task_id: str, complete: bool, item: bytes, give_up_at: float
    ) -> None:
        self.lease = lease
        self.task_id = task_id
        self.complete = complete
        self.item = item
        #: When the lease has surely expired (monotonic): past it, a report
        #: the server could not take is dropped (the server retries the task).
        self.give_up_at = give_up_at
        self.tries = 0


def _item(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Worker:
    """Runs registered handlers for tasks pulled from ``queues``.

    ``keys``: loaded keys, a SigningConfig or a KeyRing to verify with
    (default :func:`~signet_sdk.load_keys`; a ring of Ed25519 public keys is
    enough). ``concurrency``: handlers running at once (threads).
    ``lease_ms``: each claim's lease (heartbeats every third of it).
    ``wait_ms``: long-poll wait. ``flush_ms``: how long a finished task's
    report may wait to be batched with others.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        queues: Sequence[str],
        keys: LoadedKeys | SigningConfig | KeyRing | None = None,
        concurrency: int = 10,
        lease_ms: int = 30_000,
        wait_ms: int = 20_000,
        flush_ms: float = 5.0,
        max_claim: int = MAX_CLAIM,
        handlers: Handlers | Mapping[str, Handler] | None = None,
        timeout: float = 30.0,
    ) -> None:
        if isinstance(queues, str):
            queues = [queues]
        if not queues:
            raise ConfigError("a worker needs at least one queue to pull from")
        if not 1 <= concurrency <= 10_000:
            raise ConfigError(f"concurrency is {concurrency}; use 1 to 10000")
        if not 1_000 <= lease_ms <= 300_000:
            raise ConfigError(f"lease_ms is {lease_ms}; the server takes 1000 to 300000")
        if not 0 <= wait_ms <= 30_000:
            raise ConfigError(f"wait_ms is {wait_ms}; the server takes 0 to 30000")
        if keys is None:
            loaded = load_keys()
            for w in loaded.all_warnings():
                log.warning("worker: %s", w)
            keys = loaded
        self.signing = signing_config(keys)
        self.queues = list(queues)
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.wait_ms = wait_ms
        self.flush_s = flush_ms / 1000
        self.max_claim = max(1, min(max_claim, MAX_CLAIM))
        self._low_water = max(1, min(self.max_claim, concurrency) // 2)
        self.handlers = Handlers.of(handlers) if handlers is not None else Handlers()
        self._client = Client(url, api_key, timeout=timeout)
        # Claims get their own connection so a shutdown can cut the long poll.
        self._claimer = Client(url, api_key, timeout=wait_ms / 1000 + timeout)
        # Heartbeats get their own, impatient client: one stuck or retried
        # call must not outlast the leases it is there to keep. No retries:
        # a beat that fails is sent again on the next tick.
        self._beater = Client(url, api_key, timeout=lease_ms / 3000, retries=0)
        self._stop = threading.Event()
        self._finished = threading.Event()  # every handler has returned
        self._cond = threading.Condition()
        self._running = 0
        self._reports: list[_Report] = []
        self._report_cond = threading.Condition()
        self._beats: dict[str, list[Any]] = {}  # lease -> [task id, next beat (monotonic)]
        self._lost: set[str] = set()
        self._beat_lock = threading.Lock()
        #: Counters: tasks claimed, succeeded, failed, dead, dropped (lease lost).
        self.stats = {"claimed": 0, "succeeded": 0, "failed": 0, "dead": 0, "lost": 0}
        self._stats_lock = threading.Lock()

    def _count(self, what: str, n: int) -> None:
        with self._stats_lock:
            self.stats[what] += n

    def __repr__(self) -> str:
        return f"Worker({self._client.base_url!r}, queues={self.queues}, concurrency={self.concurrency})"

    def task(self, name: str) -> Callable[[F], F]:
        """Registers a handler: ``@worker.task("email.send")`` on a function
        taking ``(args)`` or ``(args, task)`` (sync, or ``async def``)."""
        return self.handlers.task(name)

    # -- control -------------------------------------------------------------

    def stop(self) -> None:
        """Stops claiming (a long poll in flight is cut); running tasks
        finish and report, then ``run()`` returns. Safe from a signal
        handler or another thread."""
        if not self._stop.is_set():
            self._stop.set()
            self._claimer.abort()
            with self._cond:
                self._cond.notify_all()

    def run(self, *, install_signals: bool = True) -> None:
        """Claims and runs tasks until :meth:`stop` (or SIGTERM/SIGINT when
        called on the main thread with ``install_signals``)."""
        if not len(self.handlers):
            raise ConfigError("the worker has no handlers; register some with @worker.task(name)")
        previous: dict[int, Any] = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        ring = self.signing.ring
        log.info(
            "worker: pulling %s from %s, concurrency %d, lease %d ms; verifying with %s%s",
            ",".join(self.queues), self._client.base_url, self.concurrency, self.lease_ms,
            ring.describe(),
            " (dev mode: NOT verifying)" if self.signing.dev else
            ("" if self.signing.required else "; unsigned tasks accepted"),
        )
        reporter = threading.Thread(target=self._report_loop, name="signet-reporter", daemon=True)
        beater = threading.Thread(target=self._beat_loop, name="signet-heartbeat", daemon=True)
        self._finished.clear()
        reporter.start()
        beater.start()
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="signet-task")
        try:
            self._claim_loop(pool)
        finally:
            pool.shutdown(wait=True)
            self._finished.set()
            with self._report_cond:
                self._report_cond.notify_all()
            self._stop.set()
            reporter.join()
            beater.join()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            log.info("worker: stopped; %s", self.stats)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("worker: %s received: finishing running tasks", signal.Signals(signum).name)
        self.stop()

    # -- claiming ------------------------------------------------------------

    def _claim_loop(self, pool: ThreadPoolExecutor) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._cond:
                # Claim when a good share of the slots is free (or all of
                # them): fewer, larger claims cost the server less than
                # one per finished task.
                while (
                    self.concurrency - self._running < self._low_water
                    and self._running > 0
                    and not self._stop.is_set()
                ):
                    self._cond.wait(0.5)
                free = self.concurrency - self._running
            if self._stop.is_set():
                return
            body = {
                "queues": self.queues,
                "max": min(free, self.max_claim),
                "wait_ms": self.wait_ms,
                "lease_ms": self.lease_ms,
            }
            try:
                answer = self._claimer.call("POST", "/v1/work/claim", body)
                failures = 0
            except TransportError as e:
                if self._stop.is_set():
                    return
                failures += 1
                log.warning("worker: claim failed (%s); retrying", e)
                self._stop.wait(min(10.0, 0.2 * 2**failures))
                continue
            except ApiError as e:
                if e.status in (400, 401, 403, 404, 422):
                    raise ConfigError(f"the server refused to hand out work: {e}") from None
                failures += 1
                log.warning("worker: claim refused (%s); retrying", e)
                self._stop.wait(min(10.0, 0.2 * 2**failures))
                continue
            tasks = answer.get("tasks") if isinstance(answer, dict) else None
            if not isinstance(tasks, list):
                # Not the documented {"tasks": [...]}: a proxy's page, a
                # server from another version. Back off and claim again.
                failures += 1
                log.warning(
                    "worker: the claim answer is not {\"tasks\": [...]}: %.100r; retrying", answer
                )
                self._stop.wait(min(10.0, 0.2 * 2**failures))
                continue
            if not tasks:
                continue
            with self._cond:
                self._running += len(tasks)
            self._count("claimed", len(tasks))
            for claimed in tasks:
                pool.submit(self._process, claimed)

    # -- running -------------------------------------------------------------

    def _process(self, claimed: Any) -> None:
        lease = "?"
        task_id = "?"
        try:
            # Inside the try: a malformed item must still give its slot back.
            if not isinstance(claimed, dict):
                raise ValueError(f"a claimed task is not a JSON object: {str(claimed)[:100]!r}")
            lease = str(claimed.get("lease", ""))
            envelope = claimed.get("envelope")
            task_id = str(envelope.get("id", "?") if isinstance(envelope, dict) else "?")
            checked = check_task(claimed, self.signing, self.handlers)
            if isinstance(checked, Dead):
                log.warning(
                    "worker: task %s is dead %s: %s", task_id, checked.reason, checked.detail
                )
                self._report(lease, task_id, False, _item({
                    "lease": lease, "dead": True, "reason": checked.reason,
                    "detail": checked.detail,
                }))
                return
            self._run(lease, checked)
        except Exception:  # never lose a slot or kill the pool thread
            log.exception("worker: task %s: unexpected error in the worker", task_id)
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify()

    def _run(self, lease: str, task: Task) -> None:
        interval = self.lease_ms / 3000
        with self._beat_lock:
            self._beats[lease] = [task.id, time.monotonic() + interval]
        body: dict[str, Any]
        complete = False
        try:
            result = self.handlers.run(task)
            try:
                item = _item({"lease": lease, "result": result})
                complete = True
            except (TypeError, ValueError) as e:
                body = {"lease": lease, "error": cut(f"the result is not JSON: {e}")}
        except Retry as r:
            body = {"lease": lease, "error": cut(r.message)}
            if r.after_ms is not None:
                body["retry_after_ms"] = r.after_ms
        except Exception as e:
            log.warning("worker: task %s (%s) failed: %s", task.id, task.name, describe_error(e))
            body = {"lease": lease, "error": describe_error(e)}
        finally:
            with self._beat_lock:
                self._beats.pop(lease, None)
                lost = lease in self._lost
                self._lost.discard(lease)
        if lost:
            self._count("lost", 1)
            log.warning("worker: task %s: the lease was lost while it ran; result dropped", task.id)
            return
        self._report(lease, task.id, complete, item if complete else _item(body))

    def _report(self, lease: str, task_id: str, complete: bool, item: bytes) -> None:
        report = _Report(lease, task_id, complete, item, time.monotonic() + self.lease_ms / 1000)
        with self._report_cond:
            self._reports.append(report)
            if len(self._reports) == 1 or len(self._reports) >= MAX_CLAIM:
                self._report_cond.notify()

    # -- reporting -----------------------------------------------------------

    def _report_loop(self) -> None:
        while True:
            with self._report_cond:
                while not self._reports and not (self._stop.is_set() and self._idle()):
                    self._report_cond.wait(0.5)
                if not self._reports:
                    return
                deadline = time.monotonic() + self.flush_s
                while len(self._reports) < MAX_CLAIM and not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._report_cond.wait(left)
                batch, self._reports = self._reports[:MAX_REPORT], self._reports[MAX_REPORT:]
            self._send_reports(batch)

    def _idle(self) -> bool:
        with self._cond:
            return self._running == 0

    def _send_reports(self, batch: list[_Report]) -> None:
        completes = [r for r in batch if r.complete]
        fails = [r for r in batch if not r.complete]
        again: list[_Report] = []
        for path, items in (("/v1/work/complete", completes), ("/v1/work/fail", fails)):
            if not items:
                continue
            answers = self._post_items(path, items)
            refused: list[_Report] = []
            for report, answer in zip(items, answers):
                if not isinstance(answer, dict):
                    answer = {"error": {"code": UNREPORTED, "message": "no answer for this item"}}
                err = answer.get("error")
                if err is None:
                    state = answer.get("state")
                    key = {"succeeded": "succeeded", "dead": "dead"}.get(str(state), "failed")
                    self._count(key, 1)
                    continue
                if not isinstance(err, dict):
                    err = {"code": UNREPORTED, "message": f"malformed answer item: {err!r:.100}"}
                if err.get("code") == "lease_lost":
                    self._count("lost", 1)
                    log.warning(
                        "worker: task %s: lease lost before its report; outcome dropped",
                        report.task_id,
                    )
                elif _transient(err):
                    # Busy, rate limited or unreachable: the outcome is still
                    # good, send the same report again (never turn a result
                    # into a failure because the server was busy).
                    if time.monotonic() < report.give_up_at:
                        again.append(report)
                    else:
                        log.error(
                            "worker: task %s: could not report it before its lease expired "
                            "(%s); the server will run it again", report.task_id,
                            err.get("message"),
                        )
                elif path.endswith("complete"):
                    # A result the server would not take (too large, …):
                    # fail the attempt instead of leaving the lease to expire.
                    log.warning(
                        "worker: task %s: result refused: %s", report.task_id, err.get("message")
                    )
                    refused.append(_Report(report.lease, report.task_id, False, _item({
                        "lease": report.lease,
                        "error": cut(f"the result was refused: {err.get('message')}"),
                    }), report.give_up_at))
                else:
                    log.error(
                        "worker: task %s: report refused: %s", report.task_id, err.get("message")
                    )
            if refused:
                # Through the same path: a busy server keeps these pending too.
                self._report_many(refused)
        if again:
            tries = max(r.tries for r in again)
            for r in again:
                r.tries += 1
            log.warning("worker: %d reports not taken yet; sending them again", len(again))
            time.sleep(min(2.0, 0.1 * 2**tries))
            self._report_many(again)

    def _report_many(self, reports: list[_Report]) -> None:
        with self._report_cond:
            self._reports[:0] = reports
            self._report_cond.notify()

    def _post_items(self, path: str, items: list[_Report]) -> list[Any]:
        """Posts the reports in batches under MAX_REPORT_BYTES and returns
        one answer per report, in order (an error item for those that could
        not be reported)."""
        out: list[Any] = []
        chunk: list[_Report] = []
        size = 0
        for report in items:
            if chunk and size + len(report.item) > MAX_REPORT_BYTES:
                out += self._post_chunk(path, chunk)
                chunk, size = [], 0
            chunk.append(report)
            size += len(report.item) + 1
        if chunk:
            out += self._post_chunk(path, chunk)
        return out

    def _post_chunk(self, path: str, items: list[_Report]) -> list[Any]:
        body = b'{"items":[' + b",".join(r.item for r in items) + b"]}"
        for attempt in range(6):
            try:
                answer = self._client.call("POST", path, raw=body)
                out = answer.get("items") if isinstance(answer, dict) else None
                if isinstance(out, list) and len(out) == len(items):
                    return out
                log.error(
                    "worker: %s answered %.100r, not one item per report; sending again",
                    path, answer,
                )
                time.sleep(min(5.0, 0.1 * 2**attempt))
            except ValueError as e:  # a 2xx whose body is not JSON
                log.error("worker: %s answered something that is not JSON (%s)", path, e)
                time.sleep(min(5.0, 0.1 * 2**attempt))
            except TransportError as e:
                log.warning("worker: %s failed (%s); retrying", path, e)
                time.sleep(min(5.0, 0.1 * 2**attempt))
            except ApiError as e:
                if e.status == 413 and len(items) > 1:
                    # Larger than the server's body limit: halve until it fits.
                    half = len(items) // 2
                    return self._post_chunk(path, items[:half]) + self._post_chunk(
                        path, items[half:]
                    )
                log.error("worker: %s refused for %d tasks: %s", path, len(items), e)
                return [
                    {"error": {"code": e.code, "message": e.server_message, "status": e.status}}
                ] * len(items)
        log.error(
            "worker: %s: giving up on %d reports; their leases will expire and the server "
            "will retry them", path, len(items),
        )
        return [{"error": {"code": UNREPORTED, "message": "the server could not be reached"}}] * len(
            items
        )

    # -- heartbeats ----------------------------------------------------------

    def _beat_loop(self) -> None:
        interval = self.lease_ms / 3000
        tick = min(interval / 4, 1.0)
        while not self._finished.wait(tick):
            now = time.monotonic()
            with self._beat_lock:
                due = [(lease, v[0]) for lease, v in self._beats.items() if v[1] <= now]
            for start in range(0, len(due), MAX_REPORT):
                chunk = due[start : start + MAX_REPORT]
                body = {"items": [{"lease": l, "lease_ms": self.lease_ms} for l, _ in chunk]}
                try:
                    answer = self._beater.call("POST", "/v1/work/heartbeat", body)
                    answers = answer.get("items") if isinstance(answer, dict) else None
                    if not isinstance(answers, list):
                        raise ValueError(f"the answer is not {{\"items\": [...]}}: {answer!r:.100}")
                except (TransportError, ApiError, ValueError) as e:
                    log.warning("worker: heartbeat failed (%s); trying again", e)
                    continue
                with self._beat_lock:
                    for (lease, task_id), answer in zip(chunk, answers):
                        err = answer.get("error") if isinstance(answer, dict) else None
                        if isinstance(err, dict) and err.get("code") == "lease_lost":
                            log.warning("worker: task %s: lease lost while running", task_id)
                            self._lost.add(lease)
                            self._beats.pop(lease, None)
                        elif lease in self._beats:
                            self._beats[lease][1] = now + interval


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m signet_sdk.worker module:worker``: imports ``module``
    and runs its Worker ``worker`` (default name ``worker``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m signet_sdk.worker package.module[:worker]", file=sys.stderr)
        return 2
    module_name, _, attr = args[0].partition(":")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        print(f"cannot import {module_name}: {e}", file=sys.stderr)
        return 2
    worker = getattr(module, attr or "worker", None)
    if not isinstance(worker, Worker):
        print(f"{module_name} has no Worker named {attr or 'worker'!r}", file=sys.stderr)
        return 2
    try:
        worker.run()
    except ConfigError as e:
        print(f"worker: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run as a script this module is __main__, not signet_sdk.worker, whose
    # Worker class the user's module imports: use that one.
    from signet_sdk.worker import main as _main

    sys.exit(_main())
