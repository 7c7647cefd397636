"""Key configuration: every refusal with its exact message, the warnings,
the defaults, unknown variables named with the closest known one, and that
no message or repr shows a secret."""

from __future__ import annotations

import re

import pytest

from signet_sdk import Algorithm, ConfigError, Key, SigningConfig, load_keys
from signet_sdk.config import (
    PROGRAM_VARIABLES,
    SHARED_VARIABLES,
    VARIABLES,
    _edit_distance,
    unknown_variables,
)

from conftest import RUST_CONFIG
from config_cases import PUB1, REFUSALS, SECRET, SECRET2, SEED1, WARNINGS, b64, unknown_warning


@pytest.mark.parametrize("variables,message", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusal_message(variables: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SigningConfig.from_vars(variables.items())
    assert caught.value.reason == "config"
    assert str(caught.value) == message
    for secret in (SECRET, SECRET2, SEED1):
        assert secret[:12] not in str(caught.value)


@pytest.mark.parametrize("variables,warnings", [c[1:] for c in WARNINGS], ids=[c[0] for c in WARNINGS])
def test_warnings(variables: dict[str, str], warnings: list[str]) -> None:
    assert SigningConfig.from_vars(variables.items()).warnings == warnings


def test_states_are_not_warnings_but_the_summary_says_them() -> None:
    # Signing off and dev mode are what `required`/`dev` and the summary
    # say; they are no warning of their own (as on the Rust side).
    off = SigningConfig.from_vars([])
    assert off.warnings == [] and not off.required
    assert off.summary() == "signing off: no keys configured, unsigned work is accepted"
    dev = SigningConfig.from_vars([("SIGNET_DEV", "1")])
    assert dev.dev and dev.warnings == []
    assert dev.summary() == (
        "signing off: no keys configured, unsigned work is accepted; "
        "DEV MODE: signatures are not verified"
    )
    # A mistyped name is no business of the configuration: load_keys names it.
    typo = SigningConfig.from_vars({"SIGNET_SIGNING_KEYS": f"k:{SECRET}", "SIGNET_SIGNING_ACTIV_KEY": "k"})
    assert typo.warnings == []


def test_unknown_variables_name_the_closest_known_one() -> None:
    # The Rust side's unit test, name for name.
    names = [
        "SIGNET_SIGNING_ACTIV_KEY",
        "SIGNET_MASTERKEY",
        "SIGNET_LISTN",
        "SIGNET_LISTEN",
        "SIGNET_SIGNING_KEYS",
        "SIGNET_TEST_DATABASE_URL",
        "PATH",
        "NO_COLOR",
    ]
    assert unknown_variables(names, ["SIGNET_LISTEN"]) == [
        unknown_warning("SIGNET_SIGNING_ACTIV_KEY", "SIGNET_SIGNING_ACTIVE_KEY"),
        unknown_warning("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY"),
        unknown_warning("SIGNET_LISTN", "SIGNET_LISTEN"),
    ]
    # SIGNET_LISTEN is every program's (PROGRAM_VARIABLES), own or not.
    assert unknown_variables(names, []) == [
        unknown_warning("SIGNET_SIGNING_ACTIV_KEY", "SIGNET_SIGNING_ACTIVE_KEY"),
        unknown_warning("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY"),
        unknown_warning("SIGNET_LISTN", "SIGNET_LISTEN"),
    ]
    # The prefix is case-sensitive, as every variable name is.
    assert unknown_variables(["signet_dev", "Signet_X"], []) == []
    # Rust's shared_variables() order: VARIABLES, the master keys, the test
    # database, then PROGRAM_VARIABLES.
    assert SHARED_VARIABLES == (
        *VARIABLES,
        "SIGNET_MASTER_KEY",
        "SIGNET_MASTER_KEY_PREVIOUS",
        "SIGNET_TEST_DATABASE_URL",
        *PROGRAM_VARIABLES,
    )


def test_one_programs_variables_are_no_alarm_in_anothers_environment() -> None:
    # A worker started beside `signet serve`, with one `.env` file.
    assert unknown_variables(["SIGNET_LISTEN", "SIGNET_WORKER_QUEUES"], []) == []
    shared = {"SIGNET_LISTEN": "127.0.0.1:8080", "SIGNET_WORKER_QUEUES": "default"}
    assert load_keys(shared, unsigned=True).warnings == []


def test_program_variables_are_rusts_list() -> None:
    # The copy of signet-sign's PROGRAM_VARIABLES, read from the source at
    # test time (like the vectors), name for name and in its order.
    source = RUST_CONFIG.read_text(encoding="utf-8")
    found = re.search(r"pub const PROGRAM_VARIABLES\s*:[^=]*=\s*\[(.*?)\];", source, re.S)
    assert found, f"no PROGRAM_VARIABLES array in {RUST_CONFIG}"
    rust = re.findall(r'"([^"]*)"', found.group(1))
    assert rust, f"PROGRAM_VARIABLES in {RUST_CONFIG} has no names"
    assert list(PROGRAM_VARIABLES) == rust, (
        f"signet_sdk.config.PROGRAM_VARIABLES differs from PROGRAM_VARIABLES in {RUST_CONFIG}; "
        "copy the list from that file, in its order"
    )


def test_a_tie_goes_to_the_first_known_name() -> None:
    # Rust's min_by_key keeps the first of equal distances: the program's
    # own names in their order, then the shared ones.
    assert unknown_variables(["SIGNET_X"], ["SIGNET_A", "SIGNET_B"]) == [
        unknown_warning("SIGNET_X", "SIGNET_A")
    ]
    assert unknown_variables(["SIGNET_X"], ["SIGNET_B", "SIGNET_A"]) == [
        unknown_warning("SIGNET_X", "SIGNET_B")
    ]
    # SIGNET_DEW is one edit from both; the own name comes first.
    assert unknown_variables(["SIGNET_DEW"], ["SIGNET_DEX"]) == [
        unknown_warning("SIGNET_DEW", "SIGNET_DEX")
    ]


@pytest.mark.parametrize(
    "a,b,distance",
    [("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY", 1), ("", "ab", 2), ("kitten", "sitting", 3),
     ("ab", "", 2), ("same", "same", 0), ("é", "e", 2),  # bytes: é is two
     ("SIGNET_\udcff", "SIGNET_", 1)],  # an undecodable byte, as os.environ keeps it
)
def test_edit_distance_over_bytes(a: str, b: str, distance: int) -> None:
    assert _edit_distance(a, b) == distance == _edit_distance(b, a)


def test_one_key_is_active_by_default_and_prefixes_are_allowed() -> None:
    cfg = SigningConfig.from_vars([("SIGNET_SIGNING_KEYS", f"only:whsec_{SECRET}")])
    assert cfg.ring.active is not None and cfg.ring.active.id == "only"
    assert cfg.required and not cfg.dev and cfg.warnings == []
    assert cfg.summary() == 'signing on: hmac-sha256, active key "only", 1 key (only)'


def test_ed25519_private_public_and_verify_only() -> None:
    cfg = SigningConfig.from_vars(
        [
            ("SIGNET_SIGNING_ALGORITHM", "ed25519"),
            ("SIGNET_SIGNING_PRIVATE_KEYS", f"e1:whsk_{SEED1}"),
            ("SIGNET_SIGNING_PUBLIC_KEYS", f"e1:{PUB1}"),
        ]
    )
    assert len(cfg.ring) == 1 and cfg.ring.active is not None
    assert cfg.ring.active.algorithm is Algorithm.ED25519
    cfg = SigningConfig.from_vars([("SIGNET_SIGNING_PUBLIC_KEYS", f"e1:whpk_{PUB1}")])
    assert cfg.ring.active is None and cfg.required
    assert cfg.summary() == "signing on (verify only): 1 key (e1)"


def test_overlap_signers_and_summary() -> None:
    cfg = SigningConfig.from_vars(
        [
            ("SIGNET_SIGNING_KEYS", f"old:{SECRET},new:{SECRET2}"),
            ("SIGNET_SIGNING_ACTIVE_KEY", "new"),
            ("SIGNET_SIGNING_OVERLAP_KEYS", "old"),
        ]
    )
    assert [k.id for k in cfg.ring.signers()] == ["new", "old"]
    assert cfg.summary() == (
        'signing on: hmac-sha256, active key "new", also signing with old, 2 keys (old, new)'
    )


@pytest.mark.parametrize(
    "value,on", [("1", True), ("true", True), ("TRUE", False), ("0", False), ("yes", False), ("", False)]
)
def test_dev_only_for_1_or_true(value: str, on: bool) -> None:
    assert SigningConfig.from_vars([("SIGNET_DEV", value)]).dev is on


def test_nothing_set_is_signing_off() -> None:
    cfg = SigningConfig.from_vars([("PATH", "/bin")])
    assert not cfg.required and len(cfg.ring) == 0
    assert cfg.summary() == "signing off: no keys configured, unsigned work is accepted"


def test_empty_value_is_absent_and_last_value_wins() -> None:
    cfg = SigningConfig.from_vars(
        [
            ("SIGNET_SIGNING_KEYS", f"a:{SECRET},b:{SECRET2}"),
            ("SIGNET_SIGNING_ACTIVE_KEY", "a"),
            ("SIGNET_SIGNING_ACTIVE_KEY", "b"),
            ("SIGNET_SIGNING_ALGORITHM", ""),
        ]
    )
    assert cfg.ring.active is not None and cfg.ring.active.id == "b"


def test_url_safe_and_unpadded_keys_decode() -> None:
    raw = bytes(range(250, 256)) * 6  # 36 bytes with '+' and '/' in standard base64
    url = b64(raw).replace("+", "-").replace("/", "_").rstrip("=")
    cfg = SigningConfig.from_vars([("SIGNET_SIGNING_KEYS", f"u:{url}")])
    assert cfg.ring.active is not None and cfg.ring.active.secret_bytes() == raw


def test_reprs_show_no_secret() -> None:
    cfg = SigningConfig.from_vars(
        [
            ("SIGNET_SIGNING_KEYS", f"h:{SECRET}"),
            ("SIGNET_SIGNING_PRIVATE_KEYS", f"e:{SEED1}"),
            ("SIGNET_SIGNING_ACTIVE_KEY", "h"),
        ]
    )
    texts = [repr(cfg), str(cfg.ring), repr(cfg.ring)] + [repr(k) for k in cfg.ring.keys]
    secrets = [SECRET, SEED1, bytes.fromhex(b64(b"").encode().hex() or "00").hex()]
    for key in cfg.ring.keys:
        raw = key.secret_bytes()
        secrets += [raw.hex(), b64(raw)[:16], repr(raw)[2:20]]
    for text in texts:
        for secret in secrets:
            if secret:
                assert secret not in text, text
    assert "Key(h, hmac-sha256, sha256:" in repr(cfg.ring.keys[0])


def test_a_mapping_is_accepted() -> None:
    cfg = SigningConfig.from_vars({"SIGNET_SIGNING_KEYS": f"m:{SECRET}"})
    assert cfg.ring.active is not None and cfg.ring.active.id == "m"


def test_keys_and_rings_are_not_pickled_or_copied() -> None:
    import copy
    import pickle

    cfg = SigningConfig.from_vars({"SIGNET_SIGNING_KEYS": f"m:{SECRET}"})
    for thing in (cfg.ring, cfg.ring.keys[0]):
        with pytest.raises(TypeError):
            pickle.dumps(thing)
        with pytest.raises(TypeError):
            copy.deepcopy(thing)
    with pytest.raises(AttributeError):
        cfg.ring.keys[0]._secret = b"x"
    with pytest.raises(TypeError):
        Key()
