"""Cross-checks with the real Rust side: the `signet` binary named by
SIGNET_BIN (the lead's CI builds target/debug/signet) makes a real key file
and real signed tasks in a temporary directory; the SDK must load that key
file, verify what the binary signed (with only the public key for Ed25519)
and produce identical bytes and signatures. The binary must also refuse
every bad key configuration with the message the SDK gives, warn as the SDK
does, and name each unknown SIGNET_… variable with the same closest name."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from signet_sdk import (
    ConfigError,
    EnvelopeSignature,
    SignatureMismatch,
    SigningConfig,
    TaskEnvelope,
    load_keys,
    parse_key_file,
    sign_envelope,
    verify_envelope,
)

from config_cases import KEY_FILE_REFUSALS, REFUSALS, UNKNOWN_VARIABLES, WARNINGS

BIN = os.environ.get("SIGNET_BIN", "")
pytestmark = pytest.mark.skipif(
    not BIN,
    reason="SIGNET_BIN is not set; point it at the signet binary (cargo build; "
    "SIGNET_BIN=target/debug/signet) to cross-check with the Rust side",
)

ARGS = '{"to": "ada@example.com",  "n": [1, 2.50, "grüß"]}'  # spacing kept as written


def run(env: dict[str, str], *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [BIN, *argv], env=env, capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"signet {' '.join(argv)} failed: {result.stderr}")
    return result


@pytest.fixture()
def store(tmp_path: Path) -> dict[str, str]:
    if not Path(BIN).is_file():
        pytest.fail(f"SIGNET_BIN={BIN} is not a file")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SIGNET_DATABASE_URL": f"sqlite://{tmp_path / 'signet.db'}",
    }


def enqueue_and_show(env: dict[str, str]) -> dict[str, Any]:
    out = run(
        env, "enqueue", "--task", "email.send", "--queue", "mail", "--args", ARGS,
        "--header", "X-Tenant=acme", "--header", "traceparent=00-abc-01",
        "--callback-url", "https://hooks.example.com/done?x=1", "--delay", "1h",
        "--expires-in", "2h", "--max-attempts", "7", "--json",
    )
    task_id = json.loads(out.stdout)["id"]
    shown: dict[str, Any] = json.loads(run(env, "tasks", "show", task_id, "--json").stdout)
    return shown


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def ms(time: str | None) -> int | None:
    """An API time (RFC 3339, milliseconds, UTC) as Unix milliseconds, exactly."""
    if time is None:
        return None
    return (datetime.datetime.fromisoformat(time) - EPOCH) // datetime.timedelta(milliseconds=1)


def envelope_of(shown: dict[str, Any]) -> TaskEnvelope:
    # `tasks show --json` prints the API's task view: args parsed, times in
    # RFC 3339; the stored bytes are what was passed.
    assert json.loads(ARGS) == shown["args"]
    created_at_ms = ms(shown["created_at"])
    assert created_at_ms is not None
    return TaskEnvelope(
        id=shown["id"], queue=shown["queue"], name=shown["task"], args=ARGS.encode(),
        headers=shown["headers"], created_at_ms=created_at_ms,
        not_before_ms=ms(shown["not_before"]), expires_at_ms=ms(shown["expires_at"]),
        max_attempts=shown["max_attempts"], callback_url=shown["callback_url"],
    )


def test_hmac_task_signed_by_the_binary(store: dict[str, str], tmp_path: Path) -> None:
    shown = enqueue_and_show(store)  # creates signet.keys beside the database
    assert (tmp_path / "signet.keys").exists()
    loaded = load_keys(store)
    assert loaded.source == "file" and loaded.path == tmp_path / "signet.keys"
    stored = EnvelopeSignature.from_dict(shown["signature"])
    env = envelope_of(shown)
    assert env.headers == {"x-tenant": "acme", "traceparent": "00-abc-01"}
    assert verify_envelope(env, stored, loaded.signing.ring) == stored.key_id
    assert verify_envelope(env, stored, loaded.signing.ring.verify_only()) == stored.key_id
    assert sign_envelope(env, loaded.signing.ring) == stored  # identical bytes, identical tag
    tampered = dataclasses.replace(env, args=ARGS.replace("ada", "eve").encode())
    with pytest.raises(SignatureMismatch):
        verify_envelope(tampered, stored, loaded.signing.ring)


def test_ed25519_task_verifies_with_the_public_key_only(
    store: dict[str, str], tmp_path: Path
) -> None:
    run(store, "keys", "ls")  # creates the key file
    run(store, "keys", "add", "--algorithm", "ed25519", "--id", "ed-1")
    run(store, "keys", "activate", "ed-1")
    shown = enqueue_and_show(store)
    stored = EnvelopeSignature.from_dict(shown["signature"])
    assert stored.alg.value == "ed25519" and stored.key_id == "ed-1"
    env = envelope_of(shown)
    # A verify-only worker: only the public key line of the real key file.
    lines = dict(parse_key_file((tmp_path / "signet.keys").read_text()))
    public_only = SigningConfig.from_vars(
        [("SIGNET_SIGNING_PUBLIC_KEYS", lines["SIGNET_SIGNING_PUBLIC_KEYS"])]
    )
    assert public_only.ring.active is None
    assert verify_envelope(env, stored, public_only.ring) == "ed-1"
    # The producer's side: the whole file, through the loader, signs the same.
    loaded = load_keys({**store, "SIGNET_KEYS_FILE": str(tmp_path / "signet.keys")})
    assert loaded.signing.ring.active is not None and loaded.signing.ring.active.id == "ed-1"
    assert sign_envelope(env, loaded.signing.ring) == stored


def keys_ls_message(env: dict[str, str]) -> tuple[int, str]:
    result = run(env, "keys", "ls", check=False)
    prefix = "signet keys ls: "
    lines = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    return result.returncode, lines[0][len(prefix):] if lines else result.stderr


@pytest.mark.parametrize(
    "variables,message", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_binary_refuses_with_the_same_message(
    variables: dict[str, str], message: str
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "SIGNET_DATABASE_URL": "sqlite::memory:",
           **variables}
    code, got = keys_ls_message(env)
    assert code != 0 and got == message
    with pytest.raises(ConfigError) as caught:
        load_keys(env)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text,message", [c[1:] for c in KEY_FILE_REFUSALS], ids=[c[0] for c in KEY_FILE_REFUSALS]
)
def test_binary_refuses_key_files_with_the_same_message(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.keys"
    path.write_text(text)
    path.chmod(0o600)
    env = {"PATH": os.environ.get("PATH", ""), "SIGNET_DATABASE_URL": "sqlite::memory:",
           "SIGNET_KEYS_FILE": str(path)}
    code, got = keys_ls_message(env)
    assert code != 0 and got == f"the key file {path}: {message}"
    with pytest.raises(ConfigError) as caught:
        load_keys(env)
    assert str(caught.value) == got


@pytest.mark.parametrize(
    "variables,warnings", [c[1:] for c in WARNINGS], ids=[c[0] for c in WARNINGS]
)
def test_binary_warns_the_same(variables: dict[str, str], warnings: list[str]) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "SIGNET_DATABASE_URL": "sqlite::memory:",
           **variables}
    result = run(env, "keys", "ls")
    # Exactly these: signing off and dev mode are states, not warnings.
    warned = [line for line in result.stderr.splitlines() if line.startswith("WARN ")]
    assert warned == [f"WARN {warning}" for warning in warnings], result.stderr
    assert load_keys(env).all_warnings() == warnings


@pytest.mark.parametrize(
    "variables,unknown", [c[1:] for c in UNKNOWN_VARIABLES], ids=[c[0] for c in UNKNOWN_VARIABLES]
)
def test_binary_names_unknown_variables_the_same(
    variables: dict[str, str], unknown: dict[str, str]
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "SIGNET_DATABASE_URL": "sqlite::memory:",
           **variables}
    result = run(env, "keys", "ls")
    binary = {
        line.removeprefix("WARN ").split(" ", 1)[0]: line.removeprefix("WARN ")
        for line in result.stderr.splitlines()
        if line.startswith("WARN ") and " is not a Signet variable" in line
    }
    sdk = load_keys(env).warnings
    assert sorted(binary) == sorted(unknown), result.stderr
    assert len(sdk) == len(unknown)
    # The same message up to the closest name; the binary goes on with
    # where its --help lists the variables, which an SDK has not.
    for message in sdk:
        name = message.split(" ", 1)[0]
        assert binary[name].startswith(message), (binary[name], message)
        assert binary[name][len(message):].startswith(" ("), binary[name]
        assert message.endswith(f"the closest known name is {unknown[name]}")
