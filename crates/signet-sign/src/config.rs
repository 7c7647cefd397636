//! Signing configuration from the `SIGNET_SIGNING_*` variables (docs/architecture.md §4).
//!
//! [`SigningConfig::from_vars`] takes an iterator of `(name, value)` pairs
//! and never reads the process environment itself, so tests and the TOML
//! layer can feed it whatever they like. Variables it does not read are
//! ignored; [`unknown_variables`] names the mistyped ones (any `SIGNET_…`
//! name no part of the program reads), with the closest known name.
//!
//! | variable | meaning |
//! |---|---|
//! | `SIGNET_SIGNING_ALGORITHM` | `hmac-sha256` or `ed25519`: the algorithm of the active key. Default: `hmac-sha256` when HMAC keys are given, else `ed25519` |
//! | `SIGNET_SIGNING_KEYS` | HMAC keys, `id:base64,id:base64` (16 bytes at least, 32 recommended; `whsec_` prefix allowed) |
//! | `SIGNET_SIGNING_PRIVATE_KEYS` | Ed25519 private keys, `id:base64` of the 32-byte seed or 64 bytes seed ‖ public (`whsk_` allowed) |
//! | `SIGNET_SIGNING_PUBLIC_KEYS` | Ed25519 public keys, `id:base64` of 32 bytes (`whpk_` allowed). A private key with the same id must match it |
//! | `SIGNET_SIGNING_ACTIVE_KEY` | id of the key that signs. May be left out when exactly one key of the algorithm can sign |
//! | `SIGNET_SIGNING_OVERLAP_KEYS` | comma list of ids that sign beside the active key during a rotation overlap |
//! | `SIGNET_SIGNING_REQUIRED` | `true`/`1` or `false`/`0`: reject unsigned work. Default: on when keys exist |
//! | `SIGNET_DEV` | only `1` or `true` (exactly) turn dev mode on (verification off); anything else leaves it off, with a warning unless it is `0` or `false` |
//!
//! Errors name the variable and the key id, never the secret.

use std::collections::HashMap;

use crate::b64;
use crate::error::{Error, Result};
use crate::key::{
    Algorithm, Ed25519PublicKey, Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial,
};
use crate::keyring::KeyRing;

/// `SIGNET_SIGNING_ALGORITHM`.
pub const VAR_ALGORITHM: &str = "SIGNET_SIGNING_ALGORITHM";
/// `SIGNET_SIGNING_KEYS` (HMAC).
pub const VAR_KEYS: &str = "SIGNET_SIGNING_KEYS";
/// `SIGNET_SIGNING_ACTIVE_KEY`.
pub const VAR_ACTIVE_KEY: &str = "SIGNET_SIGNING_ACTIVE_KEY";
/// `SIGNET_SIGNING_PUBLIC_KEYS` (Ed25519).
pub const VAR_PUBLIC_KEYS: &str = "SIGNET_SIGNING_PUBLIC_KEYS";
/// `SIGNET_SIGNING_PRIVATE_KEYS` (Ed25519).
pub const VAR_PRIVATE_KEYS: &str = "SIGNET_SIGNING_PRIVATE_KEYS";
/// `SIGNET_SIGNING_OVERLAP_KEYS`.
pub const VAR_OVERLAP_KEYS: &str = "SIGNET_SIGNING_OVERLAP_KEYS";
/// `SIGNET_SIGNING_REQUIRED`.
pub const VAR_REQUIRED: &str = "SIGNET_SIGNING_REQUIRED";
/// `SIGNET_DEV`.
pub const VAR_DEV: &str = "SIGNET_DEV";

/// Every variable [`SigningConfig::from_vars`] reads.
pub const VARIABLES: [&str; 8] = [
    VAR_ALGORITHM,
    VAR_KEYS,
    VAR_ACTIVE_KEY,
    VAR_PUBLIC_KEYS,
    VAR_PRIVATE_KEYS,
    VAR_OVERLAP_KEYS,
    VAR_REQUIRED,
    VAR_DEV,
];

/// `SIGNET_TEST_DATABASE_URL`: the PostgreSQL database the test suites and
/// CI use. No program reads it, but it is set where programs run.
pub const VAR_TEST_DATABASE_URL: &str = "SIGNET_TEST_DATABASE_URL";

/// The prefix every Signet variable starts with.
pub const VAR_PREFIX: &str = "SIGNET_";

/// The variables the Signet programs read through their flags (`signet`
/// and its subcommands, the example worker's `SIGNET_WORKER_…`) and
/// `SIGNET_KEYS_FILE`. Programs often share one environment (a `.env`
/// file, a container spec), so none of them reports another's variable as
/// unknown. Declared where each program declares its flags; this copy is
/// checked against them by `signet`'s and the example worker's tests, so
/// a flag added there without its name here fails a test.
pub const PROGRAM_VARIABLES: [&str; 35] = [
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
];

/// Every `SIGNET_…` variable a Signet program reads or is run beside: the
/// ones this crate declares (signing, `SIGNET_DEV`, the master key and the
/// previous ones), the
/// programs' ([`PROGRAM_VARIABLES`]) and [`VAR_TEST_DATABASE_URL`]. Any
/// other name is reported by [`unknown_variables`].
pub fn shared_variables() -> impl Iterator<Item = &'static str> {
    VARIABLES
        .into_iter()
        .chain([
            crate::sealed::MASTER_KEY_VAR,
            crate::sealed::MASTER_KEY_PREVIOUS_VAR,
            VAR_TEST_DATABASE_URL,
        ])
        .chain(PROGRAM_VARIABLES)
}

/// One warning per `SIGNET_…` name in `names` that is neither in `known`
/// nor among [`shared_variables`], each naming the closest known name
/// (`SIGNET_MASTERKEY` → `SIGNET_MASTER_KEY`). Names without the prefix
/// are not Signet's and pass. The one check of a program's environment:
/// `signet` and the example worker call it once at start.
pub fn unknown_variables<'a, N, K>(names: N, known: K) -> Vec<String>
where
    N: IntoIterator<Item = &'a str>,
    K: IntoIterator<Item = &'a str>,
{
    let mut known: Vec<&str> = known.into_iter().collect();
    for shared in shared_variables() {
        known.push(shared);
    }
    let mut warnings = Vec::new();
    for name in names {
        if !name.starts_with(VAR_PREFIX) || known.contains(&name) {
            continue;
        }
        let closest = known
            .iter()
            .min_by_key(|k| edit_distance(name, k))
            .copied()
            .unwrap_or(VAR_KEYS);
        warnings.push(format!(
            "{name} is not a Signet variable and is ignored; the closest known name is {closest} (`--help` lists the variables this program reads)"
        ));
    }
    warnings
}

/// Levenshtein distance over bytes (variable names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Whether log lines on a stream may carry ANSI colour: only on a terminal,
/// and never when `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>). `no_color` is that variable's value.
pub fn log_colour(stream_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stream_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Shortest HMAC secret accepted for Signet's own keys, in bytes.
pub const MIN_HMAC_SECRET_LEN: usize = 16;
/// HMAC secrets shorter than this get a warning, in bytes.
pub const RECOMMENDED_HMAC_SECRET_LEN: usize = 32;

/// The parsed signing configuration.
#[derive(Debug)]
pub struct SigningConfig {
    /// The keys, with the active key and overlap signers set.
    pub ring: KeyRing,
    /// Reject unsigned work (`SIGNET_SIGNING_REQUIRED`, default on when keys exist).
    pub required: bool,
    /// Dev mode: verification off (`SIGNET_DEV=1|true` only).
    pub dev: bool,
    /// Things that are allowed but should be fixed (short secrets, a
    /// `SIGNET_DEV` value that looks like "yes"). Log them at WARN. The
    /// state itself (signing off, dev mode) is not among them: `required`,
    /// `dev` and [`summary`](Self::summary) say it, and the program says it
    /// once (`signet serve`'s banner). Mistyped variable names are found by
    /// [`unknown_variables`], over every variable a program reads.
    pub warnings: Vec<String>,
}

impl SigningConfig {
    /// Parses the configuration from `(name, value)` pairs. An empty value is
    /// the same as an absent variable; a variable given twice takes the last
    /// value.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut warnings = Vec::new();
        let mut set: HashMap<&'static str, String> = HashMap::new();
        for (name, value) in vars {
            let name = name.as_ref();
            let value = value.as_ref().trim();
            if let Some(known) = VARIABLES.iter().find(|v| **v == name) {
                if value.is_empty() {
                    set.remove(known);
                } else {
                    set.insert(known, value.to_owned());
                }
            }
        }
        let get = |name: &str| set.get(name).map(String::as_str);

        let dev = match get(VAR_DEV) {
            None => false,
            Some("1" | "true") => true,
            Some("0" | "false") => false,
            Some(_) => {
                warnings.push(format!(
                    "{VAR_DEV} is set to a value other than 1 or true, so dev mode stays off; set it to 1 or true to turn it on, or remove it"
                ));
                false
            }
        };

        let algorithm = get(VAR_ALGORITHM)
            .map(|v| {
                v.parse::<Algorithm>().map_err(|_| {
                    Error::config(format!(
                        "{VAR_ALGORITHM} is {v:?}; use \"hmac-sha256\" or \"ed25519\""
                    ))
                })
            })
            .transpose()?;

        // Collect keys: (variable it came from, key).
        let mut keys: Vec<(&'static str, Key)> = Vec::new();
        for (id, secret) in entries(VAR_KEYS, get(VAR_KEYS))? {
            let bytes = decode(VAR_KEYS, &id, strip(&secret, "whsec_"))?;
            if bytes.len() < MIN_HMAC_SECRET_LEN {
                return Err(Error::config(format!(
                    "{VAR_KEYS}: key {:?} is {} bytes; HMAC keys must be at least {MIN_HMAC_SECRET_LEN} bytes (generate one with `signet keys generate`)",
                    id.as_str(),
                    bytes.len()
                )));
            }
            if bytes.len() < RECOMMENDED_HMAC_SECRET_LEN {
                warnings.push(format!(
                    "{VAR_KEYS}: key {:?} is {} bytes; {RECOMMENDED_HMAC_SECRET_LEN} or more are recommended",
                    id.as_str(),
                    bytes.len()
                ));
            }
            let secret = HmacSecret::new(bytes)
                .map_err(|e| Error::config(format!("{VAR_KEYS}: key {:?}: {e}", id.as_str())))?;
            keys.push((VAR_KEYS, Key::new(id, KeyMaterial::Hmac(secret))));
        }

        let mut publics: Vec<(KeyId, Ed25519PublicKey)> = Vec::new();
        for (id, text) in entries(VAR_PUBLIC_KEYS, get(VAR_PUBLIC_KEYS))? {
            let bytes = decode(VAR_PUBLIC_KEYS, &id, strip(&text, "whpk_"))?;
            let public = Ed25519PublicKey::from_bytes(&bytes).map_err(|e| {
                Error::config(format!("{VAR_PUBLIC_KEYS}: key {:?}: {e}", id.as_str()))
            })?;
            if publics.iter().any(|(other, _)| other == &id) {
                return Err(duplicate(&id, VAR_PUBLIC_KEYS, VAR_PUBLIC_KEYS));
            }
            publics.push((id, public));
        }

        let mut privates: Vec<KeyId> = Vec::new();
        for (id, text) in entries(VAR_PRIVATE_KEYS, get(VAR_PRIVATE_KEYS))? {
            let bytes =
                zeroize::Zeroizing::new(decode(VAR_PRIVATE_KEYS, &id, strip(&text, "whsk_"))?);
            let secret = Ed25519SecretKey::from_bytes(&bytes).map_err(|e| {
                Error::config(format!("{VAR_PRIVATE_KEYS}: key {:?}: {e}", id.as_str()))
            })?;
            if let Some((_, public)) = publics.iter().find(|(other, _)| other == &id) {
                if public.to_bytes() != secret.public_key().to_bytes() {
                    return Err(Error::config(format!(
                        "{VAR_PRIVATE_KEYS}: key {:?} does not match the public key of the same id in {VAR_PUBLIC_KEYS}; export both halves of one key pair",
                        id.as_str()
                    )));
                }
            }
            privates.push(id.clone());
            keys.push((
                VAR_PRIVATE_KEYS,
                Key::new(id, KeyMaterial::Ed25519Private(secret)),
            ));
        }
        for (id, public) in publics {
            if !privates.contains(&id) {
                keys.push((
                    VAR_PUBLIC_KEYS,
                    Key::new(id, KeyMaterial::Ed25519Public(public)),
                ));
            }
        }

        // Ids must be unique across variables.
        for (i, (var, key)) in keys.iter().enumerate() {
            if let Some((other_var, _)) = keys[..i].iter().find(|(_, k)| k.id() == key.id()) {
                return Err(duplicate(key.id(), other_var, var));
            }
        }

        let has_hmac = keys
            .iter()
            .any(|(_, k)| k.algorithm() == Algorithm::HmacSha256);
        let algorithm = algorithm.unwrap_or(if has_hmac || keys.is_empty() {
            Algorithm::HmacSha256
        } else {
            Algorithm::Ed25519
        });
        let explicit_algorithm = get(VAR_ALGORITHM).is_some();

        let active = match get(VAR_ACTIVE_KEY) {
            Some(text) => {
                let id = KeyId::new(text).map_err(|_| {
                    Error::config(format!(
                        "{VAR_ACTIVE_KEY} is not a key id (1 to 64 of A-Z a-z 0-9 . _ -); set it to the id of a configured key, not to a key"
                    ))
                })?;
                let Some((_, key)) = keys.iter().find(|(_, k)| k.id() == &id) else {
                    return Err(Error::config(format!(
                        "{VAR_ACTIVE_KEY} is {:?}, which is not among the configured keys ({}); add it to {VAR_KEYS} or {VAR_PRIVATE_KEYS}, or pick another",
                        id.as_str(),
                        describe(&keys)
                    )));
                };
                if !key.can_sign() {
                    return Err(Error::config(format!(
                        "{VAR_ACTIVE_KEY} is {:?}, an Ed25519 public key, which cannot sign; add its private key to {VAR_PRIVATE_KEYS} or unset {VAR_ACTIVE_KEY} for a verify-only setup",
                        id.as_str()
                    )));
                }
                if explicit_algorithm && key.algorithm() != algorithm {
                    return Err(Error::config(format!(
                        "{VAR_ACTIVE_KEY} is {:?}, a {} key, but {VAR_ALGORITHM} is {algorithm}; make them agree",
                        id.as_str(),
                        key.algorithm()
                    )));
                }
                Some(id)
            }
            None => {
                let candidates: Vec<&Key> = keys
                    .iter()
                    .map(|(_, k)| k)
                    .filter(|k| k.can_sign() && k.algorithm() == algorithm)
                    .collect();
                match candidates.as_slice() {
                    [] => None,
                    [one] => Some(one.id().clone()),
                    many => {
                        let ids: Vec<&str> = many.iter().map(|k| k.id().as_str()).collect();
                        return Err(Error::config(format!(
                            "{VAR_ACTIVE_KEY} is not set and {} {algorithm} keys can sign ({}); set it to the one that should sign",
                            many.len(),
                            ids.join(", ")
                        )));
                    }
                }
            }
        };

        if explicit_algorithm
            && !keys.is_empty()
            && !keys.iter().any(|(_, k)| k.algorithm() == algorithm)
        {
            let hint = match algorithm {
                Algorithm::HmacSha256 => VAR_KEYS.to_owned(),
                Algorithm::Ed25519 => format!("{VAR_PRIVATE_KEYS} or {VAR_PUBLIC_KEYS}"),
            };
            return Err(Error::config(format!(
                "{VAR_ALGORITHM} is {algorithm} but no {algorithm} key is configured; add one to {hint}"
            )));
        }

        let overlap = get(VAR_OVERLAP_KEYS).map(str::to_owned);
        let any_keys = !keys.is_empty();
        let mut ring = KeyRing::new(keys.into_iter().map(|(_, k)| k).collect(), active)?;
        if let Some(list) = overlap {
            if ring.active().is_none() {
                return Err(Error::config(format!(
                    "{VAR_OVERLAP_KEYS} is set but there is no active key; set {VAR_ACTIVE_KEY} first"
                )));
            }
            for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                ring.set_also_signs(id, true)
                    .map_err(|e| Error::config(format!("{VAR_OVERLAP_KEYS}: {e}")))?;
            }
        }

        let required = match get(VAR_REQUIRED) {
            None => any_keys,
            Some(v) if v == "1" || v.eq_ignore_ascii_case("true") => true,
            Some(v) if v == "0" || v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(Error::config(format!(
                    "{VAR_REQUIRED} is {v:?}; use true, false, 1 or 0"
                )))
            }
        };
        if required && !any_keys {
            return Err(Error::config(format!(
                "{VAR_REQUIRED} is on but no keys are configured; set {VAR_KEYS} (HMAC) or {VAR_PRIVATE_KEYS}/{VAR_PUBLIC_KEYS} (Ed25519)"
            )));
        }
        Ok(Self {
            ring,
            required,
            dev,
            warnings,
        })
    }
}

impl SigningConfig {
    /// One line for the start-up log, without secrets: `signing on:
    /// hmac-sha256, active key "k2", 2 keys (k1, k2)`, `signing on
    /// (verify only): 1 key (pub1)` or `signing off: …`. Log it at INFO when
    /// `required` is true and at WARN otherwise.
    pub fn summary(&self) -> String {
        let ids: Vec<&str> = self.ring.keys().iter().map(|k| k.id().as_str()).collect();
        let keys = match ids.len() {
            1 => format!("1 key ({})", ids[0]),
            n => format!("{n} keys ({})", ids.join(", ")),
        };
        let dev = if self.dev {
            "; DEV MODE: signatures are not verified"
        } else {
            ""
        };
        match (self.required, self.ring.active()) {
            (false, _) if self.ring.is_empty() => {
                format!("signing off: no keys configured, unsigned work is accepted{dev}")
            }
            (false, _) => format!("signing off ({VAR_REQUIRED}=false): {keys}{dev}"),
            (true, Some(active)) => {
                let overlap: Vec<&str> = self
                    .ring
                    .signers()
                    .iter()
                    .skip(1)
                    .map(|k| k.id().as_str())
                    .collect();
                let overlap = if overlap.is_empty() {
                    String::new()
                } else {
                    format!(", also signing with {}", overlap.join(", "))
                };
                format!(
                    "signing on: {}, active key {:?}{overlap}, {keys}{dev}",
                    active.algorithm(),
                    active.id().as_str()
                )
            }
            (true, None) => format!("signing on (verify only): {keys}{dev}"),
        }
    }
}

/// Splits `id:value,id:value` into validated ids and values. Empty entries
/// (a trailing comma) are skipped. Errors never quote a value.
fn entries(var: &str, list: Option<&str>) -> Result<Vec<(KeyId, String)>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (n, entry) in list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let position = n + 1;
        let Some((id, value)) = entry.split_once(':') else {
            return Err(Error::config(format!(
                "{var}: entry {position} has no ':'; write each key as id:base64, separated by commas"
            )));
        };
        let id = id.trim();
        if id.is_empty() {
            return Err(Error::config(format!(
                "{var}: entry {position} has an empty key id; write it as id:base64"
            )));
        }
        let id =
            KeyId::new(id).map_err(|_| {
                // Not quoted: a malformed "id" may be a secret pasted
                // without its id.
                Error::config(format!(
                    "{var}: entry {position} has an invalid key id (1 to 64 of A-Z a-z 0-9 . _ -); write each key as id:base64"
                ))
            })?;
        let value = value.trim();
        if value.is_empty() {
            return Err(Error::config(format!(
                "{var}: key {:?} has no key material after ':'",
                id.as_str()
            )));
        }
        out.push((id, value.to_owned()));
    }
    Ok(out)
}

fn strip<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.strip_prefix(prefix).unwrap_or(text)
}

fn decode(var: &str, id: &KeyId, text: &str) -> Result<Vec<u8>> {
    b64::decode_key(text).map_err(|why| {
        Error::config(format!(
            "{var}: key {:?} is not valid base64: {why}",
            id.as_str()
        ))
    })
}

fn duplicate(id: &KeyId, first: &str, second: &str) -> Error {
    if first == second {
        Error::config(format!(
            "{first}: key id {:?} is given twice; give each key its own id",
            id.as_str()
        ))
    } else {
        Error::config(format!(
            "key id {:?} is given in both {first} and {second}; give each key its own id",
            id.as_str()
        ))
    }
}

fn describe(keys: &[(&'static str, Key)]) -> String {
    if keys.is_empty() {
        return "none are configured".to_owned();
    }
    let ids: Vec<&str> = keys.iter().map(|(_, k)| k.id().as_str()).collect();
    format!("keys: {}", ids.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::STANDARD;
    use base64::Engine as _;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    fn parse(vars: &[(&str, &str)]) -> Result<SigningConfig> {
        SigningConfig::from_vars(vars.iter().copied())
    }

    /// HMAC keys "old" and "new", "new" active, `overlap` also signing.
    fn rotating(overlap: &str) -> Result<SigningConfig> {
        let keys = format!("old:{},new:{}", b64(&[1; 32]), b64(&[2; 32]));
        parse(&[
            (VAR_KEYS, &keys),
            (VAR_ACTIVE_KEY, "new"),
            (VAR_OVERLAP_KEYS, overlap),
        ])
    }

    fn ed_pair(seed: u8) -> (String, String) {
        let k = Ed25519SecretKey::from_seed(&[seed; 32]).unwrap();
        (b64(&[seed; 32]), b64(&k.public_key().to_bytes()))
    }

    #[test]
    fn hmac_keys_with_active() {
        let keys = format!("k1:{},k2:{}", b64(&[1; 32]), b64(&[2; 32]));
        let cfg = parse(&[(VAR_KEYS, &keys), (VAR_ACTIVE_KEY, "k2")]).unwrap();
        assert_eq!(cfg.ring.active().unwrap().id().as_str(), "k2");
        assert_eq!(cfg.ring.algorithm(), Some(Algorithm::HmacSha256));
        assert!(cfg.required && !cfg.dev && cfg.warnings.is_empty());
        // One key: active by default.
        let one = format!("only:whsec_{}", b64(&[1; 32]));
        let cfg = parse(&[(VAR_KEYS, &one)]).unwrap();
        assert_eq!(cfg.ring.active().unwrap().id().as_str(), "only");
    }

    #[test]
    fn errors_name_the_variable_and_id_never_the_secret() {
        let secret = b64(b"0123456789abcdef0123456789abcdef");
        let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
            (
                vec![
                    (VAR_KEYS, format!("k1:{secret}")),
                    (VAR_ACTIVE_KEY, "k9".into()),
                ],
                "SIGNET_SIGNING_ACTIVE_KEY is \"k9\", which is not among",
            ),
            (
                vec![(VAR_KEYS, format!("k1:{secret}*"))],
                "SIGNET_SIGNING_KEYS: key \"k1\" is not valid base64",
            ),
            (
                vec![(VAR_KEYS, format!("k1:{}", b64(&[1; 15])))],
                "key \"k1\" is 15 bytes; HMAC keys must be at least 16",
            ),
            (
                vec![(VAR_PUBLIC_KEYS, format!("p:{}", b64(&[1; 31])))],
                "SIGNET_SIGNING_PUBLIC_KEYS: key \"p\": Ed25519 public key is 31 bytes",
            ),
            (
                vec![(VAR_PRIVATE_KEYS, format!("s:{}", b64(&[1; 33])))],
                "SIGNET_SIGNING_PRIVATE_KEYS: key \"s\": Ed25519 private key is 33 bytes",
            ),
            (
                vec![(VAR_ALGORITHM, "rsa".into())],
                "SIGNET_SIGNING_ALGORITHM is \"rsa\"",
            ),
            (
                vec![(VAR_KEYS, format!(":{secret}"))],
                "SIGNET_SIGNING_KEYS: entry 1 has an empty key id",
            ),
            (
                vec![(VAR_KEYS, secret.clone())],
                "SIGNET_SIGNING_KEYS: entry 1 has no ':'",
            ),
            (
                vec![(VAR_KEYS, format!("{secret}+/:{secret}"))],
                "SIGNET_SIGNING_KEYS: entry 1 has an invalid key id",
            ),
            (
                vec![(VAR_KEYS, format!("a:{secret},a:{secret}"))],
                "key id \"a\" is given twice",
            ),
            (
                vec![
                    (VAR_KEYS, format!("a:{secret}")),
                    (VAR_PUBLIC_KEYS, format!("a:{}", ed_pair(1).1)),
                ],
                "key id \"a\" is given in both SIGNET_SIGNING_KEYS and SIGNET_SIGNING_PUBLIC_KEYS",
            ),
            (
                vec![
                    (VAR_PRIVATE_KEYS, format!("e:{}", ed_pair(1).0)),
                    (VAR_PUBLIC_KEYS, format!("e:{}", ed_pair(2).1)),
                ],
                "SIGNET_SIGNING_PRIVATE_KEYS: key \"e\" does not match the public key",
            ),
            (
                vec![(VAR_REQUIRED, "true".into())],
                "SIGNET_SIGNING_REQUIRED is on but no keys are configured",
            ),
            (
                vec![
                    (VAR_ALGORITHM, "ed25519".into()),
                    (VAR_KEYS, format!("a:{secret}")),
                ],
                "SIGNET_SIGNING_ALGORITHM is ed25519 but no ed25519 key is configured",
            ),
        ];
        for (vars, expected) in cases {
            let err =
                SigningConfig::from_vars(vars.iter().map(|(k, v)| (*k, v.as_str()))).unwrap_err();
            assert!(err.is_config(), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(expected), "{text:?} lacks {expected:?}");
            assert!(!text.contains(&secret[..12]), "secret leaked: {text}");
        }
    }

    #[test]
    fn summary_names_algorithm_and_ids_only() {
        let cfg = rotating("old").unwrap();
        assert_eq!(
            cfg.summary(),
            "signing on: hmac-sha256, active key \"new\", also signing with old, 2 keys (old, new)"
        );
        let cfg = parse(&[(VAR_PUBLIC_KEYS, &format!("p:{}", ed_pair(3).1))]).unwrap();
        assert_eq!(cfg.summary(), "signing on (verify only): 1 key (p)");
        assert!(parse(&[]).unwrap().summary().starts_with("signing off"));
    }

    #[test]
    fn short_hmac_key_warns() {
        let cfg = parse(&[(VAR_KEYS, &format!("k:{}", b64(&[5; 20])))]).unwrap();
        assert!(cfg.warnings[0].contains("\"k\" is 20 bytes; 32 or more"));
    }

    #[test]
    fn ed25519_private_public_and_verify_only() {
        let (seed, public) = ed_pair(4);
        let cfg = parse(&[
            (VAR_ALGORITHM, "ed25519"),
            (VAR_PRIVATE_KEYS, &format!("e1:{seed}")),
            (VAR_PUBLIC_KEYS, &format!("e1:{public}")),
        ])
        .unwrap();
        assert_eq!(cfg.ring.len(), 1);
        assert_eq!(cfg.ring.algorithm(), Some(Algorithm::Ed25519));
        // Verify-only: public keys alone.
        let cfg = parse(&[(VAR_PUBLIC_KEYS, &format!("e1:whpk_{public}"))]).unwrap();
        assert!(cfg.ring.active().is_none() && cfg.required);
        assert_eq!(cfg.ring.keys()[0].algorithm(), Algorithm::Ed25519);
        // An active key that is public only is refused.
        let err = parse(&[
            (VAR_PUBLIC_KEYS, &format!("e1:{public}")),
            (VAR_ACTIVE_KEY, "e1"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("cannot sign"), "{err}");
    }

    #[test]
    fn dev_mode_only_for_1_or_true() {
        for (value, on) in [
            ("1", true),
            ("true", true),
            ("TRUE", false),
            ("0", false),
            ("yes", false),
            ("on", false),
            ("", false),
        ] {
            let cfg = parse(&[(VAR_DEV, value)]).unwrap();
            assert_eq!(cfg.dev, on, "{value:?}");
            if matches!(value, "yes" | "on" | "TRUE") {
                assert!(cfg
                    .warnings
                    .iter()
                    .any(|w| w.contains("dev mode stays off")));
            }
        }
        let cfg = parse(&[]).unwrap();
        assert!(!cfg.required && cfg.ring.is_empty());
    }

    #[test]
    fn overlap_keys_sign_beside_the_active_one() {
        let cfg = rotating("old").unwrap();
        let ids: Vec<_> = cfg.ring.signers().iter().map(|k| k.id().as_str()).collect();
        assert_eq!(ids, ["new", "old"]);
        let err = rotating("gone").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("SIGNET_SIGNING_OVERLAP_KEYS: key \"gone\""));
    }

    #[test]
    fn several_signing_keys_need_an_active_one_and_typos_warn() {
        let keys = format!("a:{},b:{}", b64(&[1; 32]), b64(&[2; 32]));
        let err = parse(&[(VAR_KEYS, &keys)]).unwrap_err();
        assert!(err
            .to_string()
            .contains("2 hmac-sha256 keys can sign (a, b)"));
        let cfg = parse(&[
            (VAR_KEYS, &keys),
            (VAR_ACTIVE_KEY, "a"),
            ("SIGNET_SIGNING_ACTIV_KEY", "b"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    #[test]
    fn unknown_variables_name_the_closest_known_one() {
        let names = [
            "SIGNET_SIGNING_ACTIV_KEY",
            "SIGNET_MASTERKEY",
            "SIGNET_LISTN",
            "SIGNET_LISTEN",
            "SIGNET_SIGNING_KEYS",
            "SIGNET_TEST_DATABASE_URL",
            "PATH",
            "NO_COLOR",
        ];
        let warnings = unknown_variables(names, ["SIGNET_LISTEN"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("SIGNET_SIGNING_ACTIV_KEY is not a Signet variable"));
        assert!(warnings[0].contains("closest known name is SIGNET_SIGNING_ACTIVE_KEY"));
        assert!(warnings[1].contains("closest known name is SIGNET_MASTER_KEY"));
        assert!(warnings[2].contains("closest known name is SIGNET_LISTEN"));
        assert_eq!(edit_distance("SIGNET_MASTERKEY", "SIGNET_MASTER_KEY"), 1);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        // One program's variables are no alarm in another's environment
        // (a worker started beside `signet serve`, with one `.env` file).
        assert!(
            unknown_variables(["SIGNET_LISTEN", "SIGNET_WORKER_QUEUES"], []).is_empty(),
            "shared variables are known to every program"
        );
    }

    #[test]
    fn states_are_not_warnings() {
        // Signing off and dev mode are what `required`/`dev` say; the
        // program states them once, so they are no warning of their own.
        assert!(parse(&[]).unwrap().warnings.is_empty());
        let dev = parse(&[(VAR_DEV, "1")]).unwrap();
        assert!(dev.dev && dev.warnings.is_empty(), "{:?}", dev.warnings);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
    }
}
