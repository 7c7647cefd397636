//! Where a process's signing keys and master key come from: the one loader
//! `signet serve`, `signet enqueue`, `signet keys`, and workers such as
//! `examples/worker` call (docs/keys.md).
//!
//! The rule, in order:
//! 1. `--unsigned` (the caller's [`KeyRequest::unsigned`]): no keys are
//!    read or created; signing is off.
//! 2. Key material in the environment (`SIGNET_SIGNING_KEYS`,
//!    `…_PRIVATE_KEYS` or `…_PUBLIC_KEYS`): the variables are the keys.
//! 3. `SIGNET_KEYS_FILE`, or else the key file beside an embedded
//!    database ([`key_file_beside`]): the file's lines, with any other
//!    signing variable set in the environment winning over the file's line.
//! 4. No file yet and an embedded database file: the file is created
//!    (an HMAC-SHA256 ring with one active key and a master key), mode
//!    0600, atomically and never over an existing file.
//! 5. Otherwise (PostgreSQL, an in-memory database): no keys, which is an
//!    error unless `SIGNET_DEV=1`.
//!
//! `SIGNET_MASTER_KEY` from the environment wins over the file's, and so
//! does `SIGNET_MASTER_KEY_PREVIOUS` (earlier master keys, which still open
//! what they sealed: a master key rotation, docs/keys.md).
//! The environment is passed in, never read here.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use signet_sign::config::{VAR_DEV, VAR_KEYS};
use signet_sign::keyfile::MATERIAL_VARIABLES;
use signet_sign::sealed::{MasterKey, MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR};
use signet_sign::{KeyFile, KeyId, SigningConfig};
use signet_store::Store;

use crate::error::RuntimeError;

/// `SIGNET_KEYS_FILE`: names the key file explicitly (any backend).
pub const KEYS_FILE_VAR: &str = "SIGNET_KEYS_FILE";

/// The extension of a key file beside a database.
pub const KEY_FILE_EXTENSION: &str = "keys";

/// The key file that belongs to the embedded database at `db`: the same
/// path with its extension replaced by `.keys` (`./signet.db` →
/// `./signet.keys`, `jobs.sqlite` → `jobs.keys`, `data` → `data.keys`). A
/// database whose own name ends in `.keys` gets `.keys` appended, so the
/// two never collide.
pub fn key_file_beside(db: &Path) -> PathBuf {
    if db.extension().is_some_and(|e| e == KEY_FILE_EXTENSION) {
        let mut name = db.as_os_str().to_owned();
        name.push(".");
        name.push(KEY_FILE_EXTENSION);
        return PathBuf::from(name);
    }
    db.with_extension(KEY_FILE_EXTENSION)
}

/// What a process asks of [`load_keys`].
#[derive(Debug)]
pub struct KeyRequest<'a> {
    /// The process environment (`std::env::vars()`), or a test's.
    pub env: &'a [(String, String)],
    /// The embedded database file, when the store is one: where a key file
    /// is looked for and created. `None` for PostgreSQL and in-memory
    /// databases, which never get a key file of their own.
    pub database_file: Option<&'a Path>,
    /// `--unsigned`: use no keys at all.
    pub unsigned: bool,
}

/// Where the keys came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `--unsigned`: none were looked for.
    Unsigned,
    /// The `SIGNET_SIGNING_*` variables.
    Environment,
    /// A key file.
    File {
        /// Its path.
        path: PathBuf,
        /// Whether this process created it.
        created: bool,
        /// Whether `SIGNET_KEYS_FILE` named it (else it is beside the database).
        named: bool,
    },
    /// Nowhere: no variables, no file (only with `SIGNET_DEV=1`).
    Nothing,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Unsigned => f.write_str("none (--unsigned)"),
            KeySource::Environment => f.write_str("the SIGNET_SIGNING_* variables"),
            KeySource::File {
                path,
                created,
                named,
            } => {
                write!(f, "{}", path.display())?;
                if *named {
                    write!(f, " ({KEYS_FILE_VAR})")?;
                }
                if *created {
                    f.write_str(" (created now, mode 0600)")?;
                }
                Ok(())
            }
            KeySource::Nothing => f.write_str("none (no variables, no key file)"),
        }
    }
}

/// A process's keys, and where they came from.
#[derive(Debug)]
pub struct LoadedKeys {
    /// The signing configuration.
    pub signing: SigningConfig,
    /// The master key that seals target secrets, if any, carrying the
    /// earlier keys of `SIGNET_MASTER_KEY_PREVIOUS` (they only open).
    pub master_key: Option<MasterKey>,
    /// Where the signing keys came from.
    pub source: KeySource,
    /// Where the master key came from: `SIGNET_MASTER_KEY` or the file.
    pub master_key_source: Option<String>,
    /// The key file this process would edit (`signet keys add…`): the one
    /// read, or the one that would be read when variables did not win.
    pub file: Option<PathBuf>,
    /// Things to fix that do not stop the process (a key file others can
    /// read, `SIGNET_KEYS_FILE` shadowed by variables). Print them as WARN.
    pub warnings: Vec<String>,
}

impl LoadedKeys {
    /// One line for a banner: where the keys come from, without secrets.
    pub fn describe(&self) -> String {
        format!("keys from {}", self.source)
    }
}

fn config_error(e: signet_sign::Error) -> RuntimeError {
    RuntimeError::Config(e.message().to_owned())
}

/// Loads the signing configuration and master key by the rule in this
/// module's documentation, creating the key file of an embedded database
/// when there is none. Errors name the file or variable and say what to do.
pub fn load_keys(request: &KeyRequest<'_>) -> Result<LoadedKeys, RuntimeError> {
    let env = request.env;
    let env_get = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let dev = SigningConfig::from_vars(
        env.iter()
            .filter(|(k, _)| k == VAR_DEV)
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map(|c| c.dev)
    .unwrap_or(false);
    let env_master = env_get(MASTER_KEY_VAR)
        .map(|text| {
            MasterKey::parse(text)
                .map(|k| (k, MASTER_KEY_VAR.to_owned()))
                .map_err(config_error)
        })
        .transpose()?;
    let env_previous = env_get(MASTER_KEY_PREVIOUS_VAR)
        .map(|text| MasterKey::parse_previous(text).map_err(config_error))
        .transpose()?;
    let mut warnings = Vec::new();
    if request.unsigned {
        let signing = SigningConfig::from_vars([("SIGNET_SIGNING_REQUIRED", "false")])
            .map_err(config_error)?;
        let (master_key, master_key_source) = env_master.unzip();
        let master_key = with_previous(master_key, env_previous)?;
        return Ok(LoadedKeys {
            signing,
            master_key,
            source: KeySource::Unsigned,
            master_key_source,
            file: None,
            warnings,
        });
    }
    let named = env_get(KEYS_FILE_VAR).map(PathBuf::from);
    let path = named
        .clone()
        .or_else(|| request.database_file.map(key_file_beside));
    let env_has_keys = MATERIAL_VARIABLES.iter().any(|v| env_get(v).is_some());

    let (file, source) = if env_has_keys {
        if named.is_some() {
            warnings.push(format!(
                "both {KEYS_FILE_VAR} and {VAR_KEYS} (or the Ed25519 variables) are set: the variables win and only the file's {MASTER_KEY_VAR} is used; unset one of them"
            ));
        }
        let file = match &path {
            Some(p) if p.exists() => read_key_file(p, &mut warnings)?.without_signing(),
            _ => KeyFile::empty(),
        };
        (file, KeySource::Environment)
    } else {
        match &path {
            Some(p) if p.exists() => (
                read_key_file(p, &mut warnings)?,
                KeySource::File {
                    path: p.clone(),
                    created: false,
                    named: named.is_some(),
                },
            ),
            Some(p) if request.database_file.is_some() => {
                let (file, created) = create_key_file(p)?;
                (
                    file,
                    KeySource::File {
                        path: p.clone(),
                        created,
                        named: named.is_some(),
                    },
                )
            }
            Some(p) => {
                return Err(RuntimeError::Config(format!(
                    "{KEYS_FILE_VAR} names {}, which does not exist; Signet creates key files only beside an embedded (SQLite) database. Copy the key file every node shares there, or generate one with `signet keys generate > {}` (and `chmod 600` it)",
                    p.display(),
                    p.display()
                )))
            }
            None if dev => (KeyFile::empty(), KeySource::Nothing),
            None => {
                return Err(RuntimeError::Config(format!(
                    "no signing keys: this store has no key file of its own (PostgreSQL, or an in-memory database), and every node must be given the same keys. Set {KEYS_FILE_VAR} to a key file, or set the SIGNET_SIGNING_* variables (`signet keys generate` prints them); to run unsigned on purpose pass --unsigned or set SIGNET_DEV=1"
                )))
            }
        }
    };
    // The file's lines first, then the environment's signing variables, so
    // a variable set in the environment wins (empty ones are absent).
    let from_env = env
        .iter()
        .filter(|(k, _)| k.starts_with("SIGNET_SIGNING_") || k == VAR_DEV)
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let from_file = file
        .vars()
        .filter(|(k, _)| *k != MASTER_KEY_VAR && *k != MASTER_KEY_PREVIOUS_VAR)
        .map(|(k, v)| -> (&str, &str) { (k, v) });
    let signing =
        SigningConfig::from_vars(from_file.chain(from_env)).map_err(|e| match &source {
            KeySource::File { path, .. } => RuntimeError::Config(format!(
                "the key file {} (with the SIGNET_SIGNING_* variables set here): {}",
                path.display(),
                e.message()
            )),
            _ => config_error(e),
        })?;
    let (master_key, master_key_source) = match env_master {
        Some((key, from)) => (Some(key), Some(from)),
        None => match (file.get(MASTER_KEY_VAR), &path) {
            (Some(text), Some(p)) => {
                let key = MasterKey::parse(text).map_err(|e| {
                    RuntimeError::Config(format!("the key file {}: {}", p.display(), e.message()))
                })?;
                (Some(key), Some(p.display().to_string()))
            }
            _ => (None, None),
        },
    };
    let previous = match env_previous {
        Some(keys) => Some(keys),
        None => match (file.get(MASTER_KEY_PREVIOUS_VAR), &path) {
            (Some(text), Some(p)) => Some(MasterKey::parse_previous(text).map_err(|e| {
                RuntimeError::Config(format!("the key file {}: {}", p.display(), e.message()))
            })?),
            _ => None,
        },
    };
    let master_key = with_previous(master_key, previous)?;
    Ok(LoadedKeys {
        signing,
        master_key,
        source,
        master_key_source,
        file: path,
        warnings,
    })
}

/// The master key with the earlier ones it also opens with; earlier keys
/// without a current one are refused (nothing could be sealed, and a
/// swapped pair of variables would go unnoticed).
fn with_previous(
    master: Option<MasterKey>,
    previous: Option<Vec<MasterKey>>,
) -> Result<Option<MasterKey>, RuntimeError> {
    match (master, previous) {
        (Some(key), Some(previous)) => Ok(Some(key.with_previous(previous))),
        (None, Some(_)) => Err(RuntimeError::Config(format!(
            "{MASTER_KEY_PREVIOUS_VAR} is set but {MASTER_KEY_VAR} is not; set {MASTER_KEY_VAR} to the current master key (the previous keys only open what they sealed)"
        ))),
        (master, None) => Ok(master),
    }
}

/// Why a file holding a secret (`what`: "the key file") should be private,
/// when users other than its owner may read it (Unix permission bits; on
/// other systems nothing is checked).
pub fn shared_secret_file(path: &Path, what: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{what} {} can be read by other users (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, what);
        None
    }
}

/// Reads and parses a key file, warning when others can read it.
pub fn read_key_file(path: &Path, warnings: &mut Vec<String>) -> Result<KeyFile, RuntimeError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        RuntimeError::Config(format!("cannot read the key file {}: {e}", path.display()))
    })?);
    warnings.extend(shared_secret_file(path, "the key file"));
    KeyFile::parse(&text).map_err(|e| {
        RuntimeError::Config(format!("the key file {}: {}", path.display(), e.message()))
    })
}

/// A fresh default key id: `k` + today's date + a random suffix, so two
/// keys made the same day (a rotation) still differ.
pub fn default_key_id() -> KeyId {
    let today = time::OffsetDateTime::now_utc().date();
    let suffix: u16 = rand::random();
    let text = format!(
        "k{:04}{:02}{:02}-{suffix:04x}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    // Invariant: `k`, digits, `-` and hex digits, 15 characters: a valid id.
    KeyId::new(text).expect("a generated key id is valid")
}

/// Creates a new key file at `path`, atomically, without ever replacing
/// one: when another process created it first, that file is read instead.
/// Returns the file and whether this call created it.
fn create_key_file(path: &Path) -> Result<(KeyFile, bool), RuntimeError> {
    let file = KeyFile::generate(&default_key_id());
    let text = file.render();
    match write_file(path, text.as_bytes(), false) {
        Ok(()) => Ok((file, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut warnings = Vec::new();
            Ok((read_key_file(path, &mut warnings)?, false))
        }
        Err(e) => Err(RuntimeError::Config(format!(
            "cannot create the key file {}: {e}; check that its directory exists and is writable, or give keys with {KEYS_FILE_VAR} or the SIGNET_SIGNING_* variables",
            path.display()
        ))),
    }
}

/// Replaces the key file at `path` with `file` (the edits of `signet keys
/// add|activate|retire`), atomically and with mode 0600. The new text must
/// parse to a working signing configuration, or nothing is written.
pub fn save_key_file(path: &Path, file: &KeyFile) -> Result<(), RuntimeError> {
    file.signing_config().map_err(|e| {
        RuntimeError::Config(format!(
            "the edited key file would not load ({}); nothing was written",
            e.message()
        ))
    })?;
    write_file(path, file.render().as_bytes(), true).map_err(|e| {
        RuntimeError::Config(format!("cannot write the key file {}: {e}", path.display()))
    })
}

/// Writes `bytes` to a temporary file (mode 0600) beside `path`, flushes
/// it, then moves it into place: over an existing file when `replace`,
/// else only when `path` does not exist (`AlreadyExists` otherwise).
fn write_file(path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut out = options.open(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        drop(out);
        if replace {
            std::fs::rename(&tmp, path)
        } else {
            // A hard link fails when `path` exists, where a rename would
            // replace it: two processes starting on a new database at once
            // both end up with the one file that won.
            std::fs::hard_link(&tmp, path)
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result?;
    // The new directory entry survives a crash once the directory is synced.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Pending work signed with one key this process's ring lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingKey {
    /// The key id the work is signed with.
    pub key_id: String,
    /// Pending tasks signed with it.
    pub tasks: u64,
    /// Pending messages signed with it.
    pub messages: u64,
}

impl fmt::Display for MissingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pending task(s) and {} pending message(s) are signed with key {:?}, which this process's key ring lacks: they will be dead-lettered signature-invalid/unknown-key when claimed. Put the key back in the ring (the key file or SIGNET_SIGNING_*) and restart; or, if it is gone for good, re-sign them after they die with `signet dlq replay --resign`",
            self.tasks, self.messages, self.key_id
        )
    }
}

/// The key ids pending work is signed with that `signing`'s ring lacks:
/// serve and workers report them at start. Empty when this process does
/// not verify (dev mode, or no keys and signing not required).
pub async fn missing_keys(
    store: &dyn Store,
    signing: &SigningConfig,
) -> Result<Vec<MissingKey>, RuntimeError> {
    if signing.dev || (signing.ring.is_empty() && !signing.required) {
        return Ok(Vec::new());
    }
    let usage = store.pending_by_key().await?;
    // "Not in the ring" is key_status's rule: a signed row with no role.
    Ok(crate::key_status(usage, &signing.ring)
        .into_iter()
        .filter(|k| k.role.is_none())
        .filter_map(|k| {
            Some(MissingKey {
                key_id: k.key_id?,
                tasks: k.tasks,
                messages: k.messages,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn key_files_sit_beside_the_database() {
        for (db, want) in [
            ("./signet.db", "./signet.keys"),
            ("/var/lib/jobs.sqlite", "/var/lib/jobs.keys"),
            ("data", "data.keys"),
            ("odd.keys", "odd.keys.keys"),
        ] {
            assert_eq!(key_file_beside(Path::new(db)), PathBuf::from(want), "{db}");
        }
    }

    #[test]
    fn first_load_creates_a_private_file_and_later_loads_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("signet.db");
        let vars = env(&[]);
        let request = KeyRequest {
            env: &vars,
            database_file: Some(&db),
            unsigned: false,
        };
        let first = load_keys(&request).unwrap();
        let path = dir.path().join("signet.keys");
        assert_eq!(
            first.source,
            KeySource::File {
                path: path.clone(),
                created: true,
                named: false
            }
        );
        assert!(first.signing.required && first.master_key.is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = load_keys(&request).unwrap();
        assert!(matches!(
            again.source,
            KeySource::File { created: false, .. }
        ));
        assert_eq!(
            again.signing.ring.active().unwrap().id(),
            first.signing.ring.active().unwrap().id()
        );
        assert_eq!(
            again.master_key.unwrap().fingerprint(),
            first.master_key.unwrap().fingerprint()
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["signet.keys"]);
    }

    #[test]
    fn creating_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.keys");
        let (mine, created) = create_key_file(&path).unwrap();
        assert!(created);
        let (theirs, created) = create_key_file(&path).unwrap();
        assert!(!created);
        assert_eq!(mine.get(VAR_KEYS), theirs.get(VAR_KEYS));
    }

    #[test]
    fn processes_starting_together_share_one_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.keys");
        let results: Vec<(String, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        let (file, created) = create_key_file(&path).unwrap();
                        (file.get(VAR_KEYS).unwrap().to_owned(), created)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
        assert!(results.iter().all(|(keys, _)| *keys == results[0].0));
    }

    #[test]
    fn a_named_file_is_created_only_for_an_embedded_database() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("elsewhere.keys");
        let db = dir.path().join("signet.db");
        let vars = env(&[("SIGNET_KEYS_FILE", named.to_str().unwrap())]);
        let loaded = load_keys(&KeyRequest {
            env: &vars,
            database_file: Some(&db),
            unsigned: false,
        })
        .unwrap();
        assert!(matches!(
            loaded.source,
            KeySource::File {
                created: true,
                named: true,
                ..
            }
        ));
        assert!(named.exists() && !dir.path().join("signet.keys").exists());
    }

    #[test]
    fn variables_win_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("signet.db");
        let none = env(&[]);
        let from_file = load_keys(&KeyRequest {
            env: &none,
            database_file: Some(&db),
            unsigned: false,
        })
        .unwrap();
        let vars = env(&[
            (
                "SIGNET_SIGNING_KEYS",
                "v1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
            ("SIGNET_SIGNING_ACTIVE_KEY", "v1"),
        ]);
        let loaded = load_keys(&KeyRequest {
            env: &vars,
            database_file: Some(&db),
            unsigned: false,
        })
        .unwrap();
        assert_eq!(loaded.source, KeySource::Environment);
        assert_eq!(loaded.signing.ring.len(), 1);
        assert_eq!(loaded.signing.ring.active().unwrap().id().as_str(), "v1");
        // The master key still comes from the file beside the database.
        assert_eq!(
            loaded.master_key.unwrap().fingerprint(),
            from_file.master_key.unwrap().fingerprint()
        );
    }

    #[test]
    fn previous_master_keys_come_from_the_variable_or_the_file() {
        use base64::Engine as _;
        let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let print = |b: u8| MasterKey::from_bytes([b; 32]).fingerprint();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("signet.db");
        let load = |pairs: &[(&str, &str)]| {
            load_keys(&KeyRequest {
                env: &env(pairs),
                database_file: Some(&db),
                unsigned: false,
            })
        };
        // The variables: the current key seals, the previous ones open.
        let (k1, k2, k3) = (b64(1), b64(2), b64(3));
        let loaded = load(&[
            ("SIGNET_MASTER_KEY", &k2),
            ("SIGNET_MASTER_KEY_PREVIOUS", &format!("{k1},{k3}")),
        ])
        .unwrap();
        let key = loaded.master_key.unwrap();
        assert_eq!(key.fingerprint(), print(2));
        assert_eq!(key.previous_fingerprints(), [print(1), print(3)]);
        // The key file beside the database (created by the first load) may
        // hold the line too.
        let file = key_file_beside(&db);
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str(&format!("SIGNET_MASTER_KEY_PREVIOUS={k1}\n"));
        std::fs::write(&file, text).unwrap();
        let key = load(&[]).unwrap().master_key.unwrap();
        assert_eq!(key.previous_fingerprints(), [print(1)]);
        // The variable wins over the file's line.
        let key = load(&[("SIGNET_MASTER_KEY_PREVIOUS", &k3)])
            .unwrap()
            .master_key
            .unwrap();
        assert_eq!(key.previous_fingerprints(), [print(3)]);
        // A bad value is named, never quoted.
        let err = load(&[("SIGNET_MASTER_KEY_PREVIOUS", "c2VjcmV0")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SIGNET_MASTER_KEY_PREVIOUS decodes to 6 bytes"),
            "{err}"
        );
        assert!(!err.contains("c2VjcmV0"), "{err}");
        // Previous keys without a current one are refused.
        let err = load_keys(&KeyRequest {
            env: &env(&[("SIGNET_MASTER_KEY_PREVIOUS", &k1)]),
            database_file: None,
            unsigned: true,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("SIGNET_MASTER_KEY is not"), "{err}");
    }

    #[test]
    fn without_a_home_for_a_file_keys_must_be_given() {
        let none = env(&[]);
        let err = load_keys(&KeyRequest {
            env: &none,
            database_file: None,
            unsigned: false,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no signing keys") && err.contains("SIGNET_KEYS_FILE"),
            "{err}"
        );
        let dev = env(&[("SIGNET_DEV", "1")]);
        let loaded = load_keys(&KeyRequest {
            env: &dev,
            database_file: None,
            unsigned: false,
        })
        .unwrap();
        assert_eq!(loaded.source, KeySource::Nothing);
        let unsigned = load_keys(&KeyRequest {
            env: &none,
            database_file: None,
            unsigned: true,
        })
        .unwrap();
        assert_eq!(unsigned.source, KeySource::Unsigned);
        assert!(!unsigned.signing.required && unsigned.signing.ring.is_empty());
        // A named file that is missing is not created for PostgreSQL.
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("shared.keys");
        let vars = env(&[("SIGNET_KEYS_FILE", named.to_str().unwrap())]);
        let err = load_keys(&KeyRequest {
            env: &vars,
            database_file: None,
            unsigned: false,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(!named.exists());
    }

    #[test]
    fn a_readable_file_warns_and_a_broken_one_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.keys");
        std::fs::write(&path, "SIGNET_SIGNING_KEYS=k1:short\n").unwrap();
        let vars = env(&[("SIGNET_KEYS_FILE", path.to_str().unwrap())]);
        let err = load_keys(&KeyRequest {
            env: &vars,
            database_file: None,
            unsigned: false,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        std::fs::write(
            &path,
            KeyFile::generate(&default_key_id()).render().as_bytes(),
        )
        .unwrap();
        let loaded = load_keys(&KeyRequest {
            env: &vars,
            database_file: None,
            unsigned: false,
        })
        .unwrap();
        #[cfg(unix)]
        assert!(
            loaded.warnings.iter().any(|w| w.contains("chmod 600")),
            "{:?}",
            loaded.warnings
        );
        assert!(matches!(loaded.source, KeySource::File { named: true, .. }));
    }

    #[tokio::test]
    async fn pending_work_under_a_key_the_ring_lacks_is_named() {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            signet_sqlite::SqliteStore::open("sqlite::memory:", Default::default()).unwrap(),
        );
        let old = KeyFile::generate(&KeyId::new("old").unwrap());
        let producer = crate::Producer::new(
            std::sync::Arc::clone(&store),
            &old.signing_config().unwrap(),
        )
        .unwrap();
        for _ in 0..2 {
            producer
                .enqueue(crate::TaskSpec::new("t", &serde_json::json!({})))
                .await
                .unwrap();
        }
        let new = KeyFile::generate(&KeyId::new("new").unwrap())
            .signing_config()
            .unwrap();
        let missing = missing_keys(store.as_ref(), &new).await.unwrap();
        assert_eq!(
            missing,
            vec![MissingKey {
                key_id: "old".into(),
                tasks: 2,
                messages: 0
            }]
        );
        let line = missing[0].to_string();
        assert!(
            line.starts_with(
                "2 pending task(s) and 0 pending message(s) are signed with key \"old\""
            ),
            "{line}"
        );
        // The ring that has the key, or a process that does not verify, has nothing to say.
        assert!(missing_keys(store.as_ref(), &old.signing_config().unwrap())
            .await
            .unwrap()
            .is_empty());
        let dev = SigningConfig::from_vars([("SIGNET_DEV", "1")]).unwrap();
        assert!(missing_keys(store.as_ref(), &dev).await.unwrap().is_empty());
    }
}
