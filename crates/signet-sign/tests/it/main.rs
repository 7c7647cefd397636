//! Integration tests of `signet-sign`: conformance vectors (loaded as data
//! from `vectors/`), Wycheproof, and property tests.

mod envelope;
mod profiles;
mod properties;
#[cfg(feature = "axum")]
mod receiver;
mod sealed;
mod standard_webhooks;
mod wycheproof;

/// Reads a file under the repository's `vectors/` directory.
pub(crate) fn vector_file(name: &str) -> String {
    let path = format!("{}/../../vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}
