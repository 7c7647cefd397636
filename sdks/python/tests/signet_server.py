"""A real `signet serve` for the HTTP tests: SIGNET_BIN on a free port
(`--listen 127.0.0.1:0`, the banner names it) over a temporary SQLite
database, with the admin key its first start prints and a `work` key made
with `signet api-keys create`."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from signet_sdk import Client, LoadedKeys, load_keys

BIN = os.environ.get("SIGNET_BIN", "")
needs_server = pytest.mark.skipif(
    not BIN,
    reason="SIGNET_BIN is not set; point it at the signet binary (cargo build; "
    "SIGNET_BIN=target/debug/signet) to run the tests against a real server",
)


class Server:
    """One `signet serve` process. ``env`` adds variables (signing keys)."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, *args: str) -> None:
        if not Path(BIN).is_file():
            pytest.fail(f"SIGNET_BIN={BIN} is not a file")
        self.root = root
        self.db = root / "signet.db"
        self.database_url = f"sqlite://{self.db}"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
        self.log = root / "serve.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [BIN, "serve", "--listen", "127.0.0.1:0", "--database-url",
                 self.database_url, *args],
                env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        url = key = None
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            url = url or _find(r"listening on (http://\S+)", text)
            key = key or _find(r"api key: (sk_\S+)", text)
            if url and key and "leadership" in text:
                break
            if self.proc.poll() is not None:
                pytest.fail(f"signet serve exited: {text}")
            time.sleep(0.05)
        else:
            self.stop()
            pytest.fail(f"signet serve did not start: {self.log.read_text()}")
        assert url and key
        self.url = url
        self.admin_key = key
        self.work_key = self.cli("api-keys", "create", "--name", "py-worker", "--scope", "work")
        self.admin = Client(self.url, self.admin_key)

    def cli(self, *argv: str) -> str:
        """Runs a `signet` command on this store; returns its stdout, stripped."""
        out = subprocess.run(
            [BIN, *argv, "--database-url", self.database_url],
            env=self.env, capture_output=True, text=True, timeout=60,
        )
        if out.returncode != 0:
            raise AssertionError(f"signet {' '.join(argv)} failed: {out.stderr}")
        return out.stdout.strip()

    def keys(self) -> LoadedKeys:
        """The keys the server uses (its key file, or the variables it got)."""
        if any(k.startswith("SIGNET_SIGNING_") for k in self.env):
            return load_keys({k: v for k, v in self.env.items() if k != "PATH"})
        return load_keys({"SIGNET_KEYS_FILE": str(self.root / "signet.keys")})

    def task(self, task_id: str) -> dict[str, Any]:
        view: dict[str, Any] = self.admin.call("GET", f"/v1/tasks/{task_id}")
        return view

    def wait_state(self, task_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            view = self.task(task_id)
            if view["state"] in states:
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} is {view['state']}, not {states}: {view}")
            time.sleep(0.05)

    def sql(self, query: str, *params: Any) -> None:
        """Changes the store behind the server's back (tamper tests)."""
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            conn.execute(query, params)
            conn.commit()
        finally:
            conn.close()

    def lease_expires_at_ms(self, task_id: str) -> int:
        """When the task's lease ends, read from the store."""
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            row = conn.execute(
                "SELECT lease_expires_at_ms FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
        finally:
            conn.close()
        return int(row[0]) if row and row[0] is not None else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _find(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None
