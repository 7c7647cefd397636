//! Compatibility profiles (being written).

/// A wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Standard Webhooks.
    Standard,
}
