"""The worker's reporting, claiming and heartbeats against scripted
answers (no server): a busy server never turns a result into a failure,
malformed answers never kill a thread or lose a slot, and a heartbeat is
never held up by retries."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signet_sdk import Key, KeyRing, Worker
from signet_sdk.client import ApiError, TransportError

RING = KeyRing.single(Key.hmac("k", b"k" * 32))
Answer = Callable[[str, bytes | None], Any]


class FakeClient:
    """Answers ``call`` with the next scripted answer for the path (a value,
    or an exception to raise) and records what was sent."""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.sent: list[tuple[str, bytes | None]] = []

    def call(self, method: str, path: str, payload: Any = None, *, raw: bytes | None = None,
             **_: Any) -> Any:
        self.sent.append((path, raw))
        answer = self.script[path].pop(0)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer()
        return answer

    def abort(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [p for p, _ in self.sent]


def make_worker(**kw: Any) -> Worker:
    worker = Worker("http://127.0.0.1:9", "sk_test", queues=["q"], keys=RING, **kw)
    worker.task("t")(lambda args: None)
    return worker


@pytest.fixture()
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)


def pending(worker: Worker) -> list[Any]:
    batch = list(worker._reports)
    worker._reports.clear()
    return batch


@pytest.mark.parametrize("busy", [
    ApiError(503, "unavailable", "the store is busy"),
    ApiError(429, "rate_limited", "slow down"),
    ApiError(503, "store_unavailable", "down"),
])
def test_a_busy_server_keeps_the_result_pending(busy: ApiError, no_sleep: None) -> None:
    worker = make_worker()
    fake = FakeClient({"/v1/work/complete": [busy, {"items": [{"state": "succeeded"}]}]})
    worker._client = fake  # type: ignore[assignment]
    worker._report("lt_1", "task_1", True, b'{"lease":"lt_1","result":42}')
    worker._send_reports(pending(worker))
    # Not failed: the same completion waits to be sent again.
    assert fake.paths() == ["/v1/work/complete"]
    again = pending(worker)
    assert [(r.complete, r.item) for r in again] == [(True, b'{"lease":"lt_1","result":42}')]
    worker._send_reports(again)
    assert fake.paths() == ["/v1/work/complete"] * 2
    assert worker.stats["succeeded"] == 1 and worker.stats["failed"] == 0


def test_an_unreachable_server_keeps_the_result_pending(no_sleep: None) -> None:
    worker = make_worker()
    down = [TransportError("refused")] * 6
    fake = FakeClient({"/v1/work/complete": [*down, {"items": [{"state": "succeeded"}]}]})
    worker._client = fake  # type: ignore[assignment]
    worker._report("lt_1", "task_1", True, b'{"lease":"lt_1","result":1}')
    worker._send_reports(pending(worker))
    worker._send_reports(pending(worker))
    assert "/v1/work/fail" not in fake.paths()
    assert worker.stats["succeeded"] == 1


def test_a_pending_report_is_dropped_once_its_lease_has_expired(no_sleep: None) -> None:
    worker = make_worker()
    fake = FakeClient({"/v1/work/complete": [ApiError(503, "unavailable", "busy")]})
    worker._client = fake  # type: ignore[assignment]
    worker._report("lt_1", "task_1", True, b'{"lease":"lt_1","result":1}')
    batch = pending(worker)
    batch[0].give_up_at = time.monotonic() - 1
    worker._send_reports(batch)
    assert pending(worker) == [] and fake.paths() == ["/v1/work/complete"]


@pytest.mark.parametrize("refusal", [
    ApiError(413, "payload_too_large", "the body is too large"),
    ApiError(422, "invalid_value", "items[0].result: too large"),
])
def test_a_refused_result_fails_the_attempt(refusal: ApiError, no_sleep: None) -> None:
    worker = make_worker()
    fake = FakeClient({
        "/v1/work/complete": [refusal],
        "/v1/work/fail": [{"items": [{"state": "retryable"}]}],
    })
    worker._client = fake  # type: ignore[assignment]
    worker._report("lt_1", "task_1", True, b'{"lease":"lt_1","result":1}')
    worker._send_reports(pending(worker))
    failing = pending(worker)
    assert [r.complete for r in failing] == [False]
    assert b"the result was refused" in failing[0].item
    worker._send_reports(failing)
    assert fake.paths() == ["/v1/work/complete", "/v1/work/fail"]


@pytest.mark.parametrize("answer", [
    [],                                   # a 2xx that is not an object
    {"items": "nope"},                    # items not a list
    {"items": []},                        # not one item per report
    {"items": ["text"]},                  # an item that is not an object
    {"items": [{"error": "boom"}]},       # an error that is not an object
])
def test_a_malformed_report_answer_does_not_kill_the_reporter(answer: Any, no_sleep: None) -> None:
    worker = make_worker()
    fake = FakeClient({"/v1/work/complete": [answer] * 6 + [{"items": [{"state": "succeeded"}]}]})
    worker._client = fake  # type: ignore[assignment]
    worker._report("lt_1", "task_1", True, b'{"lease":"lt_1","result":1}')
    for _ in range(10):
        batch = pending(worker)
        if not batch:
            break
        worker._send_reports(batch)
    assert "/v1/work/fail" not in fake.paths()
    assert pending(worker) == []


@pytest.mark.parametrize("claimed", [None, "text", 7, ["a"], {"envelope": "x"}])
def test_a_malformed_claimed_item_gives_its_slot_back(claimed: Any) -> None:
    worker = make_worker()
    worker._running = 1
    worker._process(claimed)
    assert worker._running == 0


@pytest.mark.parametrize("answer", [[], "text", {"tasks": "nope"}, None])
def test_a_malformed_claim_answer_does_not_stop_the_worker(answer: Any) -> None:
    worker = make_worker()

    def stop() -> Any:
        worker.stop()
        raise TransportError("stopped")

    fake = FakeClient({"/v1/work/claim": [answer, stop]})
    worker._claimer = fake  # type: ignore[assignment]
    worker.run(install_signals=False)  # returns (does not raise)
    assert fake.paths() == ["/v1/work/claim"] * 2


class Busy(http.server.BaseHTTPRequestHandler):
    """Answers every request 503 with a long Retry-After, and counts them."""

    seen: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        Busy.seen.append(self.path)
        body = b'{"error":{"code":"unavailable","message":"busy"}}'
        self.send_response(503)
        self.send_header("retry-after", "10")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def busy_server() -> Iterator[str]:
    Busy.seen = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_busy_server_does_not_hold_up_heartbeats(busy_server: str) -> None:
    # lease 3 s: a beat is due every second, the loop ticks every 0.25 s.
    worker = Worker(busy_server, "sk_test", queues=["q"], keys=RING, lease_ms=3_000)
    worker._beats["lt_1"] = ["task_1", time.monotonic()]
    beater = threading.Thread(target=worker._beat_loop, daemon=True)
    beater.start()
    time.sleep(1.2)
    worker._finished.set()
    beater.join(3)
    # Not asleep for the 503's Retry-After: the beat was tried again on the
    # next ticks, and the loop ends at once.
    assert not beater.is_alive(), "the heartbeat loop is stuck in a retried call"
    assert Busy.seen.count("/v1/work/heartbeat") >= 2, Busy.seen
