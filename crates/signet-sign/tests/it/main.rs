//! Integration tests of `signet-sign`: conformance vectors (loaded as data
//! from `vectors/`), Wycheproof, and property tests.

mod envelope;
mod profiles;
mod properties;
mod standard_webhooks;
mod wycheproof;
