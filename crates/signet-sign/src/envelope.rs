//! The task envelope `signet.task.v1`: the signed, immutable part of a task.
//!
//! Delivery state (attempt, state, lease, priority, errors) is deliberately
//! not part of it, so retries, lease extensions and replays never need
//! re-signing. The canonical byte layout is specified in
//! `docs/task-envelope.md`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The 14-byte domain-separation tag that starts the canonical bytes.
pub const ENVELOPE_TAG: &[u8; 14] = b"signet.task.v1";

/// Header names that carry signatures and so are never signed themselves.
pub const SIGNATURE_HEADERS: [&str; 2] = ["signet-signature", "signet-signature-key"];

/// The marker written for an absent optional field.
const ABSENT: u32 = 0xFFFF_FFFF;

/// The signed fields of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnvelope {
    /// Task id (`task_…`).
    pub id: String,
    /// Queue name.
    pub queue: String,
    /// Task (handler) name.
    pub name: String,
    /// Arguments: the exact bytes the producer serialised. Never re-serialised.
    pub args: Vec<u8>,
    /// Headers, lower-case names, sorted by name bytes, signature headers excluded.
    /// Build with [`TaskEnvelope::normalise_headers`] to get these rules.
    pub headers: BTreeMap<String, String>,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Not to run before this time, unix milliseconds.
    pub not_before_ms: Option<i64>,
    /// Not to run after this time, unix milliseconds.
    pub expires_at_ms: Option<i64>,
    /// Attempts allowed, the first one included.
    pub max_attempts: u32,
    /// Where to send a signed callback when the task finishes.
    pub callback_url: Option<String>,
}

impl TaskEnvelope {
    /// Lower-cases header names, drops signature headers, and rejects
    /// duplicates (two names equal after lower-casing) and names or values
    /// that are not valid header text.
    pub fn normalise_headers<I, K, V>(headers: I) -> Result<BTreeMap<String, String>>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut out = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(Error::unsupported(format!(
                    "header name {name:?} is not a valid token; use letters, digits and - _ ."
                )));
            }
            let value = value.into();
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Error::unsupported(format!(
                    "header {name:?} has a value with CR, LF or NUL; remove them"
                )));
            }
            if SIGNATURE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            if out.insert(name.clone(), value).is_some() {
                return Err(Error::unsupported(format!(
                    "header {name:?} is given twice (names are case-insensitive); send it once"
                )));
            }
        }
        Ok(out)
    }

    /// The canonical bytes that are signed (see `docs/task-envelope.md`).
    ///
    /// Fails only when a field is longer than 4 GiB − 2 bytes, which cannot be
    /// length-prefixed.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        out.extend_from_slice(ENVELOPE_TAG);
        field(&mut out, self.id.as_bytes())?;
        field(&mut out, self.queue.as_bytes())?;
        field(&mut out, self.name.as_bytes())?;
        field(&mut out, &self.args)?;
        let count = self
            .headers
            .keys()
            .filter(|k| !SIGNATURE_HEADERS.contains(&k.as_str()))
            .count();
        out.extend_from_slice(&u32_len(count)?.to_be_bytes());
        for (name, value) in &self.headers {
            if SIGNATURE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            field(&mut out, name.to_ascii_lowercase().as_bytes())?;
            field(&mut out, value.as_bytes())?;
        }
        field(&mut out, self.created_at_ms.to_string().as_bytes())?;
        optional(
            &mut out,
            self.not_before_ms.map(|v| v.to_string()).as_deref(),
        )?;
        optional(
            &mut out,
            self.expires_at_ms.map(|v| v.to_string()).as_deref(),
        )?;
        field(&mut out, self.max_attempts.to_string().as_bytes())?;
        optional(&mut out, self.callback_url.as_deref())?;
        Ok(out)
    }

    fn encoded_len_hint(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum();
        14 + 4 * 9
            + self.id.len()
            + self.queue.len()
            + self.name.len()
            + self.args.len()
            + headers
            + 64
            + self.callback_url.as_ref().map_or(0, String::len)
    }
}

fn u32_len(len: usize) -> Result<u32> {
    match u32::try_from(len) {
        Ok(n) if n != ABSENT => Ok(n),
        _ => Err(Error::unsupported(format!(
            "a field of {len} bytes is too long to sign; the limit is 4 GiB - 2"
        ))),
    }
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    out.extend_from_slice(&u32_len(bytes.len())?.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn optional(out: &mut Vec<u8>, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => field(out, v.as_bytes()),
        None => {
            out.extend_from_slice(&ABSENT.to_be_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskEnvelope {
        TaskEnvelope {
            id: "task_1".into(),
            queue: "default".into(),
            name: "email.send".into(),
            args: br#"{"to":"a@example.com"}"#.to_vec(),
            headers: TaskEnvelope::normalise_headers([("Tenant", "acme")]).unwrap(),
            created_at_ms: 1_700_000_000_000,
            not_before_ms: None,
            expires_at_ms: Some(1_700_000_060_000),
            max_attempts: 5,
            callback_url: None,
        }
    }

    #[test]
    fn canonical_layout_is_as_documented() {
        let bytes = sample().canonical_bytes().unwrap();
        assert!(bytes.starts_with(b"signet.task.v1\x00\x00\x00\x06task_1"));
        assert!(bytes.ends_with(b"\x00\x00\x00\x015\xff\xff\xff\xff"));
    }

    #[test]
    fn duplicate_headers_are_rejected_and_signature_headers_dropped() {
        let err = TaskEnvelope::normalise_headers([("A", "1"), ("a", "2")]).unwrap_err();
        assert!(err.to_string().contains("given twice"));
        let h =
            TaskEnvelope::normalise_headers([("Signet-Signature", "v1,xx"), ("x", "y")]).unwrap();
        assert_eq!(h.len(), 1);
    }
}
