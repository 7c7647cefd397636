//! The `stromboli.rate_limit_client_ip` cases of `vectors/seed_schemes.json`.
//!
//! Those cases record Stromboli's own behaviour. Ours is stricter (see
//! `vectors/README.md`): every hop is validated, the chain is walked from the
//! right skipping trusted proxies, a bucket is never keyed on text that is
//! not an IP, and a bogus trusted-proxy entry stops start-up. Where the
//! vector's `expected_key` differs, [`deliberate_difference`] says why and
//! gives our answer.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use signet_server::TrustedProxies;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/seed_schemes.json"
);

#[derive(Debug, Deserialize)]
struct Case {
    trusted: Vec<String>,
    remote: String,
    xff: Option<String>,
    real_ip: Option<String>,
    expected_key: String,
}

enum Ours {
    /// We key the bucket on this address.
    Key(&'static str),
    /// We refuse to start with this trusted-proxy list.
    StartupError(&'static str),
}

/// Cases where we deliberately differ from Stromboli, with the reason.
fn deliberate_difference(case: &Case) -> Option<(Ours, &'static str)> {
    match (case.xff.as_deref(), case.trusted.first().map(String::as_str)) {
        (Some("not-an-ip, 10.0.0.2"), _) => Some((
            Ours::Key("10.0.0.2"),
            "`not-an-ip` is not an address: it ends the walk and the last valid hop (our proxy 10.0.0.2) is used, never the junk text",
        )),
        (Some(" , 10.0.0.2"), _) => Some((
            Ours::Key("10.0.0.2"),
            "an empty entry ends the walk; an empty bucket key would lump unrelated clients together",
        )),
        (None, _) if case.real_ip.is_some() => Some((
            Ours::Key("10.1.2.3"),
            "X-Real-IP is ignored unless SIGNET_TRUST_X_REAL_IP says the proxy sets it: a proxy that sets it often passes the client's X-Forwarded-For through, and a header nobody said the proxy writes is the client's own text",
        )),
        (_, Some("bogus")) => Some((
            Ours::StartupError("bogus"),
            "a trusted-proxy entry that does not parse stops start-up instead of being ignored: a typo must not silently change who is trusted",
        )),
        _ => None,
    }
}

fn load() -> Vec<Case> {
    let text = std::fs::read_to_string(VECTORS).expect("read vectors/seed_schemes.json");
    let root: serde_json::Value = serde_json::from_str(&text).expect("parse seed_schemes.json");
    serde_json::from_value(root["stromboli"]["rate_limit_client_ip"].clone())
        .expect("rate_limit_client_ip cases")
}

#[test]
fn rate_limit_client_ip_vectors() {
    let cases = load();
    assert_eq!(cases.len(), 10, "the vector file changed; review the cases");
    let mut differences = 0;
    for case in &cases {
        let parsed = TrustedProxies::parse(&case.trusted.join(","));
        let peer: SocketAddr = case.remote.parse().expect("remote is ip:port");
        let mut headers = HeaderMap::new();
        if let Some(xff) = &case.xff {
            headers.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        }
        if let Some(real) = &case.real_ip {
            headers.insert("x-real-ip", HeaderValue::from_str(real).unwrap());
        }
        match deliberate_difference(case) {
            Some((Ours::StartupError(entry), why)) => {
                differences += 1;
                let err = parsed.expect_err(why);
                assert_eq!(err.entry, entry);
                assert!(err.to_string().contains("SIGNET_TRUSTED_PROXIES"), "{err}");
                // With the bogus entry removed, the rest of the case holds.
                let fixed = TrustedProxies::parse(
                    &case
                        .trusted
                        .iter()
                        .filter(|t| *t != entry)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .unwrap();
                let got = fixed.client_ip(peer.ip(), &headers);
                assert_eq!(got.to_string(), case.expected_key, "{case:?}");
            }
            Some((Ours::Key(ours), why)) => {
                differences += 1;
                let got = parsed.unwrap().client_ip(peer.ip(), &headers);
                assert_ne!(got.to_string(), case.expected_key);
                assert_eq!(got, ours.parse::<IpAddr>().unwrap(), "{case:?}: {why}");
            }
            None => {
                let got = parsed.unwrap().client_ip(peer.ip(), &headers);
                assert_eq!(got.to_string(), case.expected_key, "{case:?}");
            }
        }
    }
    assert_eq!(differences, 4);
}

#[test]
fn x_real_ip_is_honoured_only_when_configured_from_trusted_peers_and_valid() {
    let proxy: IpAddr = "10.0.0.1".parse().unwrap();
    let untrusted_peer: IpAddr = "203.0.113.1".parse().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-real-ip", HeaderValue::from_static("198.51.100.8"));
    // Off by default: the peer, even from a trusted proxy.
    let default = TrustedProxies::parse("10.0.0.0/8").unwrap();
    assert!(!default.trusts_x_real_ip());
    assert_eq!(default.client_ip(proxy, &headers), proxy);

    let trusted = default.with_x_real_ip(true);
    assert_eq!(trusted.client_ip(untrusted_peer, &headers), untrusted_peer);
    assert_eq!(
        trusted.client_ip(proxy, &headers),
        "198.51.100.8".parse::<IpAddr>().unwrap()
    );
    headers.insert("x-real-ip", HeaderValue::from_static("evil"));
    assert_eq!(trusted.client_ip(proxy, &headers), proxy);
    // The proxy's X-Real-IP outranks an X-Forwarded-For the client sent and
    // the proxy passed through.
    headers.insert("x-real-ip", HeaderValue::from_static("198.51.100.8"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.44"));
    assert_eq!(
        trusted.client_ip(proxy, &headers),
        "198.51.100.8".parse::<IpAddr>().unwrap()
    );
}

/// Through the whole gate: which requests share a per-client bucket.
mod through_the_gate {
    use std::net::SocketAddr;
    use std::num::NonZeroU32;

    use axum::extract::ConnectInfo;
    use axum::http::{Method, StatusCode};
    use signet_server::config::ServerConfig;
    use signet_server::{Limit, TrustedProxies};

    use crate::routes::{harness_with, signing, Harness};
    use crate::support::{request, send};

    /// One request a second per client, no burst.
    fn one_per_client(trusted_proxies: TrustedProxies) -> ServerConfig {
        let one = NonZeroU32::new(1).unwrap();
        ServerConfig {
            rate_limit_per_ip: Some(Limit {
                per_second: one,
                burst: one,
            }),
            rate_limit_per_key: None,
            trusted_proxies,
            ..ServerConfig::default()
        }
    }

    async fn status_from(h: &Harness, peer: &str, headers: &[(&str, &str)]) -> StatusCode {
        let mut r = request(Method::GET, "/v1/queues", Some(&h.read), headers, None);
        let peer: SocketAddr = peer.parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(peer));
        send(&h.app, r).await.status
    }

    #[tokio::test]
    async fn addresses_of_one_ipv6_64_share_a_bucket() {
        let h = harness_with(one_per_client(TrustedProxies::none()), signing()).await;
        assert_eq!(
            status_from(&h, "[2001:db8:1:2::1]:5000", &[]).await,
            StatusCode::OK
        );
        assert_eq!(
            status_from(&h, "[2001:db8:1:2:aaaa::7]:5001", &[]).await,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status_from(&h, "[2001:db8:1:3::1]:5000", &[]).await,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_client_cannot_pick_its_bucket_with_x_real_ip_or_a_second_header() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = harness_with(one_per_client(proxies), signing()).await;
        let proxy = "10.0.0.1:40000";
        // The proxy appended the client to X-Forwarded-For.
        let xff = [("x-forwarded-for", "198.51.100.4")];
        assert_eq!(status_from(&h, proxy, &xff).await, StatusCode::OK);
        // The same client, now adding X-Real-IP (not trusted) and a
        // Forwarded header naming someone else: still its own bucket, or
        // the proxy's, never a fresh one.
        for extra in [
            [
                ("x-forwarded-for", "198.51.100.4"),
                ("x-real-ip", "203.0.113.1"),
            ],
            [
                ("x-forwarded-for", "198.51.100.4"),
                ("x-real-ip", "203.0.113.2"),
            ],
        ] {
            assert_eq!(
                status_from(&h, proxy, &extra).await,
                StatusCode::TOO_MANY_REQUESTS,
                "{extra:?}"
            );
        }
        let two_headers = [
            ("x-forwarded-for", "203.0.113.50"),
            ("forwarded", "for=198.51.100.4"),
        ];
        assert_eq!(status_from(&h, proxy, &two_headers).await, StatusCode::OK);
        let two_headers = [
            ("x-forwarded-for", "203.0.113.51"),
            ("forwarded", "for=198.51.100.4"),
        ];
        assert_eq!(
            status_from(&h, proxy, &two_headers).await,
            StatusCode::TOO_MANY_REQUESTS,
            "a second made-up address got a fresh bucket"
        );
    }

    /// The setup: the proxy sets X-Real-IP and passes the client's
    /// X-Forwarded-For through. Told so, the client's XFF chooses nothing.
    #[tokio::test]
    async fn behind_a_proxy_that_sets_x_real_ip_the_clients_xff_chooses_nothing() {
        let proxies = "10.0.0.0/8"
            .parse::<TrustedProxies>()
            .unwrap()
            .with_x_real_ip(true);
        let h = harness_with(one_per_client(proxies), signing()).await;
        let proxy = "10.0.0.1:40000";
        let first = [
            ("x-real-ip", "198.51.100.4"),
            ("x-forwarded-for", "203.0.113.1"),
        ];
        assert_eq!(status_from(&h, proxy, &first).await, StatusCode::OK);
        let again = [
            ("x-real-ip", "198.51.100.4"),
            ("x-forwarded-for", "203.0.113.2"),
        ];
        assert_eq!(
            status_from(&h, proxy, &again).await,
            StatusCode::TOO_MANY_REQUESTS
        );
        let other_client = [("x-real-ip", "198.51.100.5")];
        assert_eq!(status_from(&h, proxy, &other_client).await, StatusCode::OK);
    }
}
