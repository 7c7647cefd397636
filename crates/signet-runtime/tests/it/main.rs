//! Integration tests (written once the SQLite store lands).
