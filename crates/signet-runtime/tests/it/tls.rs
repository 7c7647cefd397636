//! HTTPS deliveries to a receiver whose certificate a private CA signed:
//! refused until the dispatcher is given that CA (`TrustedRoots`), then
//! delivered over HTTP/2 (the receiver offers it by ALPN) and verified like
//! any other.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use signet_runtime::{DeliveryEventKind, HttpConfig, TrustedRoots};
use signet_store::TaskState;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::dispatcher::{
    delivered, verify_standard, Answer, Receiver, ReceiverState, RunningDispatcher, Setup,
};

/// A CA (its certificate in PEM) and a server certificate it signed for
/// 127.0.0.1, with the server's TLS configuration.
struct Pki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Signet test receivers CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        params
            .distinguished_name
            .push(DnType::CommonName, "receiver.test");
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self {
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }
}

/// A TLS listener for the test receiver: a handshake a client abandons
/// (it does not trust the certificate) is skipped.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.tls.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn https_receiver(pki: &Pki) -> Receiver {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = TlsAcceptor::from(Arc::clone(&pki.server));
    Receiver::serve(
        TlsListener { tcp, tls },
        ReceiverState::new(|_, _| Answer::status(200).body("thanks")),
    )
}

#[tokio::test]
async fn https_receivers_with_a_private_ca_are_reached_once_the_ca_is_trusted() {
    let pki = Pki::new();
    let rx = https_receiver(&pki).await;
    let url = format!("https://127.0.0.1:{}/hooks", rx.addr.port());
    let s = Setup::new();

    // Only the public roots: the handshake fails and the attempt with it.
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let refused = s.publish(json!({"url": url, "body": "1"})).await;
    match d.next_for(&refused).await.kind {
        DeliveryEventKind::Retrying { error, .. } => {
            assert!(error.contains("certificate"), "{error}");
        }
        other => panic!("expected a failed attempt, got {other:?}"),
    }
    d.stop().await;
    assert!(rx.requests().is_empty(), "nothing reached the receiver");

    // With the CA trusted, the next message is delivered and verifies.
    let roots = TrustedRoots::from_pem(pki.ca_pem.as_bytes(), "the test CA").unwrap();
    assert_eq!(roots.len(), 1);
    let http = HttpConfig {
        trusted_roots: roots,
        ..HttpConfig::default()
    };
    let mut d = RunningDispatcher::start(s.dispatcher().http(http).build().unwrap());
    let id = s.publish(json!({"url": url, "body": "2"})).await;
    assert_eq!(delivered(&d.next_for(&id).await), 200);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].body, b"2");
    // The receiver offers HTTP/2 (ALPN): deliveries take it.
    assert_eq!(got[0].version, "HTTP/2.0");
    verify_standard(&s.ring, &got[0], s.now_s()).expect("the signature verifies");
    assert_eq!(s.db.task(&id).await.state, TaskState::Succeeded);
    d.stop().await;
}

#[test]
fn trusted_roots_refuse_what_is_not_a_certificate_and_name_it() {
    for (pem, says) in [
        (&b"not a certificate"[..], "holds no certificate"),
        (&b""[..], "holds no certificate"),
        (
            &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
            "holds no certificate",
        ),
    ] {
        let e = TrustedRoots::from_pem(pem, "ca.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.pem") && e.contains(says), "{e}");
        assert!(e.contains("BEGIN CERTIFICATE"), "says what to give: {e}");
    }
    let pki = Pki::new();
    let damaged = "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
    for (pem, says) in [
        (
            "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n".to_owned(),
            "ca.pem is not a valid PEM file",
        ),
        (
            damaged.to_owned(),
            "certificate 1 of ca.pem cannot be trusted as a CA",
        ),
        (
            format!("{}{damaged}", pki.ca_pem),
            "certificate 2 of ca.pem cannot be trusted as a CA",
        ),
    ] {
        let e = TrustedRoots::from_pem(pem.as_bytes(), "ca.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{e}");
    }
    let e = TrustedRoots::from_pem_file(std::path::Path::new("/nonexistent/ca.pem"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read /nonexistent/ca.pem"), "{e}");
    let roots = TrustedRoots::from_pem(pki.ca_pem.as_bytes(), "ca.pem").unwrap();
    assert_eq!(roots.source(), Some("ca.pem"));
    let debug = format!("{roots:?}");
    assert!(
        debug.contains("certificates: 1") && !debug.contains("BEGIN"),
        "{debug}"
    );
}
