//! Console sessions that work on every node: a sealed cookie, nothing kept
//! on the server but the sessions signed out.
//!
//! Several `signet serve` nodes behind a load balancer must each accept a
//! session opened on another. Two designs do that: a session table in the
//! store, or a cookie every node can open. The console uses the cookie: the
//! session (a random session id, the API key's hash — never the key —, a
//! random CSRF token, when it was opened and last used) is serialised and sealed with
//! XChaCha20-Poly1305 ([`MasterKey::seal`]) under a key derived from
//! `SIGNET_MASTER_KEY` ([`MasterKey::derive`]), which every node has. So
//! no request writes to the store to keep a session alive, and a node
//! that never saw the sign-in opens the cookie and checks the CSRF token it
//! carries against the form's.
//!
//! - *Idle expiry*: a session unused for [`IDLE_MS`] ends. Each request to
//!   a session last marked used more than [`RENEW_MS`] ago gets the cookie
//!   re-issued with the new time; the time is inside the sealed payload, so
//!   a browser cannot stretch it.
//! - *Lifetime*: however busy, a session ends [`MAX_LIFETIME_MS`] after
//!   sign-in.
//! - *Revocation*: every request looks the key up in the store again (the
//!   API's lookup, cached for at most [`crate::auth::KEY_CACHE_TTL`]), so
//!   revoking or deleting a key ends its sessions on every node.
//! - *Sign-out* removes the cookie from the browser and records the
//!   session's id in the store ([`signet_store::Store::end_session`]) until
//!   the session's lifetime would have ended it anyway; every console
//!   request looks the id up (one indexed read), so a copy of the cookie
//!   taken earlier is refused on every node from then on. Only sign-outs
//!   are written, never a request; the pruner deletes the rows once past
//!   their expiry. To cut off every session of a key at once, revoke the
//!   key.
//!
//! Without a master key (a server with no targets, tests) the sealing key
//! is random per process and sessions work only on the node that opened
//! them. After a master key rotation, cookies sealed under the previous key
//! still open (it derives too) until they expire.

use std::fmt;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use signet_sign::sealed::MasterKey;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "signet_session";
/// A session not used for this long ends (12 hours).
pub(crate) const IDLE_MS: i64 = 12 * 60 * 60 * 1000;
/// A session ends this long after sign-in, however busy (24 hours).
pub(crate) const MAX_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;
/// A session's cookie is re-issued (marked used now) on a request this long
/// after it was last marked (1 minute), not on every request.
pub(crate) const RENEW_MS: i64 = 60 * 1000;
/// Random bytes in a CSRF token and a sign-in form token (256 bits).
const TOKEN_BYTES: usize = 32;
/// What the derived sealing key is for ([`MasterKey::derive`]).
const KEY_PURPOSE: &[u8] = b"signet console session";
/// The associated data of a sealed session: names the layout, so nothing
/// else sealed under the same key opens as a session.
const SEALED_AAD: &[u8] = b"signet console session v1";
/// Longest cookie value read (a real one is about 300 characters).
const MAX_COOKIE_LEN: usize = 1024;

/// A fresh random token, URL-safe base64.
pub(crate) fn token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One signed-in browser: what its sealed cookie holds.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// A random id, what sign-out records as ended.
    #[serde(rename = "d")]
    pub(crate) id: String,
    /// The hash of the API key signed in with (what the store keeps).
    #[serde(rename = "k")]
    pub(crate) key_hash: String,
    /// The token every state-changing form of this session carries.
    #[serde(rename = "c")]
    pub(crate) csrf: String,
    /// Signed in at, unix ms.
    #[serde(rename = "i")]
    opened_ms: i64,
    /// Last marked used, unix ms.
    #[serde(rename = "s")]
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

    /// When the session ends however busy: what a sign-out is remembered
    /// until.
    pub(crate) fn expires_at_ms(&self) -> i64 {
        self.opened_ms.saturating_add(MAX_LIFETIME_MS)
    }

    fn live_at(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) < IDLE_MS
            && now_ms.saturating_sub(self.opened_ms) < MAX_LIFETIME_MS
    }
}

/// Opens and seals the sessions of this server (and of every node with the
/// same master key).
pub(crate) struct Sessions {
    key: MasterKey,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions sealed under a key derived from `master`; without one,
    /// under a random key of this process (sessions then work only here).
    pub(crate) fn new(master: Option<&MasterKey>) -> Self {
        Self {
            key: master.map_or_else(MasterKey::generate, |m| m.derive(KEY_PURPOSE)),
        }
    }

    /// Opens a session for the key hashing to `key_hash`; returns the
    /// cookie's value.
    pub(crate) fn open(&self, key_hash: String, now_ms: i64) -> String {
        self.seal(&Session {
            id: token(),
            key_hash,
            csrf: token(),
            opened_ms: now_ms,
            last_seen_ms: now_ms,
        })
    }

    fn seal(&self, session: &Session) -> String {
        // A struct of strings and integers always serialises.
        let plain = serde_json::to_vec(session).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.key.seal(&plain, SEALED_AAD))
    }

    /// The live session in a cookie's value: `None` when the value was not
    /// sealed by a node with this master key, was altered, or the session
    /// is idle or past its lifetime.
    pub(crate) fn read(&self, cookie: &str, now_ms: i64) -> Option<Session> {
        if cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cookie)
            .ok()?;
        let plain = self.key.open(&sealed, SEALED_AAD).ok()?;
        let session: Session = serde_json::from_slice(&plain).ok()?;
        session.live_at(now_ms).then_some(session)
    }

    /// The cookie value that marks `session` used at `now_ms`, when its
    /// last mark is older than [`RENEW_MS`].
    pub(crate) fn renewed(&self, session: &Session, now_ms: i64) -> Option<String> {
        (now_ms.saturating_sub(session.last_seen_ms) >= RENEW_MS).then(|| {
            self.seal(&Session {
                last_seen_ms: now_ms,
                ..session.clone()
            })
        })
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
    fn sessions_expire_when_idle_and_at_their_lifetime() {
        let sessions = Sessions::new(None);
        let id = sessions.open("hash".into(), 0);
        let s = sessions.read(&id, IDLE_MS - 1).unwrap();
        assert_eq!(s.key_hash, "hash");
        assert!(sessions.read(&id, IDLE_MS).is_none(), "idle");
        // Renewed at IDLE_MS - 1, so still live one idle period later, less 1.
        let renewed = sessions.renewed(&s, IDLE_MS - 1).unwrap();
        assert_eq!(
            sessions.read(&renewed, 2 * IDLE_MS - 2).unwrap().csrf,
            s.csrf
        );
        assert!(sessions.read(&renewed, 2 * IDLE_MS - 1).is_none());
        // Used often, it still ends at its lifetime.
        let mut cookie = sessions.open("hash".into(), 0);
        let mut now = 0;
        while let Some(s) = sessions.read(&cookie, now) {
            cookie = sessions.renewed(&s, now).unwrap_or(cookie);
            now += IDLE_MS / 2;
        }
        assert_eq!(now, MAX_LIFETIME_MS);
        assert!(sessions.read("made-up", 1).is_none());
        assert!(sessions.read("", 1).is_none());
        assert!(sessions.read(&"A".repeat(5000), 1).is_none());
    }

    #[test]
    fn a_cookie_is_renewed_only_after_a_minute() {
        let sessions = Sessions::new(None);
        let s = sessions.read(&sessions.open("h".into(), 0), 0).unwrap();
        assert!(sessions.renewed(&s, RENEW_MS - 1).is_none());
        assert!(sessions.renewed(&s, RENEW_MS).is_some());
    }

    #[test]
    fn cookies_open_on_every_node_with_the_master_key_and_nowhere_else() {
        let a = Sessions::new(Some(&MasterKey::from_bytes([7; 32])));
        let b = Sessions::new(Some(&MasterKey::from_bytes([7; 32])));
        let other = Sessions::new(Some(&MasterKey::from_bytes([8; 32])));
        let cookie = a.open("hash".into(), 0);
        let on_a = a.read(&cookie, 1).unwrap();
        let on_b = b.read(&cookie, 1).unwrap();
        assert_eq!(on_a.csrf, on_b.csrf);
        assert!(other.read(&cookie, 1).is_none());
        assert!(Sessions::new(None).read(&cookie, 1).is_none());
        // An altered cookie does not open; the payload is not readable.
        let mut altered = cookie.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(a.read(std::str::from_utf8(&altered).unwrap(), 1).is_none());
        assert!(!cookie.contains("hash") && !cookie.contains(&on_a.csrf));
        // A sealed blob of another purpose is not a session.
        let master = MasterKey::from_bytes([7; 32]);
        let foreign = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(master.seal(br#"{"d":"d","k":"h","c":"c","i":0,"s":0}"#, SEALED_AAD));
        assert!(a.read(&foreign, 1).is_none());
    }

    #[test]
    fn csrf_tokens_match_only_themselves() {
        let sessions = Sessions::new(None);
        let id = sessions.open("h".into(), 0);
        let s = sessions.read(&id, 0).unwrap();
        assert!(s.csrf_matches(Some(&s.csrf.clone())));
        assert!(!s.csrf_matches(None));
        assert!(!s.csrf_matches(Some("")));
        assert!(!s.csrf_matches(Some(&s.csrf[1..])));
        assert!(!format!("{s:?}").contains(&s.csrf));
        assert_ne!(id, s.csrf);
        let other = sessions.read(&sessions.open("h".into(), 0), 0).unwrap();
        assert_ne!(other.csrf, s.csrf, "each session its own token");
        assert_ne!(other.id, s.id, "each session its own id");
        assert_ne!(s.id, s.csrf);
        assert!(!format!("{s:?}").contains(&s.id));
        assert_eq!(s.expires_at_ms(), MAX_LIFETIME_MS);
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
