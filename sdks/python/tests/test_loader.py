"""Where keys come from: variables win; else SIGNET_KEYS_FILE; else the key
file beside SIGNET_DATABASE_URL's SQLite file; never a file created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signet_sdk import ConfigError, key_file_beside, load_keys, parse_key_file

from config_cases import KEY_FILE_REFUSALS, SECRET, SECRET2, UNKNOWN_VARIABLES, unknown_warning


def write_keys(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


FILE = (
    "# Signet signing keys and master key: keep this file secret (mode 0600).\n"
    "SIGNET_SIGNING_ALGORITHM=hmac-sha256\n"
    f"SIGNET_SIGNING_KEYS=f1:{SECRET},f2:{SECRET2}\n"
    "SIGNET_SIGNING_ACTIVE_KEY=f1\n"
    f"SIGNET_MASTER_KEY={SECRET2}\n"
)


def test_variables_win_over_a_key_file(tmp_path: Path) -> None:
    path = write_keys(tmp_path / "k.keys", FILE)
    loaded = load_keys({"SIGNET_SIGNING_KEYS": f"env:{SECRET}", "SIGNET_KEYS_FILE": str(path)})
    assert loaded.source == "environment"
    assert [k.id for k in loaded.signing.ring.keys] == ["env"]
    assert loaded.warnings == [
        "both SIGNET_KEYS_FILE and SIGNET_SIGNING_KEYS (or the Ed25519 variables) are set: the "
        "variables win and the file is not read; unset one of them"
    ]
    assert loaded.describe() == "keys from the SIGNET_SIGNING_* variables"


def test_named_key_file_with_a_variable_winning_over_its_line(tmp_path: Path) -> None:
    path = write_keys(tmp_path / "k.keys", FILE)
    loaded = load_keys({"SIGNET_KEYS_FILE": str(path), "SIGNET_SIGNING_ACTIVE_KEY": "f2"})
    assert loaded.source == "file" and loaded.path == path
    assert loaded.signing.ring.active is not None and loaded.signing.ring.active.id == "f2"
    assert loaded.warnings == [] and loaded.signing.warnings == []
    assert loaded.describe() == f"keys from {path}"


def test_a_key_file_may_hold_the_previous_master_keys(tmp_path: Path) -> None:
    # During a master key rotation the file holds the old key too; the SDK
    # signs with the ring and ignores both master key lines.
    path = write_keys(tmp_path / "k.keys", FILE + f"SIGNET_MASTER_KEY_PREVIOUS={SECRET}\n")
    loaded = load_keys({"SIGNET_KEYS_FILE": str(path)})
    assert [k.id for k in loaded.signing.ring.keys] == ["f1", "f2"]
    assert loaded.warnings == [] and loaded.signing.warnings == []


@pytest.mark.parametrize(
    "url,name",
    [("sqlite://{dir}/jobs.sqlite", "jobs.keys"), ("sqlite:{dir}/signet.db", "signet.keys"),
     ("{dir}/data", "data.keys"), ("SQLITE://{dir}/x.keys", "x.keys.keys")],
)
def test_key_file_beside_the_sqlite_database(tmp_path: Path, url: str, name: str) -> None:
    path = write_keys(tmp_path / name, FILE)
    loaded = load_keys({"SIGNET_DATABASE_URL": url.format(dir=tmp_path)})
    assert loaded.source == "file" and loaded.path == path
    assert [k.id for k in loaded.signing.ring.keys] == ["f1", "f2"]


def test_default_database_url_is_signet_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_keys(tmp_path / "signet.keys", FILE)
    loaded = load_keys({})
    assert loaded.source == "file" and loaded.path == Path("signet.keys")


def test_no_keys_is_an_error_and_no_file_is_created(tmp_path: Path) -> None:
    db = tmp_path / "signet.db"
    with pytest.raises(ConfigError) as caught:
        load_keys({"SIGNET_DATABASE_URL": f"sqlite://{db}"})
    assert str(caught.value) == (
        "no signing keys: no SIGNET_SIGNING_* key variables are set, SIGNET_KEYS_FILE is not "
        f"set, and there is no key file at {tmp_path / 'signet.keys'} (beside the database "
        "SIGNET_DATABASE_URL names). Set SIGNET_KEYS_FILE to the key file your Signet "
        "deployment uses (a SQLite database's is beside it, e.g. ./signet.keys), or set the "
        "SIGNET_SIGNING_* variables (`signet keys generate` prints them); to run unsigned on "
        "purpose set SIGNET_DEV=1"
    )
    assert list(tmp_path.iterdir()) == []


def test_named_file_missing_is_an_error_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "shared.keys"
    with pytest.raises(ConfigError) as caught:
        load_keys({"SIGNET_KEYS_FILE": str(path), "SIGNET_DATABASE_URL": f"{tmp_path}/s.db"})
    assert str(caught.value).startswith(
        f"SIGNET_KEYS_FILE names {path}, which does not exist; the SDK reads key files but "
        "never creates one."
    )
    assert not path.exists()


def test_postgres_needs_keys_unless_dev() -> None:
    url = "postgres://signet:pw@db:5432/signet"
    with pytest.raises(ConfigError) as caught:
        load_keys({"SIGNET_DATABASE_URL": url})
    assert "SIGNET_DATABASE_URL names a database with no key file of its own" in str(caught.value)
    assert "pw" not in str(caught.value)
    loaded = load_keys({"SIGNET_DATABASE_URL": url, "SIGNET_DEV": "1"})
    assert loaded.source == "nothing" and loaded.signing.dev and not loaded.signing.required
    assert load_keys({"SIGNET_DATABASE_URL": "sqlite::memory:", "SIGNET_DEV": "true"}).signing.dev


def test_unsigned_reads_nothing(tmp_path: Path) -> None:
    loaded = load_keys({"SIGNET_KEYS_FILE": str(tmp_path / "missing")}, unsigned=True)
    assert loaded.source == "unsigned" and not loaded.signing.required
    assert len(loaded.signing.ring) == 0


@pytest.mark.parametrize(
    "variables,unknown", [c[1:] for c in UNKNOWN_VARIABLES], ids=[c[0] for c in UNKNOWN_VARIABLES]
)
def test_unknown_variables_are_named_with_the_closest_known_one(
    variables: dict[str, str], unknown: dict[str, str]
) -> None:
    loaded = load_keys(variables)
    expected = [unknown_warning(name, closest) for name, closest in unknown.items()]
    assert loaded.warnings == expected and loaded.signing.warnings == []
    assert loaded.all_warnings() == expected
    for warning in loaded.warnings:
        assert "not-a-key" not in warning and SECRET[:12] not in warning  # names, never values


def test_unknown_variables_warn_once_first_and_also_unsigned(tmp_path: Path) -> None:
    path = write_keys(tmp_path / "k.keys", FILE, mode=0o644)
    pairs = [("SIGNET_KEYS_FILE", str(path)), ("SIGNET_DATABASE_URLL", "x"),
             ("SIGNET_DATABASE_URLL", "y")]
    loaded = load_keys(pairs)
    assert loaded.source == "file"
    assert loaded.warnings[0] == unknown_warning("SIGNET_DATABASE_URLL", "SIGNET_DATABASE_URL")
    assert len(loaded.warnings) == 2 and "can be read by other users" in loaded.warnings[1]
    unsigned = load_keys({"SIGNET_SIGNING_KEY": "x"}, unsigned=True)
    assert unsigned.warnings == [unknown_warning("SIGNET_SIGNING_KEY", "SIGNET_SIGNING_KEYS")]
    assert unsigned.signing.warnings == []


def test_a_readable_key_file_warns(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    path = write_keys(tmp_path / "k.keys", FILE, mode=0o644)
    loaded = load_keys({"SIGNET_KEYS_FILE": str(path)})
    assert loaded.warnings == [
        f"the key file {path} can be read by other users (mode 0644); run `chmod 600 {path}`"
    ]


def test_configuration_errors_name_the_file(tmp_path: Path) -> None:
    path = write_keys(tmp_path / "k.keys", FILE)
    with pytest.raises(ConfigError) as caught:
        load_keys({"SIGNET_KEYS_FILE": str(path), "SIGNET_SIGNING_ACTIVE_KEY": "f9"})
    assert str(caught.value) == (
        f"the key file {path} (with the SIGNET_SIGNING_* variables set here): "
        'SIGNET_SIGNING_ACTIVE_KEY is "f9", which is not among the configured keys (keys: f1, '
        "f2); add it to SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS, or pick another"
    )


@pytest.mark.parametrize(
    "text,message", [c[1:] for c in KEY_FILE_REFUSALS], ids=[c[0] for c in KEY_FILE_REFUSALS]
)
def test_key_file_refusals(tmp_path: Path, text: str, message: str) -> None:
    path = write_keys(tmp_path / "k.keys", text)
    with pytest.raises(ConfigError) as caught:
        load_keys({"SIGNET_KEYS_FILE": str(path)})
    assert str(caught.value) == f"the key file {path}: {message}"
    assert SECRET[:12] not in str(caught.value)


def test_key_file_syntax() -> None:
    text = f"\n  # c\nexport SIGNET_SIGNING_KEYS='a:{SECRET}'\r\nSIGNET_DEV=\"0\"\n"
    assert parse_key_file(text) == [("SIGNET_SIGNING_KEYS", f"a:{SECRET}"), ("SIGNET_DEV", "0")]


@pytest.mark.parametrize(
    "db,keys",
    [("./signet.db", "signet.keys"), ("/var/lib/jobs.sqlite", "/var/lib/jobs.keys"),
     ("data", "data.keys"), ("x.keys", "x.keys.keys"), ("a.tar.gz", "a.tar.keys")],
)
def test_key_file_beside(db: str, keys: str) -> None:
    assert key_file_beside(db) == Path(keys)
