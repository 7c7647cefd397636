"""Signing configuration from the ``SIGNET_SIGNING_*`` variables (mirrors
``signet-sign``'s ``config.rs``): the same variables, defaults, refusals and
messages. :meth:`SigningConfig.from_vars` never reads the process
environment itself; :func:`signet_sdk.load_keys` does. Variables it does not
read are ignored; :func:`unknown_variables` names the mistyped ones (any
``SIGNET_…`` name no Signet program reads), with the closest known name.

| variable | meaning |
|---|---|
| ``SIGNET_SIGNING_ALGORITHM`` | ``hmac-sha256`` or ``ed25519``: the algorithm of the active key |
| ``SIGNET_SIGNING_KEYS`` | HMAC keys, ``id:base64,…`` (16 bytes at least, 32 recommended; ``whsec_`` allowed) |
| ``SIGNET_SIGNING_PRIVATE_KEYS`` | Ed25519 private keys, ``id:base64`` of the 32-byte seed or 64 bytes seed ‖ public (``whsk_`` allowed) |
| ``SIGNET_SIGNING_PUBLIC_KEYS`` | Ed25519 public keys, ``id:base64`` of 32 bytes (``whpk_`` allowed) |
| ``SIGNET_SIGNING_ACTIVE_KEY`` | id of the key that signs; may be left out when one key of the algorithm can sign |
| ``SIGNET_SIGNING_OVERLAP_KEYS`` | ids that sign beside the active key during a rotation overlap |
| ``SIGNET_SIGNING_REQUIRED`` | ``true``/``1`` or ``false``/``0``: reject unsigned work (default: on when keys exist) |
| ``SIGNET_DEV`` | only ``1`` or ``true`` turn dev mode on (verification off) |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import _b64
from .errors import ConfigError, SignetError, quote
from .keys import Algorithm, Key, KeyRing, validate_key_id

VAR_ALGORITHM = "SIGNET_SIGNING_ALGORITHM"
VAR_KEYS = "SIGNET_SIGNING_KEYS"
VAR_ACTIVE_KEY = "SIGNET_SIGNING_ACTIVE_KEY"
VAR_PUBLIC_KEYS = "SIGNET_SIGNING_PUBLIC_KEYS"
VAR_PRIVATE_KEYS = "SIGNET_SIGNING_PRIVATE_KEYS"
VAR_OVERLAP_KEYS = "SIGNET_SIGNING_OVERLAP_KEYS"
VAR_REQUIRED = "SIGNET_SIGNING_REQUIRED"
VAR_DEV = "SIGNET_DEV"

#: Every variable :meth:`SigningConfig.from_vars` reads, in the Rust order.
VARIABLES = (
    VAR_ALGORITHM,
    VAR_KEYS,
    VAR_ACTIVE_KEY,
    VAR_PUBLIC_KEYS,
    VAR_PRIVATE_KEYS,
    VAR_OVERLAP_KEYS,
    VAR_REQUIRED,
    VAR_DEV,
)
#: ``SIGNET_MASTER_KEY``: a key file holds it; the SDK reads and ignores it.
MASTER_KEY_VAR = "SIGNET_MASTER_KEY"
#: ``SIGNET_MASTER_KEY_PREVIOUS``: earlier master keys during a rotation; a
#: key file may hold it too, and the SDK reads and ignores it.
MASTER_KEY_PREVIOUS_VAR = "SIGNET_MASTER_KEY_PREVIOUS"
#: ``SIGNET_TEST_DATABASE_URL``: the database Signet's test suites and CI
#: use. No program reads it, but it is set where programs run.
VAR_TEST_DATABASE_URL = "SIGNET_TEST_DATABASE_URL"
#: The prefix every Signet variable starts with.
VAR_PREFIX = "SIGNET_"
#: The variables the Signet programs read through their flags (``signet``
#: and its subcommands, the example worker's ``SIGNET_WORKER_…``) and
#: ``SIGNET_KEYS_FILE``: ``PROGRAM_VARIABLES`` in ``signet-sign``'s
#: ``config.rs``, in its order (a test checks this copy against it).
#: Programs often share one environment (a ``.env`` file, a container
#: spec), so none of them reports another's variable as unknown.
PROGRAM_VARIABLES = (
    "SIGNET_ALLOWED_TARGET_CIDRS",
    "SIGNET_API_KEY",
    "SIGNET_DATABASE_SCHEMA",
    "SIGNET_DATABASE_URL",
    "SIGNET_DELIVERY_CA_FILE",
    "SIGNET_DELIVERY_CONCURRENCY",
    "SIGNET_DELIVERY_TIMEOUT",
    "SIGNET_HEADER_READ_TIMEOUT",
    "SIGNET_IPV6_BUCKET_PREFIX",
    "SIGNET_KEYS_FILE",
    "SIGNET_LEADER_TTL",
    "SIGNET_LISTEN",
    "SIGNET_MAX_BODY_BYTES",
    "SIGNET_METRICS_MAX_LABEL_VALUES",
    "SIGNET_METRICS_TARGET_NAMES",
    "SIGNET_METRICS_TOKEN",
    "SIGNET_NODE_ID",
    "SIGNET_RATE_LIMIT_PER_IP",
    "SIGNET_RATE_LIMIT_PER_KEY",
    "SIGNET_REQUEST_TIMEOUT",
    "SIGNET_RETRY_SCHEDULE",
    "SIGNET_SHUTDOWN_GRACE",
    "SIGNET_TRUSTED_PROXIES",
    "SIGNET_TRUST_X_REAL_IP",
    "SIGNET_UNSIGNED",
    "SIGNET_URL",
    "SIGNET_WORKER_CONCURRENCY",
    "SIGNET_WORKER_HANDLER_TIMEOUT_MS",
    "SIGNET_WORKER_LEADER_TTL_MS",
    "SIGNET_WORKER_LEASE_MS",
    "SIGNET_WORKER_METRICS_LISTEN",
    "SIGNET_WORKER_OUTBOX",
    "SIGNET_WORKER_POLL_MS",
    "SIGNET_WORKER_QUEUES",
    "SIGNET_WORKER_SHUTDOWN_GRACE_MS",
)
#: The variables every Signet program knows (``shared_variables()`` on the
#: Rust side, in its order): the signing ones, ``SIGNET_DEV``, the master
#: key and the previous ones, ``SIGNET_TEST_DATABASE_URL`` and
#: :data:`PROGRAM_VARIABLES`. A program adds its own when it calls
#: :func:`unknown_variables`.
SHARED_VARIABLES = (
    *VARIABLES,
    MASTER_KEY_VAR,
    MASTER_KEY_PREVIOUS_VAR,
    VAR_TEST_DATABASE_URL,
    *PROGRAM_VARIABLES,
)
#: The variables that hold key material: when one is set in the
#: environment, the environment is the key source.
MATERIAL_VARIABLES = (VAR_KEYS, VAR_PRIVATE_KEYS, VAR_PUBLIC_KEYS)

#: Shortest HMAC secret accepted, in bytes.
MIN_HMAC_SECRET_LEN = 16
#: HMAC secrets shorter than this get a warning, in bytes.
RECOMMENDED_HMAC_SECRET_LEN = 32


@dataclass(repr=False)
class SigningConfig:
    """The parsed signing configuration. ``repr`` shows no secret."""

    ring: KeyRing
    #: Reject unsigned work (default on when keys exist).
    required: bool
    #: Dev mode: verification off (``SIGNET_DEV=1|true`` only).
    dev: bool
    #: Allowed but should be fixed (short secrets, a ``SIGNET_DEV`` value
    #: that looks like "yes"); log them at WARNING. The state itself
    #: (signing off, dev mode) is not among them: ``required``, ``dev`` and
    #: :meth:`summary` say it. Mistyped names are found by
    #: :func:`unknown_variables` (:func:`signet_sdk.load_keys` calls it).
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"SigningConfig({self.summary()}; {self.ring!r})"

    @classmethod
    def from_vars(
        cls, variables: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> SigningConfig:
        """Parses a mapping or ``(name, value)`` pairs. An empty value is the same as an
        absent variable; a variable given twice takes the last value.
        Other names are ignored (see :func:`unknown_variables`)."""
        warnings: list[str] = []
        values: dict[str, str] = {}
        pairs = variables.items() if isinstance(variables, Mapping) else variables
        for name, raw in pairs:
            value = raw.strip()
            if name in VARIABLES:
                if value:
                    values[name] = value
                else:
                    values.pop(name, None)
        get = values.get

        dev_value = get(VAR_DEV)
        dev = dev_value in ("1", "true")
        if dev_value is not None and dev_value not in ("1", "true", "0", "false"):
            warnings.append(
                f"{VAR_DEV} is set to a value other than 1 or true, so dev mode stays off; "
                "set it to 1 or true to turn it on, or remove it"
            )

        algorithm_text = get(VAR_ALGORITHM)
        algorithm: Algorithm | None = None
        if algorithm_text is not None:
            try:
                algorithm = Algorithm.parse(algorithm_text)
            except ConfigError:
                raise ConfigError(
                    f'{VAR_ALGORITHM} is {quote(algorithm_text)}; use "hmac-sha256" or "ed25519"'
                ) from None

        keys: list[tuple[str, Key]] = []
        for key_id, text in _entries(VAR_KEYS, get(VAR_KEYS)):
            data = _decode(VAR_KEYS, key_id, _strip(text, "whsec_"))
            if len(data) < MIN_HMAC_SECRET_LEN:
                raise ConfigError(
                    f"{VAR_KEYS}: key {quote(key_id)} is {len(data)} bytes; HMAC keys must be "
                    f"at least {MIN_HMAC_SECRET_LEN} bytes (generate one with `signet keys generate`)"
                )
            if len(data) < RECOMMENDED_HMAC_SECRET_LEN:
                warnings.append(
                    f"{VAR_KEYS}: key {quote(key_id)} is {len(data)} bytes; "
                    f"{RECOMMENDED_HMAC_SECRET_LEN} or more are recommended"
                )
            keys.append((VAR_KEYS, Key.hmac(key_id, data)))

        publics: list[tuple[str, Key]] = []
        for key_id, text in _entries(VAR_PUBLIC_KEYS, get(VAR_PUBLIC_KEYS)):
            data = _decode(VAR_PUBLIC_KEYS, key_id, _strip(text, "whpk_"))
            try:
                public = Key.ed25519_public(key_id, data)
            except ConfigError as e:
                raise ConfigError(f"{VAR_PUBLIC_KEYS}: key {quote(key_id)}: {e}") from None
            if any(other == key_id for other, _ in publics):
                raise _duplicate(key_id, VAR_PUBLIC_KEYS, VAR_PUBLIC_KEYS)
            publics.append((key_id, public))

        privates: list[str] = []
        for key_id, text in _entries(VAR_PRIVATE_KEYS, get(VAR_PRIVATE_KEYS)):
            data = _decode(VAR_PRIVATE_KEYS, key_id, _strip(text, "whsk_"))
            try:
                private = Key.ed25519_private(key_id, data)
            except ConfigError as e:
                raise ConfigError(f"{VAR_PRIVATE_KEYS}: key {quote(key_id)}: {e}") from None
            for other, public in publics:
                if other == key_id and public.public_bytes != private.public_bytes:
                    raise ConfigError(
                        f"{VAR_PRIVATE_KEYS}: key {quote(key_id)} does not match the public key "
                        f"of the same id in {VAR_PUBLIC_KEYS}; export both halves of one key pair"
                    )
            privates.append(key_id)
            keys.append((VAR_PRIVATE_KEYS, private))
        for key_id, public in publics:
            if key_id not in privates:
                keys.append((VAR_PUBLIC_KEYS, public))

        for i, (var, key) in enumerate(keys):
            for other_var, earlier in keys[:i]:
                if earlier.id == key.id:
                    raise _duplicate(key.id, other_var, var)

        has_hmac = any(k.algorithm is Algorithm.HMAC_SHA256 for _, k in keys)
        explicit_algorithm = algorithm is not None
        if algorithm is None:
            algorithm = (
                Algorithm.HMAC_SHA256 if (has_hmac or not keys) else Algorithm.ED25519
            )

        active: str | None
        active_text = get(VAR_ACTIVE_KEY)
        if active_text is not None:
            try:
                active = validate_key_id(active_text)
            except ConfigError:
                raise ConfigError(
                    f"{VAR_ACTIVE_KEY} is not a key id (1 to 64 of A-Z a-z 0-9 . _ -); set it "
                    "to the id of a configured key, not to a key"
                ) from None
            found = next((k for _, k in keys if k.id == active), None)
            if found is None:
                raise ConfigError(
                    f"{VAR_ACTIVE_KEY} is {quote(active)}, which is not among the configured "
                    f"keys ({_describe(keys)}); add it to {VAR_KEYS} or {VAR_PRIVATE_KEYS}, "
                    "or pick another"
                )
            if not found.can_sign:
                raise ConfigError(
                    f"{VAR_ACTIVE_KEY} is {quote(active)}, an Ed25519 public key, which cannot "
                    f"sign; add its private key to {VAR_PRIVATE_KEYS} or unset {VAR_ACTIVE_KEY} "
                    "for a verify-only setup"
                )
            if explicit_algorithm and found.algorithm is not algorithm:
                raise ConfigError(
                    f"{VAR_ACTIVE_KEY} is {quote(active)}, a {found.algorithm} key, but "
                    f"{VAR_ALGORITHM} is {algorithm}; make them agree"
                )
        else:
            candidates = [k for _, k in keys if k.can_sign and k.algorithm is algorithm]
            if not candidates:
                active = None
            elif len(candidates) == 1:
                active = candidates[0].id
            else:
                raise ConfigError(
                    f"{VAR_ACTIVE_KEY} is not set and {len(candidates)} {algorithm} keys can "
                    f"sign ({', '.join(k.id for k in candidates)}); set it to the one that "
                    "should sign"
                )

        if explicit_algorithm and keys and not any(k.algorithm is algorithm for _, k in keys):
            hint = (
                VAR_KEYS
                if algorithm is Algorithm.HMAC_SHA256
                else f"{VAR_PRIVATE_KEYS} or {VAR_PUBLIC_KEYS}"
            )
            raise ConfigError(
                f"{VAR_ALGORITHM} is {algorithm} but no {algorithm} key is configured; "
                f"add one to {hint}"
            )

        any_keys = bool(keys)
        ring = KeyRing([k for _, k in keys], active)
        overlap = get(VAR_OVERLAP_KEYS)
        if overlap is not None:
            if ring.active is None:
                raise ConfigError(
                    f"{VAR_OVERLAP_KEYS} is set but there is no active key; "
                    f"set {VAR_ACTIVE_KEY} first"
                )
            for key_id in (s.strip() for s in overlap.split(",")):
                if key_id:
                    try:
                        ring.set_also_signs(key_id, True)
                    except ConfigError as e:
                        raise ConfigError(f"{VAR_OVERLAP_KEYS}: {e}") from None

        required_text = get(VAR_REQUIRED)
        if required_text is None:
            required = any_keys
        elif required_text == "1" or required_text.lower() == "true":
            required = True
        elif required_text == "0" or required_text.lower() == "false":
            required = False
        else:
            raise ConfigError(f"{VAR_REQUIRED} is {quote(required_text)}; use true, false, 1 or 0")
        if required and not any_keys:
            raise ConfigError(
                f"{VAR_REQUIRED} is on but no keys are configured; set {VAR_KEYS} (HMAC) or "
                f"{VAR_PRIVATE_KEYS}/{VAR_PUBLIC_KEYS} (Ed25519)"
            )
        return cls(ring=ring, required=required, dev=dev, warnings=warnings)

    def summary(self) -> str:
        """One line for a start-up log, without secrets (the Rust wording).
        Log it at INFO when ``required`` and at WARNING otherwise."""
        ids = [k.id for k in self.ring.keys]
        keys = f"1 key ({ids[0]})" if len(ids) == 1 else f"{len(ids)} keys ({', '.join(ids)})"
        dev = "; DEV MODE: signatures are not verified" if self.dev else ""
        active = self.ring.active
        if not self.required:
            if not ids:
                return f"signing off: no keys configured, unsigned work is accepted{dev}"
            return f"signing off ({VAR_REQUIRED}=false): {keys}{dev}"
        if active is None:
            return f"signing on (verify only): {keys}{dev}"
        overlap = [k.id for k in self.ring.signers()[1:]]
        also = f", also signing with {', '.join(overlap)}" if overlap else ""
        return f"signing on: {active.algorithm}, active key {quote(active.id)}{also}, {keys}{dev}"


def unknown_variables(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """One warning per ``SIGNET_…`` name in ``names`` that is neither in
    ``known`` nor in :data:`SHARED_VARIABLES`, each naming the closest known
    name (``SIGNET_MASTERKEY`` → ``SIGNET_MASTER_KEY``): the fewest byte
    edits, the first in ``known`` then ``SHARED_VARIABLES`` order on a tie,
    as ``signet-sign``'s ``unknown_variables``. Names without the prefix are
    not Signet's and pass.

    The Rust message goes on with `` (`--help` lists the variables this
    program reads)``; an SDK has no ``--help``, so its message ends at the
    closest name."""
    candidates = [*known, *SHARED_VARIABLES]
    warnings: list[str] = []
    for name in names:
        if not name.startswith(VAR_PREFIX) or name in candidates:
            continue
        closest = min(candidates, key=lambda k: _edit_distance(name, k))
        warnings.append(
            f"{name} is not a Signet variable and is ignored; the closest known name is {closest}"
        )
    return warnings


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over the bytes (variable names are ASCII; a name
    ``os.environ`` could not decode keeps its bytes, and no exception)."""
    x, y = a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")
    row = list(range(len(y) + 1))
    for i, ca in enumerate(x):
        diagonal = row[0]
        row[0] = i + 1
        for j, cb in enumerate(y):
            substitute = diagonal + (ca != cb)
            diagonal = row[j + 1]
            row[j + 1] = min(substitute, row[j] + 1, diagonal + 1)
    return row[len(y)]


def _entries(var: str, value: str | None) -> list[tuple[str, str]]:
    """Splits ``id:value,id:value``; empty entries are skipped. Errors never
    quote a value (a malformed "id" may be a secret pasted without its id)."""
    if value is None:
        return []
    out: list[tuple[str, str]] = []
    position = 0
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        position += 1
        if ":" not in entry:
            raise ConfigError(
                f"{var}: entry {position} has no ':'; write each key as id:base64, "
                "separated by commas"
            )
        key_id, material = entry.split(":", 1)
        key_id = key_id.strip()
        if not key_id:
            raise ConfigError(
                f"{var}: entry {position} has an empty key id; write it as id:base64"
            )
        try:
            validate_key_id(key_id)
        except ConfigError:
            raise ConfigError(
                f"{var}: entry {position} has an invalid key id (1 to 64 of A-Z a-z 0-9 . _ -); "
                "write each key as id:base64"
            ) from None
        material = material.strip()
        if not material:
            raise ConfigError(f"{var}: key {quote(key_id)} has no key material after ':'")
        out.append((key_id, material))
    return out


def _strip(text: str, prefix: str) -> str:
    return text[len(prefix):] if text.startswith(prefix) else text


def _decode(var: str, key_id: str, text: str) -> bytes:
    try:
        return _b64.decode_key(text)
    except _b64.Base64Error as why:
        raise ConfigError(f"{var}: key {quote(key_id)} is not valid base64: {why}") from None


def _duplicate(key_id: str, first: str, second: str) -> SignetError:
    if first == second:
        return ConfigError(
            f"{first}: key id {quote(key_id)} is given twice; give each key its own id"
        )
    return ConfigError(
        f"key id {quote(key_id)} is given in both {first} and {second}; "
        "give each key its own id"
    )


def _describe(keys: list[tuple[str, Key]]) -> str:
    if not keys:
        return "none are configured"
    return "keys: " + ", ".join(k.id for _, k in keys)
