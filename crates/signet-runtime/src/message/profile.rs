//! How a message's requests are signed: the signature profiles.

use std::fmt;

use serde::{Deserialize, Serialize};
use signet_store::rules::excerpt;

use crate::error::RuntimeError;

/// How a message's requests are signed: the wire format of receivers that
/// already exist. Only `standard` and `svix` work without a target (they
/// sign with the server's key ring); the others need a target's secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureProfile {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    #[default]
    Standard,
    /// Svix: the same scheme with `svix-*` header names.
    Svix,
    /// Stromboli: `X-Stromboli-Timestamp`, `X-Stromboli-Signature`.
    Stromboli,
    /// Krafter: `x-krafter-signature` over the body only.
    Krafter,
    /// GitHub: `X-Hub-Signature-256` over the body only.
    Github,
    /// Stripe: `Stripe-Signature: t=…,v1=…`.
    Stripe,
}

impl SignatureProfile {
    /// Every profile.
    pub const ALL: [SignatureProfile; 6] = [
        SignatureProfile::Standard,
        SignatureProfile::Svix,
        SignatureProfile::Stromboli,
        SignatureProfile::Krafter,
        SignatureProfile::Github,
        SignatureProfile::Stripe,
    ];

    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        self.profile().as_str()
    }

    /// The `signet-sign` profile that signs.
    pub fn profile(self) -> signet_sign::Profile {
        match self {
            SignatureProfile::Standard => signet_sign::Profile::Standard,
            SignatureProfile::Svix => signet_sign::Profile::Svix,
            SignatureProfile::Stromboli => signet_sign::Profile::Stromboli,
            SignatureProfile::Krafter => signet_sign::Profile::Krafter,
            SignatureProfile::Github => signet_sign::Profile::Github,
            SignatureProfile::Stripe => signet_sign::Profile::Stripe,
        }
    }

    /// Whether the server's key ring can sign this profile (no target needed).
    pub fn signs_with_key_ring(self) -> bool {
        matches!(self, SignatureProfile::Standard | SignatureProfile::Svix)
    }

    /// Parses a name; the error lists the valid ones.
    pub fn parse(name: &str) -> Result<Self, RuntimeError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                RuntimeError::field(
                    "signature_profile",
                    format!(
                        "{:?} is not a profile; use one of {}",
                        excerpt(name),
                        names.join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for SignatureProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
