//! The key ring (being written).

/// Keys.
#[derive(Debug, Default)]
pub struct KeyRing {}
