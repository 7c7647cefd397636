//! The SSRF guard: which addresses the dispatcher may connect to.
//!
//! Messages name URLs chosen by API callers, so without a guard anyone who
//! may publish could make the server call its own admin ports, the cloud
//! metadata service or the private network. [`SsrfPolicy::check`] refuses
//! every address that is not public unicast, naming the rule:
//!
//! | rule | ranges |
//! |---|---|
//! | `cloud-metadata` | `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200` |
//! | `loopback` | `127.0.0.0/8`, `::1` |
//! | `private` | `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7`, `fec0::/10` |
//! | `link-local` | `169.254.0.0/16`, `fe80::/10` |
//! | `shared-address-space` (CGNAT) | `100.64.0.0/10` |
//! | `multicast` | `224.0.0.0/4`, `ff00::/8` |
//! | `unspecified` | `0.0.0.0/8`, `::` |
//! | `broadcast` | `255.255.255.255` |
//! | `reserved` | `240.0.0.0/4`, `192.0.0.0/24`, `192.88.99.0/24`, `100::/64`, `2001::/23` special-purpose blocks, anything outside `2000::/3` |
//! | `documentation` | `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20` |
//! | `benchmarking` | `198.18.0.0/15`, `2001:2::/48` |
//! | `nat64-local` | `64:ff9b:1::/48` |
//! | `teredo` | `2001::/32` |
//!
//! IPv6 addresses that embed an IPv4 address — IPv4-mapped `::ffff:0:0/96`,
//! IPv4-compatible `::/96`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16` — are
//! judged by the IPv4 address inside, so `::ffff:10.0.0.1` is as private as
//! `10.0.0.1`.
//!
//! `SIGNET_ALLOWED_TARGET_CIDRS` ([`SsrfPolicy::parse_allowed`]) lets
//! operators open ranges on purpose (a receiver on the same host, a private
//! network they trust); an address inside an allowed range passes whatever
//! rule it would break.
//!
//! Names are resolved by [`GuardedResolver`], which checks every address and
//! gives the HTTP client only checked addresses, so the address connected to
//! is the address checked (no window for DNS rebinding). URLs with an IP
//! literal never reach a resolver; the dispatcher checks them with
//! [`SsrfPolicy::check_url`].
//!
//! An IP literal can be judged before anything is sent, so publishing
//! (`POST /v1/messages`, the messages schedules fire) and a target's
//! `url_prefix` are refused at once with the same words
//! ([`SsrfPolicy::refuse_early`]) when given the policy the dispatcher
//! delivers under, instead of being accepted and dead-lettered later.
//! Names are still judged only when they are resolved, at delivery.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::error::RuntimeError;

/// The environment variable that opens address ranges to deliveries.
pub const ALLOWED_TARGET_CIDRS_VAR: &str = "SIGNET_ALLOWED_TARGET_CIDRS";
/// The `signet serve` flag that sets [`ALLOWED_TARGET_CIDRS_VAR`].
pub(crate) const ALLOWED_TARGET_CIDRS_FLAG: &str = "--allowed-target-cidrs";

/// An address the policy refused, and the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The host as named in the URL (a name or an IP literal).
    pub host: String,
    /// The address refused.
    pub ip: IpAddr,
    /// The rule's name (`loopback`, `private`, `cloud-metadata`, …).
    pub rule: &'static str,
    /// The range the rule matched, for people.
    pub range: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host == self.ip.to_string() {
            String::new()
        } else {
            format!("{} resolves to ", self.host)
        };
        write!(
            f,
            "refused by the SSRF guard: {host}{} is {} ({}); to deliver there on purpose, add the range to {ALLOWED_TARGET_CIDRS_VAR} (signet serve {ALLOWED_TARGET_CIDRS_FLAG})",
            self.ip, self.rule, self.range
        )
    }
}

impl std::error::Error for Refusal {}

/// Which addresses deliveries may connect to. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SsrfPolicy {
    allowed: Arc<Vec<IpNet>>,
}

impl SsrfPolicy {
    /// Refuses every non-public address (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses every non-public address except those inside `allowed`.
    pub fn allowing(allowed: Vec<IpNet>) -> Self {
        Self {
            allowed: Arc::new(allowed),
        }
    }

    /// Parses `SIGNET_ALLOWED_TARGET_CIDRS`: CIDRs or single addresses,
    /// separated by commas or whitespace. Empty allows nothing extra. An
    /// invalid entry is a configuration error that names it.
    pub fn parse_allowed(text: &str) -> Result<Self, RuntimeError> {
        let mut allowed = Vec::new();
        for item in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    RuntimeError::Config(format!(
                        "{ALLOWED_TARGET_CIDRS_VAR}: {item:?} is not a CIDR (like 10.0.0.0/8 or fd00::/8) or an IP address"
                    ))
                })?;
            allowed.push(net.trunc());
        }
        Ok(Self::allowing(allowed))
    }

    /// The ranges opened on purpose.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Checks one address; `host` is how the URL named it (for messages).
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refusal> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        let refuse = |rule: &'static str, range: String| Refusal {
            host: host.to_owned(),
            ip,
            rule,
            range,
        };
        match ip {
            IpAddr::V4(v4) => match v4_rule(v4) {
                Some((rule, range)) => Err(refuse(rule, range.to_owned())),
                None => Ok(()),
            },
            IpAddr::V6(v6) => match v6_rule(v6) {
                V6Verdict::Public => Ok(()),
                V6Verdict::Refused(rule, range) => Err(refuse(rule, range.to_owned())),
                V6Verdict::Embeds(v4, how) => {
                    // Judged by the IPv4 address inside, which the allow
                    // list may open too.
                    if self.is_allowed(IpAddr::V4(v4)) {
                        return Ok(());
                    }
                    match v4_rule(v4) {
                        Some((rule, range)) => Err(refuse(rule, embedded_range(how, range))),
                        None => Ok(()),
                    }
                }
            },
        }
    }

    /// Checks a URL whose host is an IP literal (names are checked when
    /// they are resolved, by the HTTP client's resolver). A URL without a host is
    /// refused as `unspecified`.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refusal> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refusal {
                host: String::new(),
                ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                rule: "unspecified",
                range: "the URL has no host".to_owned(),
            }),
        }
    }

    /// Refuses early what the dispatcher would certainly refuse: `url`'s
    /// host as an IP literal the policy refuses, as a field error of
    /// `field` (`url`, `url_prefix`) in the words of [`Refusal`] (the
    /// address, the rule and the setting that allows it). A name passes:
    /// what it resolves to is judged at delivery.
    pub(crate) fn refuse_early(&self, field: &str, url: &url::Url) -> Result<(), RuntimeError> {
        match url.host() {
            Some(url::Host::Domain(_)) | None => Ok(()),
            Some(_) => self
                .check_url(url)
                .map_err(|refusal| RuntimeError::field(field, refusal.to_string())),
        }
    }
}

/// How an IPv6 address carries an IPv4 one.
#[derive(Clone, Copy)]
enum Embedding {
    Mapped,
    Compatible,
    Nat64,
    SixToFour,
}

fn embedded_range(how: Embedding, range: &str) -> String {
    let label = match how {
        Embedding::Mapped => "IPv4-mapped ::ffff:0:0/96",
        Embedding::Compatible => "IPv4-compatible ::/96",
        Embedding::Nat64 => "NAT64 64:ff9b::/96",
        Embedding::SixToFour => "6to4 2002::/16",
    };
    format!("{label} embedding {range}")
}

/// An IPv4 prefix as (network, length).
#[derive(Clone, Copy)]
struct V4Prefix(u32, u8);

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> V4Prefix {
    V4Prefix(u32::from_be_bytes([a, b, c, d]), len)
}

impl V4Prefix {
    fn contains(self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.1)).unwrap_or(0);
        u32::from(ip) & mask == self.0 & mask
    }
}

/// IPv4 rules, most specific first (metadata and broadcast sit inside
/// wider ranges).
const V4_RULES: &[(V4Prefix, &str, &str)] = &[
    (
        v4(169, 254, 169, 254, 32),
        "cloud-metadata",
        "169.254.169.254",
    ),
    (
        v4(100, 100, 100, 200, 32),
        "cloud-metadata",
        "100.100.100.200",
    ),
    (v4(255, 255, 255, 255, 32), "broadcast", "255.255.255.255"),
    (v4(0, 0, 0, 0, 8), "unspecified", "0.0.0.0/8"),
    (v4(10, 0, 0, 0, 8), "private", "10.0.0.0/8 (RFC 1918)"),
    (
        v4(100, 64, 0, 0, 10),
        "shared-address-space",
        "100.64.0.0/10 (CGNAT, RFC 6598)",
    ),
    (v4(127, 0, 0, 0, 8), "loopback", "127.0.0.0/8"),
    (v4(169, 254, 0, 0, 16), "link-local", "169.254.0.0/16"),
    (v4(172, 16, 0, 0, 12), "private", "172.16.0.0/12 (RFC 1918)"),
    (
        v4(192, 0, 0, 0, 24),
        "reserved",
        "192.0.0.0/24 (IETF protocol assignments)",
    ),
    (
        v4(192, 0, 2, 0, 24),
        "documentation",
        "192.0.2.0/24 (TEST-NET-1)",
    ),
    (
        v4(192, 88, 99, 0, 24),
        "reserved",
        "192.88.99.0/24 (6to4 relay anycast)",
    ),
    (
        v4(192, 168, 0, 0, 16),
        "private",
        "192.168.0.0/16 (RFC 1918)",
    ),
    (v4(198, 18, 0, 0, 15), "benchmarking", "198.18.0.0/15"),
    (
        v4(198, 51, 100, 0, 24),
        "documentation",
        "198.51.100.0/24 (TEST-NET-2)",
    ),
    (
        v4(203, 0, 113, 0, 24),
        "documentation",
        "203.0.113.0/24 (TEST-NET-3)",
    ),
    (v4(224, 0, 0, 0, 4), "multicast", "224.0.0.0/4"),
    (v4(240, 0, 0, 0, 4), "reserved", "240.0.0.0/4"),
];

fn v4_rule(ip: Ipv4Addr) -> Option<(&'static str, &'static str)> {
    V4_RULES
        .iter()
        .find(|(net, _, _)| net.contains(ip))
        .map(|(_, rule, range)| (*rule, *range))
}

enum V6Verdict {
    Public,
    Refused(&'static str, &'static str),
    Embeds(Ipv4Addr, Embedding),
}

/// An IPv6 prefix as (network, length).
#[derive(Clone, Copy)]
struct V6Prefix(u128, u8);

const fn v6(s: [u16; 8], len: u8) -> V6Prefix {
    let mut n: u128 = 0;
    let mut i = 0;
    while i < 8 {
        n = (n << 16) | s[i] as u128;
        i += 1;
    }
    V6Prefix(n, len)
}

impl V6Prefix {
    fn contains(self, ip: Ipv6Addr) -> bool {
        let mask = u128::MAX.checked_shl(128 - u32::from(self.1)).unwrap_or(0);
        u128::from(ip) & mask == self.0 & mask
    }
}

/// IPv6 rules checked before the embeddings, most specific first.
const V6_RULES: &[(V6Prefix, &str, &str)] = &[
    (
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        "cloud-metadata",
        "fd00:ec2::254",
    ),
    (v6([0; 8], 128), "unspecified", "::"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback", "::1"),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "nat64-local",
        "64:ff9b:1::/48",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "reserved",
        "100::/64 (discard-only)",
    ),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "teredo", "2001::/32"),
    (
        v6([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48),
        "benchmarking",
        "2001:2::/48",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation",
        "2001:db8::/32",
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "reserved",
        "2001::/23 (IETF special-purpose)",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation",
        "3fff::/20",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "private",
        "fc00::/7 (unique local)",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local",
        "fe80::/10",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "private",
        "fec0::/10 (site-local)",
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        "multicast",
        "ff00::/8",
    ),
];

fn v6_rule(ip: Ipv6Addr) -> V6Verdict {
    if let Some((_, rule, range)) = V6_RULES.iter().find(|(net, _, _)| net.contains(ip)) {
        return V6Verdict::Refused(rule, range);
    }
    let s = ip.segments();
    let low_v4 = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return V6Verdict::Embeds(low_v4, Embedding::Mapped);
    }
    if s[..6] == [0; 6] {
        return V6Verdict::Embeds(low_v4, Embedding::Compatible);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return V6Verdict::Embeds(low_v4, Embedding::Nat64);
    }
    if s[0] == 0x2002 {
        let inner = Ipv4Addr::new(
            (s[1] >> 8) as u8,
            (s[1] & 0xff) as u8,
            (s[2] >> 8) as u8,
            (s[2] & 0xff) as u8,
        );
        return V6Verdict::Embeds(inner, Embedding::SixToFour);
    }
    // Only 2000::/3 is global unicast; everything else is unassigned or
    // special.
    if s[0] & 0xe000 != 0x2000 {
        return V6Verdict::Refused("reserved", "outside global unicast 2000::/3");
    }
    V6Verdict::Public
}

/// A DNS resolver for the delivery client that resolves names itself and
/// gives the client only addresses the policy allows.
///
/// A name with any refused address is refused as a whole (a public answer
/// mixed with a private one is how rebinding attacks look). The error is a
/// [`Refusal`], which the dispatcher finds in the request error's source
/// chain and dead-letters as `target-refused`.
#[derive(Clone, Debug)]
pub(crate) struct GuardedResolver {
    policy: SsrfPolicy,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub(crate) fn new(policy: SsrfPolicy) -> Self {
        Self { policy }
    }

    /// Resolves `host` and checks every address.
    pub(crate) async fn resolve_checked(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, ResolveError> {
        // Port 0: reqwest replaces it with the URL's port.
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| ResolveError::Lookup(host.to_owned(), e))?
            .collect();
        if found.is_empty() {
            return Err(ResolveError::Lookup(
                host.to_owned(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            ));
        }
        for addr in &found {
            self.policy
                .check(host, addr.ip())
                .map_err(ResolveError::Refused)?;
        }
        Ok(found)
    }
}

/// Why [`GuardedResolver`] gave no addresses.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// The name did not resolve.
    #[error("could not resolve {0}: {1}")]
    Lookup(String, #[source] std::io::Error),
    /// An address was refused by the policy.
    #[error(transparent)]
    Refused(Refusal),
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            match this.resolve_checked(name.as_str()).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(ResolveError::Refused(r)) => Err(Box::new(r) as Box<_>),
                Err(e) => Err(Box::new(e) as Box<_>),
            }
        })
    }
}

/// The [`Refusal`] in an error's source chain, if the SSRF guard caused it.
pub(crate) fn find_refusal<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<Refusal>() {
            return Some(r);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(policy: &SsrfPolicy, ip: &str) -> Option<&'static str> {
        let ip: IpAddr = ip.parse().unwrap();
        policy.check(&ip.to_string(), ip).err().map(|r| r.rule)
    }

    #[test]
    fn every_non_public_range_is_refused_with_its_rule() {
        let p = SsrfPolicy::new();
        let cases = [
            ("169.254.169.254", "cloud-metadata"),
            ("100.100.100.200", "cloud-metadata"),
            ("fd00:ec2::254", "cloud-metadata"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("fc00::1", "private"),
            ("fdab::1", "private"),
            ("fec0::1", "private"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("100.64.0.1", "shared-address-space"),
            ("100.127.255.255", "shared-address-space"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.8", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("2001:2::1", "benchmarking"),
            ("2001::1", "teredo"),
            ("64:ff9b:1::1", "nat64-local"),
            ("100::1", "reserved"),
            ("4000::1", "reserved"),
            // IPv4 inside IPv6 is judged as IPv4.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud-metadata"),
            ("::ffff:10.0.0.1", "private"),
            ("::10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "cloud-metadata"),
            ("64:ff9b::c0a8:0101", "private"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:0a00:0001::", "private"),
        ];
        for (ip, want) in cases {
            assert_eq!(rule(&p, ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = SsrfPolicy::new();
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(rule(&p, ip), None, "{ip}");
        }
    }

    #[test]
    fn allowed_ranges_open_exactly_those_addresses() {
        let p = SsrfPolicy::parse_allowed("127.0.0.0/8, 10.1.2.3 fd00::/8").unwrap();
        assert_eq!(rule(&p, "127.0.0.1"), None);
        assert_eq!(rule(&p, "::ffff:127.0.0.1"), None);
        assert_eq!(rule(&p, "10.1.2.3"), None);
        assert_eq!(rule(&p, "10.1.2.4"), Some("private"));
        assert_eq!(rule(&p, "fd00:ec2::254"), None);
        assert_eq!(rule(&p, "169.254.169.254"), Some("cloud-metadata"));
        assert_eq!(rule(&p, "::1"), Some("loopback"));
        assert!(SsrfPolicy::parse_allowed("").unwrap().allowed().is_empty());
    }

    #[test]
    fn invalid_allow_entries_are_named() {
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/8,,300.1.1.1"] {
            let e = SsrfPolicy::parse_allowed(bad).unwrap_err().to_string();
            assert!(e.contains(ALLOWED_TARGET_CIDRS_VAR), "{e}");
        }
        let e = SsrfPolicy::parse_allowed("10.0.0.0/8, 300.1.1.1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("300.1.1.1"), "{e}");
    }

    #[test]
    fn refusals_name_the_rule_and_the_setting() {
        let p = SsrfPolicy::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let text = p.check("internal.example", ip).unwrap_err().to_string();
        assert!(
            text.contains("internal.example resolves to 10.0.0.1"),
            "{text}"
        );
        assert!(text.contains("private"), "{text}");
        assert!(text.contains(ALLOWED_TARGET_CIDRS_VAR), "{text}");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let text = p
            .check(&mapped.to_string(), mapped)
            .unwrap_err()
            .to_string();
        assert!(text.contains("IPv4-mapped"), "{text}");
    }

    #[test]
    fn ip_literal_urls_are_checked_and_names_wait_for_resolution() {
        let p = SsrfPolicy::new();
        let check = |u: &str| {
            p.check_url(&url::Url::parse(u).unwrap())
                .map_err(|r| r.rule)
        };
        assert_eq!(
            check("http://169.254.169.254/latest/meta-data"),
            Err("cloud-metadata")
        );
        assert_eq!(check("http://10.0.0.1/"), Err("private"));
        assert_eq!(check("http://[::1]:8080/"), Err("loopback"));
        // Other spellings of 127.0.0.1 are normalised by the URL parser.
        assert_eq!(check("http://0x7f.1/"), Err("loopback"));
        assert_eq!(check("http://2130706433/"), Err("loopback"));
        assert_eq!(check("https://example.com/"), Ok(()));
    }

    #[test]
    fn ip_literals_are_refused_early_with_the_address_rule_and_setting() {
        let p = SsrfPolicy::new();
        let early = |u: &str| p.refuse_early("url", &url::Url::parse(u).unwrap());
        let e = early("http://10.0.0.1:8080/hook").unwrap_err().to_string();
        for want in [
            "url",
            "10.0.0.1",
            "private",
            ALLOWED_TARGET_CIDRS_VAR,
            ALLOWED_TARGET_CIDRS_FLAG,
        ] {
            assert!(e.contains(want), "{want} missing: {e}");
        }
        let e = early("http://[::1]/").unwrap_err().to_string();
        assert!(e.contains("::1 is loopback"), "{e}");
        // Names wait for delivery, where they are resolved and checked.
        assert!(early("http://localhost:8080/").is_ok());
        assert!(early("https://example.com/").is_ok());
        let open = SsrfPolicy::parse_allowed("10.0.0.0/8").unwrap();
        assert!(open
            .refuse_early("url", &url::Url::parse("http://10.0.0.1/").unwrap())
            .is_ok());
    }

    #[tokio::test]
    async fn localhost_is_refused_after_resolution_unless_allowed() {
        let r = GuardedResolver::new(SsrfPolicy::new());
        match r.resolve_checked("localhost").await {
            Err(ResolveError::Refused(refusal)) => {
                assert_eq!(refusal.rule, "loopback");
                assert_eq!(refusal.host, "localhost");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let r = GuardedResolver::new(SsrfPolicy::parse_allowed("127.0.0.0/8, ::1").unwrap());
        let addrs = r.resolve_checked("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[test]
    fn refusals_are_found_in_source_chains() {
        #[derive(Debug)]
        struct Wrapper(Box<dyn std::error::Error + Send + Sync>);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(self.0.as_ref())
            }
        }
        let refusal = Refusal {
            host: "x".into(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rule: "loopback",
            range: "127.0.0.0/8".to_owned(),
        };
        let e = Wrapper(Box::new(refusal.clone()));
        assert_eq!(find_refusal(&e), Some(&refusal));
        let other = Wrapper(Box::new(std::io::Error::other("nope")));
        assert_eq!(find_refusal(&other), None);
    }
}
