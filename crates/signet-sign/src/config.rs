//! Configuration (being written).

/// Signing configuration.
#[derive(Debug, Default)]
pub struct SigningConfig {}
