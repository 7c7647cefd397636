"""Key-configuration refusals: the variables, and the exact message the
Rust side gives for them. test_config checks the SDK's message;
test_rust_crosscheck runs `signet keys ls` with the same variables and
checks the binary prints the same message."""

from __future__ import annotations

import base64

from signet_sdk import Key


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ed_pair(seed: int) -> tuple[str, str]:
    key = Key.ed25519_private("x", bytes([seed]) * 32)
    assert key.public_bytes is not None
    return b64(bytes([seed]) * 32), b64(key.public_bytes)


SECRET = b64(b"0123456789abcdef0123456789abcdef")
SECRET2 = b64(bytes([2]) * 32)
SEED1, PUB1 = ed_pair(1)
SEED2, PUB2 = ed_pair(2)
IDENTITY = b64(bytes([1]) + bytes(31))  # the identity point: small order
NOT_CANONICAL = b64(bytes([0xED]) + bytes([0xFF]) * 30 + bytes([0x7F]))  # y = p: not reduced

# (test id, variables, message)
REFUSALS: list[tuple[str, dict[str, str], str]] = [
    (
        "active-not-in-ring",
        {"SIGNET_SIGNING_KEYS": f"k1:{SECRET}", "SIGNET_SIGNING_ACTIVE_KEY": "k9"},
        'SIGNET_SIGNING_ACTIVE_KEY is "k9", which is not among the configured keys (keys: k1); '
        "add it to SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PRIVATE_KEYS, or pick another",
    ),
    (
        "active-not-a-key-id",
        {"SIGNET_SIGNING_KEYS": f"k1:{SECRET}", "SIGNET_SIGNING_ACTIVE_KEY": SECRET},
        "SIGNET_SIGNING_ACTIVE_KEY is not a key id (1 to 64 of A-Z a-z 0-9 . _ -); set it to "
        "the id of a configured key, not to a key",
    ),
    (
        "active-public-only",
        {"SIGNET_SIGNING_PUBLIC_KEYS": f"e1:{PUB1}", "SIGNET_SIGNING_ACTIVE_KEY": "e1"},
        'SIGNET_SIGNING_ACTIVE_KEY is "e1", an Ed25519 public key, which cannot sign; add its '
        "private key to SIGNET_SIGNING_PRIVATE_KEYS or unset SIGNET_SIGNING_ACTIVE_KEY for a "
        "verify-only setup",
    ),
    (
        "active-algorithm-disagrees",
        {
            "SIGNET_SIGNING_KEYS": f"h:{SECRET}",
            "SIGNET_SIGNING_PRIVATE_KEYS": f"e:{SEED1}",
            "SIGNET_SIGNING_ACTIVE_KEY": "e",
            "SIGNET_SIGNING_ALGORITHM": "hmac-sha256",
        },
        'SIGNET_SIGNING_ACTIVE_KEY is "e", a ed25519 key, but SIGNET_SIGNING_ALGORITHM is '
        "hmac-sha256; make them agree",
    ),
    (
        "bad-base64",
        {"SIGNET_SIGNING_KEYS": f"k1:{SECRET}*"},
        'SIGNET_SIGNING_KEYS: key "k1" is not valid base64: character 45 is not in the '
        "base64 alphabet",
    ),
    (
        "bad-base64-length",
        {"SIGNET_SIGNING_KEYS": f"k1:{SECRET[:41]}"},
        'SIGNET_SIGNING_KEYS: key "k1" is not valid base64: its length is not a possible '
        "base64 length",
    ),
    (
        "hmac-too-short",
        {"SIGNET_SIGNING_KEYS": f"k1:{b64(bytes([1]) * 15)}"},
        'SIGNET_SIGNING_KEYS: key "k1" is 15 bytes; HMAC keys must be at least 16 bytes '
        "(generate one with `signet keys generate`)",
    ),
    (
        "public-wrong-length",
        {"SIGNET_SIGNING_PUBLIC_KEYS": f"p:{b64(bytes([1]) * 31)}"},
        'SIGNET_SIGNING_PUBLIC_KEYS: key "p": Ed25519 public key is 31 bytes; it must be 32',
    ),
    (
        "public-small-order",
        {"SIGNET_SIGNING_PUBLIC_KEYS": f"p:{IDENTITY}"},
        'SIGNET_SIGNING_PUBLIC_KEYS: key "p": Ed25519 public key is of small order and would '
        "accept forged signatures",
    ),
    (
        "public-not-canonical",
        {"SIGNET_SIGNING_PUBLIC_KEYS": f"p:{NOT_CANONICAL}"},
        'SIGNET_SIGNING_PUBLIC_KEYS: key "p": Ed25519 public key is not canonically encoded '
        "(the point has a shorter, canonical encoding); re-export the key",
    ),
    (
        "private-wrong-length",
        {"SIGNET_SIGNING_PRIVATE_KEYS": f"s:{b64(bytes([1]) * 33)}"},
        'SIGNET_SIGNING_PRIVATE_KEYS: key "s": Ed25519 private key is 33 bytes; it must be 32 '
        "(seed) or 64 (seed ‖ public key)",
    ),
    (
        "private-pair-halves-disagree",
        {"SIGNET_SIGNING_PRIVATE_KEYS": f"s:{b64(bytes([1]) * 32 + bytes([2]) * 32)}"},
        'SIGNET_SIGNING_PRIVATE_KEYS: key "s": Ed25519 key pair\'s public half does not match '
        "its private seed",
    ),
    (
        "unknown-algorithm",
        {"SIGNET_SIGNING_ALGORITHM": "rsa", "SIGNET_SIGNING_KEYS": f"a:{SECRET}"},
        'SIGNET_SIGNING_ALGORITHM is "rsa"; use "hmac-sha256" or "ed25519"',
    ),
    (
        "empty-key-id",
        {"SIGNET_SIGNING_KEYS": f":{SECRET}"},
        "SIGNET_SIGNING_KEYS: entry 1 has an empty key id; write it as id:base64",
    ),
    (
        "no-colon",
        {"SIGNET_SIGNING_KEYS": f"a:{SECRET},{SECRET}"},
        "SIGNET_SIGNING_KEYS: entry 2 has no ':'; write each key as id:base64, separated by "
        "commas",
    ),
    (
        "invalid-key-id",
        {"SIGNET_SIGNING_KEYS": f"{SECRET}+/:{SECRET}"},
        "SIGNET_SIGNING_KEYS: entry 1 has an invalid key id (1 to 64 of A-Z a-z 0-9 . _ -); "
        "write each key as id:base64",
    ),
    (
        "no-material",
        {"SIGNET_SIGNING_KEYS": "k1: "},
        'SIGNET_SIGNING_KEYS: key "k1" has no key material after \':\'',
    ),
    (
        "duplicate-in-one-variable",
        {"SIGNET_SIGNING_KEYS": f"a:{SECRET},a:{SECRET2}"},
        'SIGNET_SIGNING_KEYS: key id "a" is given twice; give each key its own id',
    ),
    (
        "duplicate-public",
        {"SIGNET_SIGNING_PUBLIC_KEYS": f"p:{PUB1},p:{PUB2}"},
        'SIGNET_SIGNING_PUBLIC_KEYS: key id "p" is given twice; give each key its own id',
    ),
    (
        "duplicate-across-variables",
        {"SIGNET_SIGNING_KEYS": f"a:{SECRET}", "SIGNET_SIGNING_PUBLIC_KEYS": f"a:{PUB1}"},
        'key id "a" is given in both SIGNET_SIGNING_KEYS and SIGNET_SIGNING_PUBLIC_KEYS; give '
        "each key its own id",
    ),
    (
        "private-public-mismatch",
        {"SIGNET_SIGNING_PRIVATE_KEYS": f"e:{SEED1}", "SIGNET_SIGNING_PUBLIC_KEYS": f"e:{PUB2}"},
        'SIGNET_SIGNING_PRIVATE_KEYS: key "e" does not match the public key of the same id in '
        "SIGNET_SIGNING_PUBLIC_KEYS; export both halves of one key pair",
    ),
    (
        "several-signers-no-active",
        {"SIGNET_SIGNING_KEYS": f"a:{SECRET},b:{SECRET2}"},
        "SIGNET_SIGNING_ACTIVE_KEY is not set and 2 hmac-sha256 keys can sign (a, b); set it "
        "to the one that should sign",
    ),
    (
        "algorithm-without-key",
        {"SIGNET_SIGNING_ALGORITHM": "ed25519", "SIGNET_SIGNING_KEYS": f"a:{SECRET}"},
        "SIGNET_SIGNING_ALGORITHM is ed25519 but no ed25519 key is configured; add one to "
        "SIGNET_SIGNING_PRIVATE_KEYS or SIGNET_SIGNING_PUBLIC_KEYS",
    ),
    (
        "overlap-without-active",
        {"SIGNET_SIGNING_PUBLIC_KEYS": f"p:{PUB1}", "SIGNET_SIGNING_OVERLAP_KEYS": "p"},
        "SIGNET_SIGNING_OVERLAP_KEYS is set but there is no active key; set "
        "SIGNET_SIGNING_ACTIVE_KEY first",
    ),
    (
        "overlap-unknown-key",
        {
            "SIGNET_SIGNING_KEYS": f"old:{SECRET},new:{SECRET2}",
            "SIGNET_SIGNING_ACTIVE_KEY": "new",
            "SIGNET_SIGNING_OVERLAP_KEYS": "gone",
        },
        'SIGNET_SIGNING_OVERLAP_KEYS: key "gone" is not in the key ring (keys: old, new); it '
        "cannot sign during the overlap",
    ),
    (
        "overlap-public-key",
        {
            "SIGNET_SIGNING_KEYS": f"h:{SECRET}",
            "SIGNET_SIGNING_PUBLIC_KEYS": f"p:{PUB1}",
            "SIGNET_SIGNING_OVERLAP_KEYS": "p",
        },
        'SIGNET_SIGNING_OVERLAP_KEYS: key "p" is an Ed25519 public key and cannot sign during '
        "the overlap; give its private key",
    ),
    (
        "required-not-boolean",
        {"SIGNET_SIGNING_KEYS": f"a:{SECRET}", "SIGNET_SIGNING_REQUIRED": "yes"},
        'SIGNET_SIGNING_REQUIRED is "yes"; use true, false, 1 or 0',
    ),
    (
        "required-without-keys",
        {"SIGNET_SIGNING_REQUIRED": "true", "SIGNET_DEV": "1"},
        "SIGNET_SIGNING_REQUIRED is on but no keys are configured; set SIGNET_SIGNING_KEYS "
        "(HMAC) or SIGNET_SIGNING_PRIVATE_KEYS/SIGNET_SIGNING_PUBLIC_KEYS (Ed25519)",
    ),
]

# (test id, variables, warnings in order): accepted, with these warnings.
WARNINGS: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "short-hmac",
        {"SIGNET_SIGNING_KEYS": f"k:{b64(bytes([5]) * 20)}"},
        ['SIGNET_SIGNING_KEYS: key "k" is 20 bytes; 32 or more are recommended'],
    ),
    (
        "dev-not-one-or-true",
        {"SIGNET_SIGNING_KEYS": f"k:{SECRET}", "SIGNET_DEV": "yes"},
        [
            "SIGNET_DEV is set to a value other than 1 or true, so dev mode stays off; set it "
            "to 1 or true to turn it on, or remove it"
        ],
    ),
    # States, not warnings: the summary says them (the binary says them
    # once in its banner).
    ("dev-on", {"SIGNET_SIGNING_KEYS": f"k:{SECRET}", "SIGNET_DEV": "1"}, []),
    (
        "signing-off",
        {"SIGNET_SIGNING_KEYS": f"k:{SECRET}", "SIGNET_SIGNING_REQUIRED": "false"},
        [],
    ),
]

# (test id, variables, {unknown name: the closest known name}): `load_keys`
# warns "<name> is not a Signet variable and is ignored; the closest known
# name is <closest>" for each, as the binary does (which then adds where
# `--help` lists its variables). The closest names are ones the SDK and the
# binary both read, so both name the same one.
UNKNOWN_VARIABLES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    (
        "signing-typo",
        {"SIGNET_SIGNING_KEYS": f"k:{SECRET}", "SIGNET_SIGNING_ACTIV_KEY": "k"},
        {"SIGNET_SIGNING_ACTIV_KEY": "SIGNET_SIGNING_ACTIVE_KEY"},
    ),
    (
        "shared-and-own-typos",
        {
            "SIGNET_SIGNING_KEYS": f"k:{SECRET}",
            "SIGNET_MASTERKEY": "not-a-key",
            "SIGNET_KEYSFILE": "/nowhere.keys",
            "SIGNET_SIGNING_REQUIRE": "true",
        },
        {
            "SIGNET_MASTERKEY": "SIGNET_MASTER_KEY",
            "SIGNET_KEYSFILE": "SIGNET_KEYS_FILE",
            "SIGNET_SIGNING_REQUIRE": "SIGNET_SIGNING_REQUIRED",
        },
    ),
    (
        "known-ones-pass",
        {
            "SIGNET_SIGNING_KEYS": f"k:{SECRET}",
            "SIGNET_MASTER_KEY": SECRET2,
            "SIGNET_TEST_DATABASE_URL": "postgres://x@localhost/t",
            "SIGNET_DEV": "0",
            # Other programs' variables, from a shared .env file.
            "SIGNET_LISTEN": "127.0.0.1:0",
            "SIGNET_WORKER_QUEUES": "default",
            "NOT_SIGNET_VAR": "1",
            "signet_lower": "1",
        },
        {},
    ),
]


def unknown_warning(name: str, closest: str) -> str:
    return f"{name} is not a Signet variable and is ignored; the closest known name is {closest}"

# (test id, key file text, message after "the key file <path>: ")
KEY_FILE_REFUSALS: list[tuple[str, str, str]] = [
    (
        "not-name-value",
        "# keys\nSIGNET_SIGNING_KEYS\n",
        "line 2 is not NAME=value; a key file holds lines like the ones `signet keys generate` "
        "prints",
    ),
    (
        "unknown-name",
        f"SIGNET_SIGNING_KEYS=a:{SECRET}\nPATH=/bin\n",
        'line 2: "PATH" is not a variable a key file may hold; use the SIGNET_SIGNING_* '
        "variables and SIGNET_MASTER_KEY",
    ),
    (
        "given-twice",
        f"SIGNET_SIGNING_KEYS=a:{SECRET}\n\nexport SIGNET_SIGNING_KEYS=b:{SECRET2}\n",
        "line 3: SIGNET_SIGNING_KEYS is given twice; keep one line",
    ),
    (
        "space-in-value",
        f"SIGNET_SIGNING_KEYS=a:{SECRET} b:{SECRET2}\n",
        "line 1: the value of SIGNET_SIGNING_KEYS holds a quote or a space; write it as "
        "SIGNET_SIGNING_KEYS=value with nothing around the value",
    ),
]
