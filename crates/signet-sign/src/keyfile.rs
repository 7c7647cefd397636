//! The key file's text: the `KEY=value` lines `signet keys generate` prints
//! (the `SIGNET_SIGNING_*` variables) plus `SIGNET_MASTER_KEY`, one a line,
//! with `#` comments and blank lines. Parsing, rendering and the edits of
//! `signet keys add|activate|retire`; no I/O (reading, creating and
//! replacing the file is `signet-runtime`'s `keys` module).
//!
//! ```text
//! # Signet signing keys and master key: keep this file secret (mode 0600).
//! SIGNET_SIGNING_ALGORITHM=hmac-sha256
//! SIGNET_SIGNING_KEYS=k20261206-1a2b:base64…
//! SIGNET_SIGNING_ACTIVE_KEY=k20261206-1a2b
//! SIGNET_MASTER_KEY=base64…
//! ```
//!
//! The same text can be sourced by a shell (`set -a; . ./signet.keys`), so
//! a file and variables are two ways to give the same thing. Errors name
//! the line and the variable, never a value.

use std::fmt;

use zeroize::Zeroizing;

use crate::b64::STANDARD;
use crate::config::{
    SigningConfig, VARIABLES, VAR_ACTIVE_KEY, VAR_ALGORITHM, VAR_KEYS, VAR_OVERLAP_KEYS,
    VAR_PRIVATE_KEYS, VAR_PUBLIC_KEYS,
};
use crate::error::{Error, Result};
use crate::key::{Algorithm, Ed25519SecretKey, HmacSecret, KeyId, KeyMaterial};
use crate::sealed::{MasterKey, MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR};
use base64::Engine as _;

/// Length of generated HMAC secrets, in bytes.
pub const GENERATED_HMAC_LEN: usize = 32;

/// The comment at the top of every key file Signet writes.
pub const HEADER: &str = "\
# Signet signing keys and master key: keep this file secret (mode 0600).
# Every signet command on this store reads it; SIGNET_SIGNING_* variables, when set, win.
# Change it with `signet keys add|activate|retire` (docs/keys.md), not by hand while
# work is pending.
";

/// The variables that hold key material: when any is set in the
/// environment, the environment is the key source and a file's keys are
/// not used.
pub const MATERIAL_VARIABLES: [&str; 3] = [VAR_KEYS, VAR_PRIVATE_KEYS, VAR_PUBLIC_KEYS];

/// The parsed lines of a key file (or of the variables that stand for one),
/// in order. Values are secrets: `Debug` shows only the names.
pub struct KeyFile {
    vars: Vec<(&'static str, Zeroizing<String>)>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field(
                "vars",
                &self.vars.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A name a key file may hold, as the `'static` constant.
fn known(name: &str) -> Option<&'static str> {
    VARIABLES
        .iter()
        .chain([&MASTER_KEY_VAR, &MASTER_KEY_PREVIOUS_VAR])
        .find(|v| **v == name)
        .copied()
}

/// One key in a ring as `signet keys generate` makes it.
pub fn generate_key(algorithm: Algorithm) -> KeyMaterial {
    match algorithm {
        Algorithm::HmacSha256 => KeyMaterial::Hmac(HmacSecret::generate(GENERATED_HMAC_LEN)),
        Algorithm::Ed25519 => KeyMaterial::Ed25519Private(Ed25519SecretKey::generate()),
    }
}

impl KeyFile {
    /// A file with no lines.
    pub fn empty() -> Self {
        Self { vars: Vec::new() }
    }

    /// A new key file: an HMAC-SHA256 ring whose one key, `id`, is active,
    /// and a fresh master key.
    pub fn generate(id: &KeyId) -> Self {
        let mut file = Self::empty();
        file.set(VAR_ALGORITHM, Algorithm::HmacSha256.as_str());
        file.add(id, &generate_key(Algorithm::HmacSha256))
            .expect("an empty file holds no key with this id"); // invariant: the file is empty
        file.set(VAR_ACTIVE_KEY, id.as_str());
        file.set(
            MASTER_KEY_VAR,
            MasterKey::generate().to_base64_for_display().as_str(),
        );
        file
    }

    /// Parses key file text. Blank lines and `#` comments are skipped; a
    /// line may start with `export `; a value may be wrapped in one pair of
    /// quotes. Only the `SIGNET_SIGNING_*` variables, `SIGNET_DEV`,
    /// `SIGNET_MASTER_KEY` and `SIGNET_MASTER_KEY_PREVIOUS` may appear, each
    /// once.
    pub fn parse(text: &str) -> Result<Self> {
        let mut file = Self::empty();
        for (n, line) in text.lines().enumerate() {
            let number = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            let Some((name, value)) = line.split_once('=') else {
                return Err(Error::config(format!(
                    "line {number} is not NAME=value; a key file holds lines like the ones `signet keys generate` prints"
                )));
            };
            let name = name.trim();
            let Some(name) = known(name) else {
                let shown: String = name.chars().take(64).collect();
                return Err(Error::config(format!(
                    "line {number}: {shown:?} is not a variable a key file may hold; use the SIGNET_SIGNING_* variables and {MASTER_KEY_VAR}"
                )));
            };
            if file.get(name).is_some() {
                return Err(Error::config(format!(
                    "line {number}: {name} is given twice; keep one line"
                )));
            }
            let value = value.trim();
            let value = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            // Keys, ids and lists never hold quotes or spaces; refusing them
            // keeps a file and its rendering the same lines.
            if value
                .chars()
                .any(|c| c == '"' || c == '\'' || c.is_whitespace())
            {
                return Err(Error::config(format!(
                    "line {number}: the value of {name} holds a quote or a space; write it as {name}=value with nothing around the value"
                )));
            }
            file.set(name, value);
        }
        Ok(file)
    }

    /// The variables among `vars` a key file may hold (empty values are
    /// absent): a file that stands for a variable-configured deployment.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut file = Self::empty();
        for (name, value) in vars {
            if let Some(name) = known(name.as_ref()) {
                let value = value.as_ref().trim();
                if value.is_empty() {
                    file.remove(name);
                } else {
                    file.set(name, value);
                }
            }
        }
        file
    }

    /// The text to write: [`HEADER`], then one `NAME=value` line each.
    pub fn render(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::from(HEADER));
        for (name, value) in &self.vars {
            out.push_str(name);
            out.push('=');
            out.push_str(value);
            out.push('\n');
        }
        out
    }

    /// The `(name, value)` pairs, in order, for [`SigningConfig::from_vars`].
    /// The values are secrets.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.vars.iter().map(|(n, v)| (*n, v.as_str()))
    }

    /// The value of `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the file holds any key material.
    pub fn has_keys(&self) -> bool {
        MATERIAL_VARIABLES.iter().any(|v| self.get(v).is_some())
    }

    /// Sets `name` (one of the known names) to `value`, in place or at the end.
    fn set(&mut self, name: &'static str, value: &str) {
        let value = Zeroizing::new(value.to_owned());
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }

    fn remove(&mut self, name: &str) {
        self.vars.retain(|(n, _)| *n != name);
    }

    /// Removes every signing line, keeping the master keys: what is left of
    /// a file when the environment gives the keys.
    pub fn without_signing(&self) -> Self {
        Self {
            vars: self
                .vars
                .iter()
                .filter(|(n, _)| *n == MASTER_KEY_VAR || *n == MASTER_KEY_PREVIOUS_VAR)
                .map(|(n, v)| (*n, v.clone()))
                .collect(),
        }
    }

    /// The signing configuration the file gives on its own.
    pub fn signing_config(&self) -> Result<SigningConfig> {
        SigningConfig::from_vars(self.vars())
    }

    /// The ids in a `id:value,…` list variable.
    fn ids_in(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .map(|list| {
                list.split(',')
                    .filter_map(|e| e.split_once(':').map(|(id, _)| id.trim()))
                    .filter(|id| !id.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn holds(&self, id: &str) -> bool {
        MATERIAL_VARIABLES
            .iter()
            .any(|v| self.ids_in(v).contains(&id))
    }

    fn append(&mut self, name: &'static str, entry: &str) {
        let list = match self.get(name) {
            Some(old) if !old.trim().is_empty() => format!("{},{entry}", old.trim_end_matches(',')),
            _ => entry.to_owned(),
        };
        self.set(name, &list);
    }

    /// Drops `id`'s entry from a list variable (`id:value` or plain `id`
    /// entries); an emptied list is removed.
    fn drop_entry(&mut self, name: &'static str, id: &str) {
        let Some(list) = self.get(name) else { return };
        let kept: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .filter(|e| e.split_once(':').map_or(*e, |(i, _)| i.trim()) != id)
            .collect();
        let kept = kept.join(",");
        if kept.is_empty() {
            self.remove(name);
        } else {
            self.set(name, &kept);
        }
    }

    /// Adds a key without making it active: HMAC keys to
    /// `SIGNET_SIGNING_KEYS`, Ed25519 private keys to
    /// `SIGNET_SIGNING_PRIVATE_KEYS` with their public half in
    /// `SIGNET_SIGNING_PUBLIC_KEYS`, public keys to the latter alone.
    pub fn add(&mut self, id: &KeyId, material: &KeyMaterial) -> Result<()> {
        if self.holds(id.as_str()) {
            return Err(Error::config(format!(
                "key id {:?} is already in the ring; pick another --id",
                id.as_str()
            )));
        }
        let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
        match material {
            KeyMaterial::Hmac(secret) => {
                let entry = Zeroizing::new(format!("{id}:{}", b64(secret.secret_bytes())));
                self.append(VAR_KEYS, &entry);
            }
            KeyMaterial::Ed25519Private(secret) => {
                let entry =
                    Zeroizing::new(format!("{id}:{}", b64(secret.secret_bytes().as_slice())));
                self.append(VAR_PRIVATE_KEYS, &entry);
                let public = format!("{id}:{}", b64(&secret.public_key().to_bytes()));
                self.append(VAR_PUBLIC_KEYS, &public);
            }
            KeyMaterial::Ed25519Public(public) => {
                let entry = format!("{id}:{}", b64(&public.to_bytes()));
                self.append(VAR_PUBLIC_KEYS, &entry);
            }
        }
        Ok(())
    }

    /// Makes `id` the active key (and the algorithm its algorithm). With
    /// `overlap`, the key that was active keeps signing beside it
    /// (`SIGNET_SIGNING_OVERLAP_KEYS`); without, the overlap list is
    /// cleared, which is also how an overlap ends. Returns the key that was
    /// active before, if another.
    pub fn activate(&mut self, id: &KeyId, overlap: bool) -> Result<Option<String>> {
        let config = self.signing_config()?;
        let Some(key) = config.ring.get(id.as_str()) else {
            let ids: Vec<&str> = config.ring.keys().iter().map(|k| k.id().as_str()).collect();
            return Err(Error::config(format!(
                "key {:?} is not in the ring ({}); add it first with `signet keys add --id {}`",
                id.as_str(),
                if ids.is_empty() {
                    "no keys".to_owned()
                } else {
                    ids.join(", ")
                },
                id.as_str()
            )));
        };
        if !key.can_sign() {
            return Err(Error::config(format!(
                "key {:?} is an Ed25519 public key, which cannot sign; add its private key",
                id.as_str()
            )));
        }
        let algorithm = key.algorithm();
        let previous = config
            .ring
            .active()
            .map(|k| k.id().as_str().to_owned())
            .filter(|p| p != id.as_str());
        self.set(VAR_ALGORITHM, algorithm.as_str());
        self.set(VAR_ACTIVE_KEY, id.as_str());
        if overlap {
            self.drop_entry(VAR_OVERLAP_KEYS, id.as_str());
            if let Some(previous) = &previous {
                if !self
                    .ids_in_plain(VAR_OVERLAP_KEYS)
                    .contains(&previous.as_str())
                {
                    self.append(VAR_OVERLAP_KEYS, previous);
                }
            }
        } else {
            self.remove(VAR_OVERLAP_KEYS);
        }
        Ok(previous)
    }

    /// The ids of a plain comma list (`SIGNET_SIGNING_OVERLAP_KEYS`).
    fn ids_in_plain(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes key `id` from the ring (and from the overlap list). The
    /// active key cannot be retired: activate another first. Whether work
    /// still needs the key is the caller's question (it needs the store).
    pub fn retire(&mut self, id: &KeyId) -> Result<()> {
        if self.get(VAR_ACTIVE_KEY).map(str::trim) == Some(id.as_str()) {
            return Err(Error::config(format!(
                "key {:?} is the active key; activate another key first (`signet keys activate <id>`)",
                id.as_str()
            )));
        }
        if !self.holds(id.as_str()) {
            return Err(Error::config(format!(
                "key {:?} is not in the ring; `signet keys ls` lists the keys",
                id.as_str()
            )));
        }
        for var in MATERIAL_VARIABLES {
            self.drop_entry(var, id.as_str());
        }
        self.drop_entry(VAR_OVERLAP_KEYS, id.as_str());
        Ok(())
    }

    /// The lines that turn `self` into `after`: `NAME=value` for a changed
    /// or new variable, `unset NAME` for a removed one. For deployments
    /// configured with variables, which `signet keys` cannot edit.
    pub fn changes_to(&self, after: &KeyFile) -> Vec<Zeroizing<String>> {
        let mut out = Vec::new();
        for (name, value) in after.vars() {
            if self.get(name) != Some(value) {
                out.push(Zeroizing::new(format!("{name}={value}")));
            }
        }
        for (name, _) in self.vars() {
            if after.get(name).is_none() {
                out.push(Zeroizing::new(format!("unset {name}")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> KeyId {
        KeyId::new(s).unwrap()
    }

    #[test]
    fn generated_files_parse_back_to_one_active_hmac_key_and_a_master_key() {
        let file = KeyFile::generate(&id("k1"));
        let text = file.render();
        assert!(text.starts_with(HEADER));
        let back = KeyFile::parse(&text).unwrap();
        let config = back.signing_config().unwrap();
        assert_eq!(config.ring.active().unwrap().id().as_str(), "k1");
        assert_eq!(config.ring.algorithm(), Some(Algorithm::HmacSha256));
        assert!(config.required && config.warnings.is_empty());
        MasterKey::parse(back.get(MASTER_KEY_VAR).unwrap()).unwrap();
        // Two generated files never share a secret.
        let other = KeyFile::generate(&id("k1"));
        assert_ne!(other.get(VAR_KEYS), back.get(VAR_KEYS));
        assert_ne!(other.get(MASTER_KEY_VAR), back.get(MASTER_KEY_VAR));
    }

    #[test]
    fn parse_accepts_export_quotes_and_comments() {
        let text = "# c\n\nexport SIGNET_SIGNING_ACTIVE_KEY=\"k1\"\nSIGNET_DEV='0'\n";
        let file = KeyFile::parse(text).unwrap();
        assert_eq!(file.get(VAR_ACTIVE_KEY), Some("k1"));
        assert_eq!(file.get("SIGNET_DEV"), Some("0"));
    }

    #[test]
    fn parse_errors_name_the_line_never_the_value() {
        for (text, want) in [
            ("SIGNET_SIGNING_KEYS", "line 1 is not NAME=value"),
            (
                "SIGNET_SIGNING_KEYS=\"k1:secret-value\"x\"",
                "line 1: the value of SIGNET_SIGNING_KEYS holds a quote",
            ),
            ("\nPATH=/secret-value", "line 2: \"PATH\" is not a variable"),
            (
                "SIGNET_MASTER_KEY=a\nSIGNET_MASTER_KEY=secret-value",
                "line 2: SIGNET_MASTER_KEY is given twice",
            ),
        ] {
            let err = KeyFile::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            assert!(!err.contains("secret-value"), "{err}");
        }
    }

    proptest::proptest! {
        /// Any text parses or is refused with an error; nothing panics, and
        /// what parses renders to text that parses to the same lines.
        #[test]
        fn parse_never_panics_and_round_trips(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        VAR_KEYS, VAR_ACTIVE_KEY, VAR_OVERLAP_KEYS, MASTER_KEY_VAR, "SIGNET_DEV", "PATH", "",
                    ]),
                    "(?s).{0,40}",
                ),
                0..6,
            )
        ) {
            let text: String = lines.iter().map(|(n, v)| format!("{n}={v}\n")).collect();
            if let Ok(file) = KeyFile::parse(&text) {
                let again = KeyFile::parse(&file.render()).unwrap();
                let a: Vec<_> = file.vars().collect();
                let b: Vec<_> = again.vars().collect();
                proptest::prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn debug_shows_names_only() {
        let file = KeyFile::generate(&id("k1"));
        let secret = file
            .get(VAR_KEYS)
            .unwrap()
            .split_once(':')
            .unwrap()
            .1
            .to_owned();
        let debug = format!("{file:?}");
        assert!(
            debug.contains(VAR_KEYS) && !debug.contains(&secret),
            "{debug}"
        );
    }

    #[test]
    fn add_does_not_activate_and_refuses_a_taken_id() {
        let mut file = KeyFile::generate(&id("k1"));
        file.add(&id("k2"), &generate_key(Algorithm::HmacSha256))
            .unwrap();
        file.add(&id("e1"), &generate_key(Algorithm::Ed25519))
            .unwrap();
        let config = file.signing_config().unwrap();
        assert_eq!(config.ring.active().unwrap().id().as_str(), "k1");
        assert_eq!(config.ring.len(), 3);
        assert_eq!(config.ring.signers().len(), 1);
        let err = file
            .add(&id("k2"), &generate_key(Algorithm::HmacSha256))
            .unwrap_err();
        assert!(err.to_string().contains("\"k2\" is already in the ring"));
    }

    #[test]
    fn activate_switches_algorithm_and_overlaps_only_when_asked() {
        let mut file = KeyFile::generate(&id("k1"));
        file.add(&id("e2"), &generate_key(Algorithm::Ed25519))
            .unwrap();
        let previous = file.activate(&id("e2"), true).unwrap();
        assert_eq!(previous.as_deref(), Some("k1"));
        let config = file.signing_config().unwrap();
        assert_eq!(config.ring.active().unwrap().id().as_str(), "e2");
        let signers: Vec<_> = config
            .ring
            .signers()
            .iter()
            .map(|k| k.id().as_str())
            .collect();
        assert_eq!(signers, ["e2", "k1"]);
        assert_eq!(file.get(VAR_ALGORITHM), Some("ed25519"));
        // Activating the active key again without an overlap ends it.
        assert_eq!(file.activate(&id("e2"), false).unwrap(), None);
        assert_eq!(file.get(VAR_OVERLAP_KEYS), None);
        assert_eq!(file.signing_config().unwrap().ring.signers().len(), 1);
        let err = file.activate(&id("nope"), false).unwrap_err().to_string();
        assert!(err.contains("not in the ring (k1, e2)"), "{err}");
    }

    #[test]
    fn retire_removes_every_line_of_the_key_but_never_the_active_one() {
        let mut file = KeyFile::generate(&id("k1"));
        file.add(&id("e2"), &generate_key(Algorithm::Ed25519))
            .unwrap();
        file.activate(&id("e2"), true).unwrap();
        let err = file.retire(&id("e2")).unwrap_err().to_string();
        assert!(err.contains("is the active key"), "{err}");
        file.retire(&id("k1")).unwrap();
        assert_eq!(file.get(VAR_KEYS), None);
        assert_eq!(file.get(VAR_OVERLAP_KEYS), None);
        let config = file.signing_config().unwrap();
        assert_eq!(config.ring.len(), 1);
        assert!(file.retire(&id("k1")).is_err());
    }

    #[test]
    fn changes_name_each_changed_variable() {
        let before = KeyFile::generate(&id("k1"));
        let mut after = KeyFile::parse(&before.render()).unwrap();
        after
            .add(&id("k2"), &generate_key(Algorithm::HmacSha256))
            .unwrap();
        after.activate(&id("k2"), true).unwrap();
        let lines: Vec<String> = before
            .changes_to(&after)
            .iter()
            .map(|l| l.split('=').next().unwrap().to_owned())
            .collect();
        assert_eq!(lines, [VAR_KEYS, VAR_ACTIVE_KEY, VAR_OVERLAP_KEYS]);
        after.activate(&id("k2"), false).unwrap();
        after.retire(&id("k1")).unwrap();
        let mut overlap = KeyFile::parse(&before.render()).unwrap();
        overlap.set(VAR_OVERLAP_KEYS, "x");
        assert!(overlap
            .changes_to(&after)
            .iter()
            .any(|l| l.as_str() == "unset SIGNET_SIGNING_OVERLAP_KEYS"));
    }
}
