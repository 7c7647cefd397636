//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie,
//! kept in memory beside the API key's hash (never the key), its scope and
//! a CSRF token; idle sessions expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "signet_session";
/// A session not used for this long ends (12 hours).
pub(crate) const IDLE_MS: i64 = 12 * 60 * 60 * 1000;
/// Most sessions kept at once; past it the least recently used ends.
const MAX_SESSIONS: usize = 10_000;
/// Random bytes in a session id and in a CSRF token (256 bits).
const TOKEN_BYTES: usize = 32;

/// A fresh random token, URL-safe base64.
pub(crate) fn token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What sessions are stored under: the SHA-256 of the id, so a lookup's
/// timing says nothing about ids that exist.
fn slot(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// One signed-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// The hash of the API key signed in with (what the store keeps).
    pub(crate) key_hash: String,
    /// The token every state-changing form of this session carries.
    pub(crate) csrf: String,
    /// Last used, unix ms.
    last_seen_ms: i64,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Session(redacted)")
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub(crate) fn csrf_matches(&self, presented: Option<&str>) -> bool {
        tokens_match(Some(&self.csrf), presented)
    }
}

/// Every session of this server.
#[derive(Default)]
pub(crate) struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.lock().map_or(0, |s| s.len());
        f.debug_struct("Sessions").field("open", &n).finish()
    }
}

impl Sessions {
    /// Opens a session for the key hashing to `key_hash`; returns its id
    /// (for the cookie only).
    pub(crate) fn open(&self, key_hash: String, now_ms: i64) -> String {
        let id = token();
        let session = Session {
            key_hash,
            csrf: token(),
            last_seen_ms: now_ms,
        };
        if let Ok(mut map) = self.inner.lock() {
            map.retain(|_, s| now_ms - s.last_seen_ms < IDLE_MS);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.last_seen_ms)
                    .map(|(k, _)| *k)
                {
                    map.remove(&oldest);
                }
            }
            map.insert(slot(&id), session);
        }
        id
    }

    /// The live session with this id, marked as used now; an idle one is
    /// ended instead.
    pub(crate) fn touch(&self, id: &str, now_ms: i64) -> Option<Session> {
        let mut map = self.inner.lock().ok()?;
        let key = slot(id);
        let live = map
            .get(&key)
            .is_some_and(|s| now_ms - s.last_seen_ms < IDLE_MS);
        if !live {
            map.remove(&key);
            return None;
        }
        let session = map.get_mut(&key)?;
        session.last_seen_ms = now_ms;
        Some(session.clone())
    }

    /// Ends the session with this id (sign-out, a revoked key).
    pub(crate) fn end(&self, id: &str) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(&slot(id));
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `Set-Cookie` for a session id: HttpOnly, SameSite=Strict, scoped to
/// `/ui`, `Secure` when the browser reached us over TLS.
pub(crate) fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = IDLE_MS / 1000;
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("signet_session=; Path=/ui; Max-Age=0"))
}

/// The cookie that ties a sign-in form to the browser it was shown to.
pub(crate) const SIGN_IN_COOKIE: &str = "signet_sign_in";

/// `Set-Cookie` for a sign-in form's token: only `/ui/sign-in` gets it
/// back, never from another site (`SameSite=Strict`), for an hour. A form
/// posted from elsewhere lacks it, so no site can sign a browser in with
/// a key of its choosing.
pub(crate) fn sign_in_cookie(token: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SIGN_IN_COOKIE}={token}; Path=/ui/sign-in; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("signet_sign_in=; Path=/ui/sign-in; Max-Age=0"))
}

/// Whether two tokens are equal, in constant time; an absent one matches
/// nothing.
pub(crate) fn tokens_match(expected: Option<&str>, presented: Option<&str>) -> bool {
    match (expected, presented) {
        (Some(e), Some(p)) if !e.is_empty() => bool::from(e.as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static(
            "signet_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static("signet_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_end_on_request() {
        let sessions = Sessions::default();
        let id = sessions.open("hash".into(), 0);
        assert_eq!(sessions.touch(&id, IDLE_MS - 1).unwrap().key_hash, "hash");
        // Used at IDLE_MS - 1, so still live one idle period later, less 1.
        assert!(sessions.touch(&id, 2 * IDLE_MS - 2).is_some());
        assert!(sessions.touch(&id, 3 * IDLE_MS).is_none());
        assert!(sessions.touch(&id, 3 * IDLE_MS).is_none());
        let id = sessions.open("hash".into(), 0);
        sessions.end(&id);
        assert!(sessions.touch(&id, 1).is_none());
        assert!(sessions.touch("made-up", 1).is_none());
    }

    #[test]
    fn csrf_tokens_match_only_themselves() {
        let sessions = Sessions::default();
        let id = sessions.open("h".into(), 0);
        let s = sessions.touch(&id, 0).unwrap();
        assert!(s.csrf_matches(Some(&s.csrf.clone())));
        assert!(!s.csrf_matches(None));
        assert!(!s.csrf_matches(Some("")));
        assert!(!s.csrf_matches(Some(&s.csrf[1..])));
        assert!(!format!("{s:?}").contains(&s.csrf));
        assert_ne!(id, s.csrf);
    }

    #[test]
    fn sign_in_tokens_match_only_when_both_are_there() {
        let t = token();
        assert!(tokens_match(Some(&t), Some(&t)));
        assert!(!tokens_match(Some(&t), None));
        assert!(!tokens_match(None, Some(&t)));
        assert!(!tokens_match(Some(""), Some("")));
        assert!(!tokens_match(Some(&t), Some(&token())));
        let set = sign_in_cookie(&t, false);
        let set = set.to_str().unwrap();
        assert!(
            set.contains("Path=/ui/sign-in")
                && set.contains("SameSite=Strict")
                && set.contains("HttpOnly")
        );
    }

    #[test]
    fn cookies_are_found_by_name_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; signet_session=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let set = set_cookie("abc", true);
        let set = set.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/ui",
            "Secure",
            "Max-Age=43200",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie("abc", false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
