//! Which address a request comes from, for per-client rate limits.
//!
//! Forwarding headers are written by whoever sends the request, so they are
//! believed only when the direct peer is a proxy we were told to trust
//! (`SIGNET_TRUSTED_PROXIES`). Then the chain is walked from the right (the
//! hop our proxy added) to the left, skipping hops that are themselves
//! trusted proxies; the first untrusted address is the client. An entry that
//! is not an IP address ends the walk and the last valid hop is used, so a
//! bucket is never keyed on text a client made up.
//!
//! Sources: `X-Forwarded-For` (every instance, in order) or
//! `Forwarded: for=…` (RFC 7239), only from trusted peers. When a request
//! carries both and their walks disagree, one was written by the client
//! (a proxy writes one of them), so neither is believed: the client is the
//! peer. Walking from the right means what the
//! trusted proxy appended is read first, and a client's own entries (to the
//! left) count only once every hop after them is a trusted proxy.
//!
//! `X-Real-IP` is ignored unless the operator says the proxy sets it
//! ([`TrustedProxies::with_x_real_ip`], `SIGNET_TRUST_X_REAL_IP`): a proxy
//! that sets `X-Real-IP` often passes the client's `X-Forwarded-For` through
//! untouched, so there the forwarding chain is the client's own text. When
//! trusted, `X-Real-IP` from a trusted peer is the client and the other
//! headers are not read; without it (or when it is not an address) the
//! client is the peer.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// An entry of `SIGNET_TRUSTED_PROXIES` that is not a CIDR or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "SIGNET_TRUSTED_PROXIES: entry {entry:?} is not a CIDR (10.0.0.0/8) or an IP address (10.0.0.5, ::1); fix or remove it"
)]
pub struct TrustedProxyError {
    /// The offending entry.
    pub entry: String,
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    /// The proxies set `X-Real-IP`: it names the client, alone.
    x_real_ip: bool,
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.nets.iter().map(ToString::to_string))
            .finish()?;
        if self.x_real_ip {
            f.write_str(" (X-Real-IP names the client)")?;
        }
        Ok(())
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TrustedProxies {
    /// Trusts nobody: forwarding headers are always ignored.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of CIDRs and bare IP addresses. Blank
    /// items (a trailing comma, an empty variable) are skipped; anything else
    /// that does not parse is an error, never silently dropped.
    pub fn parse(list: &str) -> Result<Self, TrustedProxyError> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = if entry.contains('/') {
                IpNet::from_str(entry).map(|n| n.trunc()).map_err(drop)
            } else {
                IpAddr::from_str(entry).map(IpNet::from).map_err(drop)
            };
            match net {
                Ok(net) => nets.push(net),
                Err(_) => {
                    return Err(TrustedProxyError {
                        entry: entry.to_owned(),
                    })
                }
            }
        }
        Ok(Self {
            nets,
            x_real_ip: false,
        })
    }

    /// Whether the trusted proxies set `X-Real-IP` to the client's address
    /// (`SIGNET_TRUST_X_REAL_IP`). Then it alone names the client; off (the
    /// default), it is ignored.
    pub fn with_x_real_ip(mut self, trusted: bool) -> Self {
        self.x_real_ip = trusted;
        self
    }

    /// Whether `X-Real-IP` names the client.
    pub fn trusts_x_real_ip(&self) -> bool {
        self.x_real_ip
    }

    /// The trusted networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether the list trusts every address (`0.0.0.0/0` or `::/0`): then
    /// any client can choose the address it is rate-limited as.
    pub fn trusts_everyone(&self) -> bool {
        self.nets.iter().any(|n| n.prefix_len() == 0)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        if self.x_real_ip {
            // The proxy writes it over whatever the client sent; the
            // forwarding chain may be the client's own text, so it is not
            // read at all.
            return headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_hop)
                .unwrap_or(peer);
        }
        let walk = |hops: Vec<String>| self.walk(peer, hops.iter().map(String::as_str));
        match (x_forwarded_for_hops(headers), forwarded_for_hops(headers)) {
            (Some(xff), Some(fwd)) => {
                // Both present: the proxy wrote at most one of them and we
                // cannot tell which, so a client that adds the other must
                // not choose its bucket. Agreeing chains are believed;
                // disagreeing ones leave the client as the proxy itself
                // (a bucket only such requests share).
                let (a, b) = (walk(xff), walk(fwd));
                if a == b {
                    a
                } else {
                    peer
                }
            }
            (Some(hops), None) | (None, Some(hops)) => walk(hops),
            (None, None) => peer,
        }
    }

    /// Walks a chain of hops (left = client side) from the right.
    fn walk<'a>(&self, peer: IpAddr, hops: impl DoubleEndedIterator<Item = &'a str>) -> IpAddr {
        let mut client = peer;
        for hop in hops.rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

/// The hops of `X-Forwarded-For` (every instance, in order), left to
/// right; `None` when the request has none.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut hops = Vec::new();
    let mut seen = false;
    for value in headers.get_all("x-forwarded-for") {
        seen = true;
        match value.to_str() {
            Ok(text) => hops.extend(text.split(',').map(|h| h.trim().to_owned())),
            // Bytes that are not text: a hop we cannot read ends the walk.
            Err(_) => hops.push(String::new()),
        }
    }
    seen.then_some(hops)
}

/// The `for=` hops of `Forwarded` (RFC 7239), left to right; `None` when
/// the request has none.
fn forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut hops = Vec::new();
    let mut seen = false;
    for value in headers.get_all("forwarded") {
        seen = true;
        let Ok(text) = value.to_str() else {
            hops.push(String::new());
            continue;
        };
        for element in text.split(',') {
            let for_value = element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"').to_owned())
            });
            // An element without `for=` names no hop we can use.
            hops.push(for_value.unwrap_or_default());
        }
    }
    seen.then_some(hops)
}

/// Parses one hop: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`. Anything else (names, `unknown`, obfuscated ids,
/// empty) is `None`.
pub(crate) fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip = Ipv6Addr::from_str(inside).ok()?;
        if after.is_empty() || after.strip_prefix(':').is_some_and(is_port) {
            return Some(IpAddr::V6(ip).to_canonical());
        }
        return None;
    }
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(ip.to_canonical());
    }
    match SocketAddr::from_str(hop) {
        Ok(SocketAddr::V4(addr)) => Some(IpAddr::V4(*addr.ip())),
        _ => None,
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hops_parse_with_and_without_ports() {
        assert_eq!(parse_hop("1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop(" 1.2.3.4:8080 "), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("\"[2001:db8::1]:443\""), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("::ffff:1.2.3.4"), Some(ip("1.2.3.4")));
        for junk in [
            "",
            "unknown",
            "_hidden",
            "host:80",
            "[::1]x",
            "[::1]:99999",
            "1.2.3.4:",
        ] {
            assert_eq!(parse_hop(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "2.2.2.2")]);
        assert_eq!(t.client_ip(ip("192.0.2.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn x_real_ip_counts_only_when_configured_and_then_alone() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let proxy = ip("10.0.0.1");
        // The proxy sets X-Real-IP and passes the client's own XFF through.
        let h = headers(&[
            ("x-real-ip", "198.51.100.7"),
            ("x-forwarded-for", "203.0.113.99"),
        ]);
        // Not configured: X-Real-IP is ignored, the chain is walked.
        assert_eq!(
            t.client_ip(proxy, &headers(&[("x-real-ip", "198.51.100.7")])),
            proxy
        );
        // Configured: X-Real-IP alone names the client; the client's XFF
        // cannot choose its bucket.
        let t = t.with_x_real_ip(true);
        assert!(t.trusts_x_real_ip());
        assert_eq!(t.client_ip(proxy, &h), ip("198.51.100.7"));
        assert_eq!(
            t.client_ip(proxy, &headers(&[("x-forwarded-for", "203.0.113.99")])),
            proxy
        );
        assert_eq!(
            t.client_ip(proxy, &headers(&[("x-real-ip", "evil")])),
            proxy
        );
        // From an untrusted peer nothing counts.
        assert_eq!(t.client_ip(ip("192.0.2.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn a_client_entry_never_outranks_the_hop_the_proxy_appended() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // The client sends its own XFF naming a trusted proxy and a victim;
        // our proxy appends the real client.
        let h = headers(&[("x-forwarded-for", "192.0.2.200, 10.9.9.9, 198.51.100.4")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.4"));
    }

    #[test]
    fn forwarded_header_is_walked_like_xff() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&[(
            "forwarded",
            "for=198.51.100.1;proto=https, for=\"[2001:db8::7]:443\", for=10.0.0.3",
        )]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=unknown, for=10.0.0.3")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.3"));
    }

    #[test]
    fn a_forwarding_header_the_client_added_beside_the_proxys_is_not_believed() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let proxy = ip("10.0.0.1");
        // The proxy appends to Forwarded; the client adds its own XFF.
        let h = headers(&[
            ("forwarded", "for=198.51.100.4"),
            ("x-forwarded-for", "203.0.113.77"),
        ]);
        assert_eq!(t.client_ip(proxy, &h), proxy);
        // Both written by proxies that agree: believed.
        let h = headers(&[
            ("forwarded", "for=198.51.100.4"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(t.client_ip(proxy, &h), ip("198.51.100.4"));
        // One header alone is walked as before.
        let h = headers(&[("forwarded", "for=198.51.100.4")]);
        assert_eq!(t.client_ip(proxy, &h), ip("198.51.100.4"));
    }

    #[test]
    fn every_xff_instance_counts_in_order() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "10.0.0.9"),
        ]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn all_trusted_chain_ends_at_the_leftmost_hop() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.8")]);
        assert_eq!(t.client_ip(ip("192.0.2.1"), &h), ip("10.0.0.7"));
    }

    #[test]
    fn trust_everyone_is_detected() {
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .trusts_everyone());
        assert!(TrustedProxies::parse("::/0").unwrap().trusts_everyone());
        assert!(!TrustedProxies::parse("10.0.0.0/8, ::1")
            .unwrap()
            .trusts_everyone());
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8,10.0.0.0/33")
                .unwrap_err()
                .entry,
            "10.0.0.0/33"
        );
    }

    proptest::proptest! {
        /// Whatever the headers say, the answer is the peer or an address
        /// that appears in them, and parsing never panics.
        #[test]
        fn the_client_is_the_peer_or_a_listed_address(
            xff in "[0-9a-f:., \\[\\]x-]{0,60}",
            fwd in "[0-9a-zA-Z=;:,. \"\\[\\]]{0,60}",
            peer_trusted in proptest::bool::ANY,
        ) {
            let t = TrustedProxies::parse("10.0.0.0/8, 2001:db8::/32").unwrap();
            let peer = if peer_trusted { ip("10.1.1.1") } else { ip("192.0.2.1") };
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&xff) { h.insert("x-forwarded-for", v); }
            if let Ok(v) = HeaderValue::from_str(&fwd) { h.insert("forwarded", v); }
            let got = t.client_ip(peer, &h);
            if !peer_trusted {
                proptest::prop_assert_eq!(got, peer);
            } else if got != peer {
                let listed = xff.split(',').chain(fwd.split([',', ';', '='])).any(|hop| parse_hop(hop) == Some(got));
                proptest::prop_assert!(listed, "{} is not in the headers", got);
            }
        }
    }
}
