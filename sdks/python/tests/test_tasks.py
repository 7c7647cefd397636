"""check_task (what a worker and a push endpoint check before running) and
the handler registry, without a server."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from signet_sdk import Handlers, Key, KeyRing, SigningConfig, Task, TaskEnvelope, sign_envelope
from signet_sdk.tasks import Dead, check_task

KEY = Key.hmac("k1", b"k" * 32)
REQUIRED = SigningConfig(ring=KeyRing.single(KEY), required=True, dev=False)


def claimed(args: bytes = b'{"x":1}', *, sign: bool = True, **env: Any) -> dict[str, Any]:
    envelope = TaskEnvelope(
        id="task_1", queue="q", name=env.pop("name", "t"), args=args, created_at_ms=1,
        max_attempts=3, headers={"tenant": "acme"}, **env,
    )
    return {
        "lease": "lt_1", "attempt": 1,
        "envelope": {
            "id": envelope.id, "queue": envelope.queue, "name": envelope.name,
            "args_b64": base64.b64encode(args).decode(), "headers": dict(envelope.headers),
            "created_at_ms": 1, "not_before_ms": None,
            "expires_at_ms": envelope.expires_at_ms, "max_attempts": 3, "callback_url": None,
        },
        "signature": sign_envelope(envelope, REQUIRED.ring).to_dict() if sign else None,
    }


def registry() -> Handlers:
    h = Handlers()
    h.add("t", lambda args: args)
    return h


def test_a_good_task() -> None:
    task = check_task(claimed(), REQUIRED, registry())
    assert isinstance(task, Task)
    assert task.args == {"x": 1} and task.key_id == "k1" and task.headers == {"tenant": "acme"}


@pytest.mark.parametrize(
    ("task", "reason", "detail"),
    [
        (claimed(sign=False), "signature-invalid", "missing: "),
        (claimed(expires_at_ms=10), "expired", "the task expired"),
        (claimed(name="other"), "unknown-task", "no handler"),
        (claimed(b"\xff not json"), "payload-invalid", "args are not JSON"),
    ],
)
def test_dead_reasons(task: dict[str, Any], reason: str, detail: str) -> None:
    out = check_task(task, REQUIRED, registry(), now_ms=1_000)
    assert isinstance(out, Dead)
    assert out.reason == reason and out.detail.startswith(detail)


def test_each_verification_outcome_starts_the_detail() -> None:
    good = claimed()
    cases = {
        "unknown-key": {**good["signature"], "key_id": "k2"},
        "algorithm-mismatch": {**good["signature"], "alg": "ed25519"},
        "malformed": {**good["signature"], "sig": "AAAA"},
        "mismatch": {**good["signature"], "sig": base64.b64encode(b"\0" * 32).decode()},
    }
    for outcome, sig in cases.items():
        out = check_task({**good, "signature": sig}, REQUIRED, registry())
        assert isinstance(out, Dead) and out.reason == "signature-invalid"
        assert out.detail.startswith(f"{outcome}: "), (outcome, out.detail)


def test_unsigned_tasks_run_only_when_signatures_are_not_required() -> None:
    lenient = SigningConfig(ring=KeyRing.single(KEY), required=False, dev=False)
    assert isinstance(check_task(claimed(sign=False), lenient, registry()), Task)
    # A signature that is present is still checked.
    bad = {**claimed(), "envelope": {**claimed()["envelope"], "args_b64": "e30="}}
    assert isinstance(check_task(bad, lenient, registry()), Dead)


def test_handlers_take_args_or_args_and_task_and_may_be_async() -> None:
    h = Handlers()
    h.add("t", lambda args: ("one", args["x"]))

    @h.task("two")
    def two(args: Any, task: Task) -> Any:
        return ("two", task.attempt)

    @h.task("async")
    async def run_async(args: Any) -> Any:
        return ("async", args["x"])

    def run(name: str) -> Any:
        task = check_task(claimed(name=name), REQUIRED, h)
        assert isinstance(task, Task)
        return h.run(task)

    assert run("t") == ("one", 1)
    assert run("two") == ("two", 1)
    assert run("async") == ("async", 1)
    with pytest.raises(ValueError, match="already"):
        h.add("t", lambda args: None)


def test_dev_mode_skips_verification() -> None:
    dev = SigningConfig(ring=KeyRing([]), required=False, dev=True)
    tampered = {**claimed(), "envelope": {**claimed()["envelope"], "args_b64": "eyJ4IjoyfQ=="}}
    task = check_task(tampered, dev, registry())
    assert isinstance(task, Task) and task.args == {"x": 2} and task.key_id is None
