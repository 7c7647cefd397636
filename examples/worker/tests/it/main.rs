//! Integration tests: crash safety.
