"""What a pull worker and a push endpoint share: the handler registry, the
checks a task passes before its handler runs, and running the handler.

A claimed task (docs/worker-protocol.md) and the body Signet POSTs to a
push endpoint are the same object less the lease fields, so
:func:`check_task` reads both.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .config import SigningConfig
from .envelope import TaskEnvelope
from .errors import MissingSignature, SignetError, VerificationError
from .keys import KeyRing
from .loader import LoadedKeys, load_keys
from .sign import EnvelopeSignature, verify_envelope

__all__ = [
    "DEAD_REASONS",
    "Dead",
    "Handler",
    "Handlers",
    "Retry",
    "Task",
    "check_task",
    "signing_config",
]

#: Reasons a worker or endpoint may give for a dead task (the server keeps
#: ``max-attempts`` to itself).
DEAD_REASONS = ("signature-invalid", "payload-invalid", "unknown-task", "expired")
#: Longest error or detail text the server keeps, in bytes.
MAX_ERROR_BYTES = 1024

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)


class Retry(Exception):
    """Raise from a handler to fail this attempt and ask for the next one
    after ``after_ms`` milliseconds (``None``: the server's backoff). Out of
    attempts, the task is dead ``max-attempts`` whatever ``after_ms`` says."""

    def __init__(self, after_ms: int | None = None, message: str = "retry requested") -> None:
        super().__init__(message)
        if after_ms is not None and not 0 <= after_ms <= 365 * 86_400_000:
            raise ValueError(f"after_ms is {after_ms}; it must be from 0 to one year")
        self.after_ms = after_ms
        self.message = message


@dataclass(frozen=True)
class Dead:
    """A task that must not run: report it dead with ``reason`` (one of
    :data:`DEAD_REASONS`) and ``detail``."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Task:
    """A verified task as a handler sees it (its second argument, if it
    takes two). ``args`` is the parsed JSON; ``raw_args`` the producer's
    bytes, as signed."""

    id: str
    queue: str
    name: str
    args: Any
    raw_args: bytes
    headers: Mapping[str, str]
    attempt: int
    max_attempts: int
    created_at_ms: int
    expires_at_ms: int | None
    #: The id of the key whose signature verified, or None (unsigned, accepted).
    key_id: str | None


class Handlers:
    """Handlers by task name. ``@handlers.task("email.send")`` registers a
    function taking ``(args)`` or ``(args, task)``; a plain function runs
    in a worker thread, an ``async def`` on that thread's own event loop."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[Handler, bool, bool]] = {}

    def task(self, name: str) -> Callable[[F], F]:
        """A decorator registering the function for task ``name``."""

        def register(fn: F) -> F:
            self.add(name, fn)
            return fn

        return register

    def add(self, name: str, fn: Handler) -> None:
        """Registers ``fn`` for task ``name`` (once per name)."""
        if not name:
            raise ValueError("a task name is required")
        if name in self._handlers:
            raise ValueError(f"task {name!r} already has a handler")
        try:
            params = inspect.signature(fn).parameters.values()
            positional = [
                p
                for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
            two = varargs or len(positional) >= 2
        except (TypeError, ValueError):
            two = False
        self._handlers[name] = (fn, two, inspect.iscoroutinefunction(fn))

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    def run(self, task: Task) -> Any:
        """Runs the handler of ``task.name`` and returns its result."""
        fn, two, is_async = self._handlers[task.name]
        out = fn(task.args, task) if two else fn(task.args)
        if is_async or inspect.isawaitable(out):
            return _loop().run_until_complete(out)
        return out

    @classmethod
    def of(cls, handlers: Handlers | Mapping[str, Handler]) -> Handlers:
        """A registry from a registry or a mapping of name to function."""
        if isinstance(handlers, Handlers):
            return handlers
        out = cls()
        for name, fn in handlers.items():
            out.add(name, fn)
        return out


_local = threading.local()


def _loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def signing_config(keys: LoadedKeys | SigningConfig | KeyRing | None) -> SigningConfig:
    """The signing configuration from what a worker or endpoint was given:
    loaded keys, a configuration, a ring (signatures required) or None
    (:func:`signet_sdk.load_keys` from the environment and key file)."""
    if keys is None:
        keys = load_keys()
    if isinstance(keys, LoadedKeys):
        return keys.signing
    if isinstance(keys, KeyRing):
        return SigningConfig(ring=keys, required=True, dev=False)
    return keys


def _int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} is not an integer")
    return value


def _opt_int(value: object, what: str) -> int | None:
    return None if value is None else _int(value, what)


def cut(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes at a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def check_task(
    claimed: Mapping[str, Any],
    signing: SigningConfig,
    handlers: Handlers,
    *,
    now_ms: int | None = None,
) -> Task | Dead:
    """Checks a claimed task (or a push body) before anything runs: the
    envelope's signature over the producer's bytes (``args_b64``), then
    ``expires_at_ms``, then that a handler exists, then that the args are
    JSON. Returns the Task to run, or Dead with the reason to report. A task
    with no signature runs only when signatures are not required (or in dev
    mode); dev mode skips verification, as the Rust worker does."""
    try:
        env = claimed["envelope"]
        args = base64.b64decode(env["args_b64"], validate=True)
        raw_headers = env.get("headers") or {}
        if not isinstance(raw_headers, dict) or not all(
            isinstance(v, str) for v in raw_headers.values()
        ):
            raise ValueError("headers is not an object of strings")
        envelope = TaskEnvelope(
            id=env["id"],
            queue=env["queue"],
            name=env["name"],
            args=args,
            headers=raw_headers,
            created_at_ms=_int(env["created_at_ms"], "created_at_ms"),
            not_before_ms=_opt_int(env.get("not_before_ms"), "not_before_ms"),
            expires_at_ms=_opt_int(env.get("expires_at_ms"), "expires_at_ms"),
            max_attempts=_int(env["max_attempts"], "max_attempts"),
            callback_url=env.get("callback_url"),
        )
        attempt = _int(claimed.get("attempt", 1), "attempt")
    except (KeyError, TypeError, ValueError, binascii.Error) as e:
        return Dead(
            "signature-invalid",
            cut(f"malformed: the task's envelope cannot be read ({type(e).__name__}: {e})"),
        )
    key_id: str | None = None
    if not signing.dev:
        sig_dict = claimed.get("signature")
        try:
            if sig_dict is None:
                raise MissingSignature(
                    f"task {envelope.id} has no signature; it was enqueued without a signing key"
                )
            if not isinstance(sig_dict, dict):
                raise VerificationError("the signature is not an object")
            signature = EnvelopeSignature.from_dict(sig_dict)
            key_id = verify_envelope(envelope, signature, signing.ring)
        except MissingSignature as e:
            if signing.required:
                return Dead("signature-invalid", cut(f"missing: {e}"))
        except VerificationError as e:
            reason = e.reason if e.reason != "error" else "malformed"
            return Dead("signature-invalid", cut(f"{reason}: {e}"))
        except SignetError as e:  # an envelope that cannot be encoded
            return Dead("signature-invalid", cut(f"malformed: {e}"))
    clock = int(time.time() * 1000) if now_ms is None else now_ms
    if envelope.expires_at_ms is not None and envelope.expires_at_ms <= clock:
        return Dead("expired", f"the task expired at {envelope.expires_at_ms} (unix ms)")
    if envelope.name not in handlers:
        return Dead(
            "unknown-task", cut(f"no handler for task {envelope.name!r} in this worker")
        )
    try:
        parsed = json.loads(args)
    except (UnicodeDecodeError, ValueError) as e:
        return Dead("payload-invalid", cut(f"args are not JSON: {e}"))
    return Task(
        id=envelope.id,
        queue=envelope.queue,
        name=envelope.name,
        args=parsed,
        raw_args=args,
        headers=envelope.headers,
        attempt=attempt,
        max_attempts=envelope.max_attempts,
        created_at_ms=envelope.created_at_ms,
        expires_at_ms=envelope.expires_at_ms,
        key_id=key_id,
    )


def describe_error(e: BaseException) -> str:
    """A handler's exception as the history's error text (no traceback)."""
    text = str(e)
    return cut(f"{type(e).__name__}: {text}" if text else type(e).__name__)
