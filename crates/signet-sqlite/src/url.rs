//! Database URLs: `sqlite://./signet.db`, `sqlite:///abs/path.db`,
//! `sqlite:relative.db`, a plain path, or `sqlite::memory:`.

use std::path::PathBuf;

use signet_store::StoreError;

/// Where the database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A database file.
    File(PathBuf),
    /// A private in-memory database (tests); gone when the store closes.
    Memory,
}

/// Whether `s` names a SQLite database: it starts with `sqlite:`, or it has
/// no `scheme://` prefix at all (a plain path).
pub fn is_sqlite_url(s: &str) -> bool {
    let lower = s.trim().to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        return true;
    }
    !lower.is_empty() && scheme_of(&lower).is_none()
}

fn scheme_of(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    ok.then_some(scheme)
}

/// Parses a database URL.
pub fn parse_url(url: &str) -> Result<Location, StoreError> {
    let s = url.trim();
    let has_prefix = s
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sqlite:"));
    let rest = if has_prefix {
        s.get(7..).unwrap_or_default()
    } else if let Some(scheme) = scheme_of(s) {
        return Err(StoreError::invalid(format!(
            "database URL {url:?} has scheme {scheme:?}, which the SQLite store does not handle; use sqlite://./signet.db or a file path"
        )));
    } else {
        s
    };
    if rest == ":memory:" {
        return Ok(Location::Memory);
    }
    // `sqlite://./a.db` -> `./a.db`; `sqlite:///abs.db` -> `/abs.db`.
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() {
        return Err(StoreError::invalid(format!(
            "database URL {url:?} names no file; use sqlite://./signet.db"
        )));
    }
    if path.contains('?') || path.contains('#') {
        return Err(StoreError::invalid(format!(
            "database URL {url:?} has query parameters, which are not supported; configure the store with SqliteConfig instead"
        )));
    }
    Ok(Location::File(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let file = |p: &str| Location::File(PathBuf::from(p));
        assert_eq!(
            parse_url("sqlite://./signet.db").unwrap(),
            file("./signet.db")
        );
        assert_eq!(
            parse_url("sqlite:///abs/path.db").unwrap(),
            file("/abs/path.db")
        );
        assert_eq!(
            parse_url("sqlite:relative.db").unwrap(),
            file("relative.db")
        );
        assert_eq!(parse_url("SQLite://x.db").unwrap(), file("x.db"));
        assert_eq!(parse_url("data/x.db").unwrap(), file("data/x.db"));
        assert_eq!(parse_url("/tmp/x.db").unwrap(), file("/tmp/x.db"));
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Location::Memory);
        assert!(parse_url("postgres://u@h/db").is_err());
        assert!(parse_url("sqlite://").is_err());
        assert!(parse_url("").is_err());
        assert!(
            parse_url("sqli\u{e9}:x").is_ok(),
            "multi-byte text does not panic"
        );
        assert!(parse_url("sqlite://x.db?mode=ro").is_err());
    }

    #[test]
    fn recognises_sqlite_urls() {
        assert!(is_sqlite_url("sqlite://./signet.db"));
        assert!(is_sqlite_url("sqlite::memory:"));
        assert!(is_sqlite_url("./signet.db"));
        assert!(!is_sqlite_url("postgres://localhost/signet"));
        assert!(!is_sqlite_url("postgresql://localhost/signet"));
        assert!(!is_sqlite_url(""));
    }
}
