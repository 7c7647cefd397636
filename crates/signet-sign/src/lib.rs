//! `signet-sign`: keys, key rings, wire formats and verification for Signet.
//!
//! Everything in Signet signs or verifies through this crate. It is pure: no
//! I/O, no async, no `unsafe`. Time is always passed in (`now`, unix seconds)
//! so callers and tests control the clock.
#![warn(missing_docs)]

mod b64;
pub mod batch;
pub mod config;
pub mod envelope;
pub mod error;
pub mod key;
pub mod keyfile;
pub mod keyring;
mod mac;
pub mod profiles;
#[cfg(feature = "axum")]
pub mod receiver;
pub mod replay;
pub mod sealed;
pub mod standard;

pub use config::SigningConfig;
pub use envelope::{verify_batch, EnvelopeCheck, EnvelopeSignature, TaskEnvelope};
pub use error::{Error, Result};
pub use key::{
    Algorithm, Ed25519PublicKey, Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial,
    RawSignature,
};
pub use keyfile::KeyFile;
pub use keyring::KeyRing;
pub use profiles::Profile;
pub use replay::{InMemoryReplayGuard, ReplayGuard};
pub use standard::{HeaderNames, Verified, DEFAULT_TOLERANCE_SECS};
