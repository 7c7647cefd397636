//! Rate limits per API key and per client address (GCRA, via `governor`).
//!
//! The per-address limit runs before authentication, so floods of bad keys
//! are throttled too; the per-key limit runs after it. Both answer `429` with
//! `Retry-After` and `X-RateLimit-Limit/-Remaining/-Reset`, and every
//! response of a limited route carries the `X-RateLimit-*` headers.
//!
//! An IPv4 client has a bucket per address. An IPv6 client has one per
//! network of [`ServerConfig::ipv6_bucket_prefix`](crate::ServerConfig) bits
//! (a /64 by default): one host usually holds a whole /64, so a bucket per
//! /128 would give it 2^64 buckets.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// A sustained rate with a burst allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Requests replenished per second.
    pub per_second: NonZeroU32,
    /// Requests that may arrive at once.
    pub burst: NonZeroU32,
}

impl Limit {
    /// `per_second` with a burst of twice that.
    pub fn per_second(per_second: NonZeroU32) -> Self {
        Self {
            per_second,
            burst: per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1)),
        }
    }

    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// What a limiter said about one request, for the `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// The burst size (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests left right now (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`X-RateLimit-Reset`).
    pub reset_secs: u64,
}

impl RateLimitInfo {
    /// Writes the `X-RateLimit-*` headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

type Inner<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// A request a limiter refused. The edge's error type turns it into `429`;
/// limiting itself knows nothing of HTTP errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    /// `api key` or `client address`.
    pub(crate) scope: &'static str,
    /// How long until the next request is allowed.
    pub(crate) retry_after: Duration,
    /// The limiter's state, for the `X-RateLimit-*` headers.
    pub(crate) info: RateLimitInfo,
}

/// One keyed limiter.
struct Keyed<K: Hash + Eq + Clone> {
    inner: Inner<K>,
    limit: Limit,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(limit: Limit) -> Self {
        Self {
            inner: RateLimiter::keyed(limit.quota())
                .with_middleware::<StateInformationMiddleware>(),
            limit,
        }
    }

    fn check(&self, key: &K, scope: &'static str) -> Result<RateLimitInfo, Refused> {
        let interval = self.limit.quota().replenish_interval();
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.limit.burst.get().saturating_sub(remaining);
                Ok(RateLimitInfo {
                    limit: self.limit.burst.get(),
                    remaining,
                    reset_secs: ceil_secs(interval.saturating_mul(used)),
                })
            }
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.inner.clock().now());
                Err(Refused {
                    scope,
                    retry_after,
                    info: RateLimitInfo {
                        limit: self.limit.burst.get(),
                        remaining: 0,
                        reset_secs: ceil_secs(interval.saturating_mul(self.limit.burst.get())),
                    },
                })
            }
        }
    }
}

/// The bucket of a client address: an IPv4 address (or an IPv4-mapped
/// IPv6 one) is its own bucket; an IPv6 address is cut to its first
/// `ipv6_prefix` bits.
pub(crate) fn bucket(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let keep = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The server's limiters. A `None` limit turns that limiter off.
pub(crate) struct RateLimits {
    per_key: Option<Keyed<String>>,
    per_ip: Option<Keyed<IpAddr>>,
    /// Leading bits of an IPv6 address that name its bucket (0–128).
    ipv6_prefix: u8,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_key", &self.per_key.as_ref().map(|k| k.limit))
            .field("per_ip", &self.per_ip.as_ref().map(|k| k.limit))
            .field("ipv6_prefix", &self.ipv6_prefix)
            .finish()
    }
}

impl RateLimits {
    /// Limiters with these limits; IPv6 clients are counted per network
    /// of `ipv6_prefix` bits (more than 128 means 128).
    pub(crate) fn new(per_key: Option<Limit>, per_ip: Option<Limit>, ipv6_prefix: u8) -> Self {
        Self {
            per_key: per_key.map(Keyed::new),
            per_ip: per_ip.map(Keyed::new),
            ipv6_prefix: ipv6_prefix.min(128),
        }
    }

    /// Counts a request from `ip`, in the bucket of its network (see
    /// [`bucket`]).
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<Option<RateLimitInfo>, Refused> {
        self.per_ip
            .as_ref()
            .map(|l| l.check(&bucket(ip, self.ipv6_prefix), "client address"))
            .transpose()
    }

    /// Counts a request made with the API key `key_id`.
    pub(crate) fn check_key(&self, key_id: &str) -> Result<Option<RateLimitInfo>, Refused> {
        self.per_key
            .as_ref()
            .map(|l| l.check(&key_id.to_owned(), "api key"))
            .transpose()
    }

    /// Forgets buckets that are full again (call now and then, so the maps
    /// do not grow with every address ever seen).
    pub(crate) fn retain_recent(&self) {
        if let Some(l) = &self.per_key {
            l.inner.retain_recent();
            l.inner.shrink_to_fit();
        }
        if let Some(l) = &self.per_ip {
            l.inner.retain_recent();
            l.inner.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_retry_time() {
        let limits = RateLimits::new(
            Some(Limit {
                per_second: NonZeroU32::new(1).unwrap(),
                burst: NonZeroU32::new(3).unwrap(),
            }),
            None,
            64,
        );
        let first = limits.check_key("key_a").unwrap().unwrap();
        assert_eq!((first.limit, first.remaining), (3, 2));
        limits.check_key("key_a").unwrap();
        limits.check_key("key_a").unwrap();
        match limits.check_key("key_a") {
            Err(Refused {
                retry_after, info, ..
            }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
                assert_eq!(info.remaining, 0);
            }
            other => panic!("expected 429, got {other:?}"),
        }
        // Another key has its own bucket; the address limiter is off.
        assert!(limits.check_key("key_b").is_ok());
        assert!(limits
            .check_ip("127.0.0.1".parse().unwrap())
            .unwrap()
            .is_none());
    }

    fn one_per_second() -> Option<Limit> {
        Some(Limit {
            per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(1).unwrap(),
        })
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_by_default() {
        let limits = RateLimits::new(None, one_per_second(), 64);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(limits.check_ip(ip("2001:db8:1:2::1")).is_ok());
        // Another address of the same /64 is the same client.
        assert!(limits.check_ip(ip("2001:db8:1:2:ffff::9")).is_err());
        // The next /64 is another client; IPv4 stays per address.
        assert!(limits.check_ip(ip("2001:db8:1:3::1")).is_ok());
        assert!(limits.check_ip(ip("192.0.2.1")).is_ok());
        assert!(limits.check_ip(ip("192.0.2.2")).is_ok());
        // Per /128 when configured so.
        let exact = RateLimits::new(None, one_per_second(), 128);
        assert!(exact.check_ip(ip("2001:db8::1")).is_ok());
        assert!(exact.check_ip(ip("2001:db8::2")).is_ok());
    }

    #[test]
    fn buckets_cut_ipv6_addresses_at_the_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(bucket(ip("2001:db8:a:b:c:d:e:f"), 64), ip("2001:db8:a:b::"));
        assert_eq!(bucket(ip("2001:db8:a:b:c:d:e:f"), 48), ip("2001:db8:a::"));
        assert_eq!(bucket(ip("2001:db8::f"), 128), ip("2001:db8::f"));
        assert_eq!(bucket(ip("2001:db8::f"), 200), ip("2001:db8::f"));
        assert_eq!(bucket(ip("2001:db8::f"), 0), ip("::"));
        assert_eq!(bucket(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
    }
}
