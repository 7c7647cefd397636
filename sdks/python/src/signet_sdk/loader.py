"""Where a process's signing keys come from (mirrors ``signet-runtime``'s
``keys.rs`` and ``signet-sign``'s ``keyfile.rs``; docs/keys.md).

The rule, in order:

1. Key material in the environment (``SIGNET_SIGNING_KEYS``,
   ``…_PRIVATE_KEYS`` or ``…_PUBLIC_KEYS``): the variables are the keys.
2. ``SIGNET_KEYS_FILE``, or else the key file beside the SQLite database
   ``SIGNET_DATABASE_URL`` names (default ``sqlite://./signet.db``, so
   ``./signet.keys``): the file's lines, with any other signing variable set
   in the environment (``SIGNET_SIGNING_ACTIVE_KEY``, ``…_REQUIRED``,
   ``SIGNET_DEV`` …) winning over the file's line.
3. Otherwise no keys: an error unless ``SIGNET_DEV=1``.

Any other ``SIGNET_…`` variable in the environment is one the SDK does not
read: :func:`load_keys` warns about it with the closest known name
(:func:`signet_sdk.config.unknown_variables`).

An SDK only reads key files: it never creates or edits one (``signet serve``
or ``signet keys`` do that).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import (
    MASTER_KEY_PREVIOUS_VAR,
    MASTER_KEY_VAR,
    MATERIAL_VARIABLES,
    VAR_DEV,
    VAR_KEYS,
    VAR_REQUIRED,
    VARIABLES,
    SigningConfig,
    unknown_variables,
)
from .errors import ConfigError, quote

#: Names the key file explicitly (any backend).
KEYS_FILE_VAR = "SIGNET_KEYS_FILE"
#: The database URL; a SQLite file has its key file beside it.
DATABASE_URL_VAR = "SIGNET_DATABASE_URL"
#: The default database URL of the ``signet`` binary.
DEFAULT_DATABASE_URL = "sqlite://./signet.db"
#: The variables the SDK reads besides the shared ones
#: (:data:`signet_sdk.config.SHARED_VARIABLES`); any other ``SIGNET_…``
#: name gets a warning from :func:`load_keys`.
KNOWN_VARIABLES = (KEYS_FILE_VAR, DATABASE_URL_VAR)
#: The extension of a key file beside a database.
KEY_FILE_EXTENSION = "keys"


def key_file_beside(database: str | os.PathLike[str]) -> Path:
    """The key file of the SQLite database file ``database``: its extension
    replaced by ``.keys`` (``./signet.db`` → ``./signet.keys``, ``data`` →
    ``data.keys``; ``x.keys`` → ``x.keys.keys``)."""
    path = Path(database)
    if path.suffix == "." + KEY_FILE_EXTENSION:
        return path.with_name(path.name + "." + KEY_FILE_EXTENSION)
    if path.suffix:
        return path.with_suffix("." + KEY_FILE_EXTENSION)
    return path.with_name(path.name + "." + KEY_FILE_EXTENSION)


def sqlite_file(url: str) -> Path | None:
    """The database file a ``SIGNET_DATABASE_URL`` names, or None for
    PostgreSQL and in-memory databases (as the ``signet`` binary reads it)."""
    text = url.strip()
    lower = text.lower()
    if lower.startswith("postgres://") or lower.startswith("postgresql://"):
        return None
    if lower.startswith("sqlite:"):
        rest = text[7:]
    elif "://" in lower or not lower:
        raise ConfigError(
            f"{DATABASE_URL_VAR} {quote(url)} is not a database URL Signet knows; use "
            "sqlite://./signet.db (a file), a plain file path, sqlite::memory:, or "
            "postgres://user@host:5432/database"
        )
    else:
        rest = text
    if rest == ":memory:":
        return None
    path = rest[2:] if rest.startswith("//") else rest
    if not path or "?" in path or "#" in path:
        raise ConfigError(
            f"{DATABASE_URL_VAR} {quote(url)} names no database file the SDK can find a key "
            "file beside; use sqlite://./signet.db or set SIGNET_KEYS_FILE"
        )
    return Path(path)


def parse_key_file(text: str) -> list[tuple[str, str]]:
    """Parses key file text into ``(name, value)`` pairs, as the Rust side
    does: blank lines and ``#`` comments skipped, an optional ``export``
    prefix, one pair of quotes around a value allowed; only the
    ``SIGNET_SIGNING_*`` variables, ``SIGNET_DEV``, ``SIGNET_MASTER_KEY`` and
    ``SIGNET_MASTER_KEY_PREVIOUS``, each once. Errors name the line and the variable, never a value."""
    known = set(VARIABLES) | {MASTER_KEY_VAR, MASTER_KEY_PREVIOUS_VAR}
    out: list[tuple[str, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        if "=" not in line:
            raise ConfigError(
                f"line {number} is not NAME=value; a key file holds lines like the ones "
                "`signet keys generate` prints"
            )
        name, value = line.split("=", 1)
        name = name.strip()
        if name not in known:
            raise ConfigError(
                f"line {number}: {quote(name[:64])} is not a variable a key file may hold; "
                f"use the SIGNET_SIGNING_* variables and {MASTER_KEY_VAR}"
            )
        if any(n == name for n, _ in out):
            raise ConfigError(f"line {number}: {name} is given twice; keep one line")
        value = value.strip()
        for q in ('"', "'"):
            if len(value) >= 2 and value.startswith(q) and value.endswith(q):
                value = value[1:-1]
                break
        if any(c in "\"'" or c.isspace() for c in value):
            raise ConfigError(
                f"line {number}: the value of {name} holds a quote or a space; write it as "
                f"{name}=value with nothing around the value"
            )
        out.append((name, value))
    return out


@dataclass(repr=False)
class LoadedKeys:
    """A process's keys and where they came from."""

    #: The signing configuration (ring, required, dev, its warnings).
    signing: SigningConfig
    #: ``environment``, ``file`` or ``nothing`` (dev mode without keys),
    #: or ``unsigned`` when asked for.
    source: str
    #: The key file read, if one was.
    path: Path | None = None
    #: Things to fix that do not stop the process (a ``SIGNET_…`` variable
    #: the SDK does not read, a key file others can read, SIGNET_KEYS_FILE
    #: shadowed by variables). Log them at WARNING, with ``signing.warnings``.
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Where the keys came from, for a start-up line (no secrets)."""
        if self.source == "file":
            return f"keys from {self.path}"
        if self.source == "environment":
            return "keys from the SIGNET_SIGNING_* variables"
        if self.source == "unsigned":
            return "keys from none (unsigned)"
        return "keys from none (no variables, no key file)"

    def all_warnings(self) -> list[str]:
        """The loader's warnings, then the configuration's."""
        return [*self.warnings, *self.signing.warnings]

    def __repr__(self) -> str:
        return f"LoadedKeys({self.describe()}; {self.signing!r})"


def _read_key_file(path: Path, warnings: list[str]) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
        mode = stat.S_IMODE(path.stat().st_mode)
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ConfigError(f"cannot read the key file {path}: {why}") from None
    if os.name == "posix" and mode & 0o077:
        warnings.append(
            f"the key file {path} can be read by other users (mode {mode:04o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        return parse_key_file(text)
    except ConfigError as e:
        raise ConfigError(f"the key file {path}: {e}") from None


def load_keys(
    environ: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    *,
    unsigned: bool = False,
) -> LoadedKeys:
    """Loads the signing configuration by the rule in this module's
    documentation. ``environ`` defaults to ``os.environ``; pass a mapping
    (or pairs) in tests. ``unsigned=True`` reads no keys and turns signing
    off (the ``--unsigned`` of ``signet enqueue``). Raises ConfigError with
    a message that names the file or variable and says what to do. Every
    ``SIGNET_…`` name in ``environ`` the SDK does not read gets a warning
    (in ``warnings``) naming the closest known one."""
    if environ is None:
        env: list[tuple[str, str]] = list(os.environ.items())
    elif isinstance(environ, Mapping):
        env = list(environ.items())
    else:
        env = list(environ)

    def env_get(name: str) -> str | None:
        for key, value in reversed(env):
            if key == name:
                return value.strip() or None
        return None

    names = list(dict.fromkeys(name for name, _ in env))  # each name once, in order
    warnings = unknown_variables(names, KNOWN_VARIABLES)
    if unsigned:
        signing = SigningConfig.from_vars([(VAR_REQUIRED, "false")])
        return LoadedKeys(signing=signing, source="unsigned", warnings=warnings)

    dev = SigningConfig.from_vars([(k, v) for k, v in env if k == VAR_DEV]).dev
    named = env_get(KEYS_FILE_VAR)
    env_has_keys = any(env_get(v) is not None for v in MATERIAL_VARIABLES)
    from_env = [
        (k, v)
        for k, v in env
        if (k.startswith("SIGNET_SIGNING_") or k == VAR_DEV) and v.strip()
    ]

    if env_has_keys:
        if named is not None:
            warnings.append(
                f"both {KEYS_FILE_VAR} and {VAR_KEYS} (or the Ed25519 variables) are set: "
                "the variables win and the file is not read; unset one of them"
            )
        signing = SigningConfig.from_vars(from_env)
        return LoadedKeys(signing=signing, source="environment", warnings=warnings)

    if named is not None:
        path: Path | None = Path(named)
    else:
        database = sqlite_file(env_get(DATABASE_URL_VAR) or DEFAULT_DATABASE_URL)
        path = key_file_beside(database) if database is not None else None

    if path is not None and path.exists():
        lines = _read_key_file(path, warnings)
        from_file = [
            (k, v) for k, v in lines if k not in (MASTER_KEY_VAR, MASTER_KEY_PREVIOUS_VAR)
        ]
        try:
            signing = SigningConfig.from_vars(from_file + from_env)
        except ConfigError as e:
            raise ConfigError(
                f"the key file {path} (with the SIGNET_SIGNING_* variables set here): {e}"
            ) from None
        return LoadedKeys(signing=signing, source="file", path=path, warnings=warnings)

    if named is not None:
        raise ConfigError(
            f"{KEYS_FILE_VAR} names {path}, which does not exist; the SDK reads key files but "
            "never creates one. Point it at the key file of your Signet deployment (beside its "
            f"SQLite database, or the one every node shares), or generate one with "
            f"`signet keys generate > {path}` (and `chmod 600` it)"
        )
    if dev:
        signing = SigningConfig.from_vars(from_env)
        return LoadedKeys(signing=signing, source="nothing", warnings=warnings)
    where = (
        f"there is no key file at {path} (beside the database {DATABASE_URL_VAR} names)"
        if path is not None
        else f"{DATABASE_URL_VAR} names a database with no key file of its own "
        "(PostgreSQL, or an in-memory database)"
    )
    raise ConfigError(
        f"no signing keys: no SIGNET_SIGNING_* key variables are set, {KEYS_FILE_VAR} is not "
        f"set, and {where}. Set {KEYS_FILE_VAR} to the key file your Signet deployment uses "
        "(a SQLite database's is beside it, e.g. ./signet.keys), or set the SIGNET_SIGNING_* "
        "variables (`signet keys generate` prints them); to run unsigned on purpose set "
        "SIGNET_DEV=1"
    )
