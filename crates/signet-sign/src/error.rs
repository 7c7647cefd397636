//! The one error type of `signet-sign`.
//!
//! It is opaque on purpose (like `jiff::Error`): callers ask questions with
//! predicates (`is_mismatch()`, `is_too_old()` …) or take the stable
//! [`Error::reason`] code for a dead-letter detail or a metric label, and show
//! [`std::fmt::Display`] to a person. No message ever contains secret material:
//! constructors take text written by this crate, which never formats a key.

use std::fmt;

/// What went wrong, in categories a caller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No signature (or no signature header, or no timestamp) was present.
    Missing,
    /// A header, signature, timestamp or key was present but not well formed.
    Malformed,
    /// The signature names a key id the ring does not hold.
    UnknownKey,
    /// Well formed, but no signature matched any key.
    Mismatch,
    /// The timestamp is older than the tolerance allows.
    TooOld,
    /// The timestamp is further in the future than the tolerance allows.
    TooNew,
    /// The signature's algorithm is not the algorithm of the key it names.
    AlgorithmMismatch,
    /// Configuration (keys, algorithm, variables) is invalid.
    Config,
    /// An authentic message seen before within the replay window.
    Duplicate,
    /// The input cannot be signed or encoded (for example a duplicate header,
    /// a JSON double where a profile refuses them, a verify-only key asked to sign).
    Unsupported,
}

/// An error from signing, verifying or loading keys.
///
/// Use the predicates to decide what to do, [`Error::reason`] for a stable
/// machine-readable code, and `Display` for a message that says what to fix.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    message: Box<str>,
}

impl Error {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into().into_boxed_str(),
        }
    }

    /// A signature, signature header or timestamp is absent.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(Kind::Missing, message)
    }

    /// Input is present but not well formed.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(Kind::Malformed, message)
    }

    /// The signature names a key the ring does not hold.
    pub fn unknown_key(message: impl Into<String>) -> Self {
        Self::new(Kind::UnknownKey, message)
    }

    /// No signature matched.
    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::new(Kind::Mismatch, message)
    }

    /// The timestamp is too old.
    pub fn too_old(message: impl Into<String>) -> Self {
        Self::new(Kind::TooOld, message)
    }

    /// The timestamp is too far in the future.
    pub fn too_new(message: impl Into<String>) -> Self {
        Self::new(Kind::TooNew, message)
    }

    /// The signature's algorithm is not the key's algorithm.
    pub fn algorithm_mismatch(message: impl Into<String>) -> Self {
        Self::new(Kind::AlgorithmMismatch, message)
    }

    /// Keys or configuration are invalid. The message must name the variable
    /// or key id, never the secret.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::Config, message)
    }

    /// An authentic message that was already accepted within the replay
    /// window (a replay or a duplicate delivery).
    pub fn duplicate(message: impl Into<String>) -> Self {
        Self::new(Kind::Duplicate, message)
    }

    /// The request cannot be carried out as asked (a verify-only key asked to
    /// sign, a duplicate header, a value a profile refuses to encode).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(Kind::Unsupported, message)
    }

    /// No signature was present.
    pub fn is_missing(&self) -> bool {
        self.kind == Kind::Missing
    }

    /// Something was present but not well formed.
    pub fn is_malformed(&self) -> bool {
        self.kind == Kind::Malformed
    }

    /// The key id named by the signature is not in the ring.
    pub fn is_unknown_key(&self) -> bool {
        self.kind == Kind::UnknownKey
    }

    /// The signature did not match.
    pub fn is_mismatch(&self) -> bool {
        self.kind == Kind::Mismatch
    }

    /// The timestamp is older than the tolerance.
    pub fn is_too_old(&self) -> bool {
        self.kind == Kind::TooOld
    }

    /// The timestamp is newer than the tolerance.
    pub fn is_too_new(&self) -> bool {
        self.kind == Kind::TooNew
    }

    /// The timestamp is outside the tolerance window, either way.
    pub fn is_expired(&self) -> bool {
        self.is_too_old() || self.is_too_new()
    }

    /// The algorithm named by the signature is not the key's.
    pub fn is_algorithm_mismatch(&self) -> bool {
        self.kind == Kind::AlgorithmMismatch
    }

    /// Keys or configuration are invalid.
    pub fn is_config(&self) -> bool {
        self.kind == Kind::Config
    }

    /// The message was already accepted within the replay window.
    pub fn is_duplicate(&self) -> bool {
        self.kind == Kind::Duplicate
    }

    /// The operation is not supported for this input or key.
    pub fn is_unsupported(&self) -> bool {
        self.kind == Kind::Unsupported
    }

    /// Whether this error says the signature or its timestamp is bad (as
    /// opposed to a configuration or usage error, or a duplicate of an
    /// authentic message).
    pub fn is_verification(&self) -> bool {
        !matches!(
            self.kind,
            Kind::Config | Kind::Unsupported | Kind::Duplicate
        )
    }

    /// A stable, lower-case, hyphenated code for dead-letter details and
    /// metric labels: `missing`, `malformed`, `unknown-key`, `mismatch`,
    /// `too-old`, `too-new`, `algorithm-mismatch`, `duplicate`, `config`,
    /// `unsupported`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            Kind::Missing => "missing",
            Kind::Malformed => "malformed",
            Kind::UnknownKey => "unknown-key",
            Kind::Mismatch => "mismatch",
            Kind::TooOld => "too-old",
            Kind::TooNew => "too-new",
            Kind::AlgorithmMismatch => "algorithm-mismatch",
            Kind::Config => "config",
            Kind::Duplicate => "duplicate",
            Kind::Unsupported => "unsupported",
        }
    }

    /// The human message alone, without the reason code.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "signet_sign::Error({}: {})", self.reason(), self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_match_constructors() {
        assert!(Error::missing("x").is_missing());
        assert!(Error::malformed("x").is_malformed());
        assert!(Error::unknown_key("x").is_unknown_key());
        assert!(Error::mismatch("x").is_mismatch());
        assert!(Error::too_old("x").is_too_old() && Error::too_old("x").is_expired());
        assert!(Error::too_new("x").is_too_new() && Error::too_new("x").is_expired());
        assert!(Error::algorithm_mismatch("x").is_algorithm_mismatch());
        assert!(Error::config("x").is_config() && !Error::config("x").is_verification());
        assert!(Error::mismatch("x").is_verification());
        assert!(Error::duplicate("x").is_duplicate() && !Error::duplicate("x").is_verification());
        assert_eq!(Error::unknown_key("x").reason(), "unknown-key");
        assert_eq!(Error::mismatch("no match").to_string(), "no match");
    }
}
