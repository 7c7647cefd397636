//! TLS to PostgreSQL with rustls, configured by libpq's URL parameters.
//!
//! | `sslmode`            | encrypted                         | server certificate checked            |
//! |----------------------|-----------------------------------|---------------------------------------|
//! | `disable`            | never                             | —                                     |
//! | `allow`, `prefer`    | when the server offers TLS        | chain, only when `sslrootcert` is set |
//! | `require`            | always                            | chain, only when `sslrootcert` is set |
//! | `verify-ca`          | always                            | chain against `sslrootcert`           |
//! | `verify-full`        | always                            | chain and host name                   |
//!
//! The default is `prefer`, as libpq's; `sslrootcert=system` (the
//! operating system's CA store) makes it `verify-full` and refuses weaker
//! modes, as libpq 16 does. Where Signet differs from libpq, it is
//! stricter or says so: `allow` behaves as `prefer` (TLS when offered);
//! under `prefer` a failed handshake is an error instead of a silent retry
//! in plain text; there are no default certificate files under
//! `~/.postgresql/` (name them with `sslrootcert`, `sslcert`, `sslkey`);
//! and the files are read once, when the store connects (restart to pick
//! up new ones). Connections over a Unix socket never use TLS, as with
//! libpq.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use signet_store::StoreError;
use tokio_postgres::config::{SslMode as DriverSslMode, SslNegotiation};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq TLS parameters Signet refuses, and why. The value is never
/// repeated (`sslpassword` is a secret).
const REFUSED_PARAMS: &[(&str, &str)] = &[
    (
        "sslpassword",
        "encrypted client keys are not supported; decrypt the key (`openssl pkey -in key.pem -out plain.pem`), \
         keep the file readable only by Signet's user, and remove sslpassword",
    ),
    (
        "sslcrl",
        "certificate revocation lists are not supported; remove sslcrl",
    ),
    (
        "sslcrldir",
        "certificate revocation lists are not supported; remove sslcrldir",
    ),
    (
        "sslcertmode",
        "it is not supported: a client certificate is sent whenever sslcert and sslkey are set and the \
         server asks for one; remove sslcertmode",
    ),
    (
        "sslsni",
        "it is not supported: the host name is always sent (SNI) when it is a name; remove sslsni",
    ),
    (
        "sslcompression",
        "TLS compression is not supported; remove sslcompression",
    ),
    (
        "ssl_min_protocol_version",
        "it is not supported: Signet speaks TLS 1.2 and 1.3 only; remove ssl_min_protocol_version",
    ),
    (
        "ssl_max_protocol_version",
        "it is not supported: Signet speaks TLS 1.2 and 1.3 only; remove ssl_max_protocol_version",
    ),
    (
        "requiressl",
        "it is obsolete in libpq; use sslmode=require instead",
    ),
];

/// The ALPN protocol PostgreSQL 17 and later ask for (required with
/// `sslnegotiation=direct`, harmless before).
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// How much TLS a connection uses, libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// As [`SslMode::Prefer`] (libpq tries plain text first; Signet tries TLS first).
    Allow,
    /// TLS when the server offers it, plain text otherwise (the default).
    Prefer,
    /// Always TLS; the certificate is checked only when `sslrootcert` is set.
    Require,
    /// Always TLS, and the server's certificate must chain to `sslrootcert`.
    VerifyCa,
    /// As [`SslMode::VerifyCa`], and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// The default, as libpq's.
    pub const DEFAULT: SslMode = SslMode::Prefer;

    fn parse(value: &str) -> Result<SslMode, StoreError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::invalid(format!(
                    "the PostgreSQL URL has sslmode={other:?}; use one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                )))
            }
        })
    }

    /// The name as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection must be encrypted.
    fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the CA certificates that vouch for the server come from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootCerts {
    /// A PEM file of one or more CA certificates (`sslrootcert=/path`).
    File(PathBuf),
    /// The operating system's CA store (`sslrootcert=system`).
    System,
}

/// The TLS settings of a PostgreSQL URL. Holds paths only, never the
/// content of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    mode: SslMode,
    root: Option<RootCerts>,
    /// `sslcert` and `sslkey`: the client certificate chain and its key.
    client: Option<(PathBuf, PathBuf)>,
    negotiation: SslNegotiation,
    /// Every host is a Unix socket: TLS is not used at all.
    unix_only: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            mode: SslMode::DEFAULT,
            root: None,
            client: None,
            negotiation: SslNegotiation::Postgres,
            unix_only: false,
        }
    }
}

/// The TLS parameters found in a URL's query, decoded, before they are
/// checked together.
#[derive(Default)]
pub(crate) struct TlsParams {
    mode: Option<String>,
    root: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    negotiation: Option<String>,
}

impl TlsParams {
    /// Takes one query parameter. `Ok(true)`: it was a TLS parameter and is
    /// kept here; `Ok(false)`: not a TLS parameter, for the driver.
    pub(crate) fn take(&mut self, key: &str, value: String) -> Result<bool, StoreError> {
        if let Some((name, why)) = REFUSED_PARAMS.iter().find(|(name, _)| *name == key) {
            return Err(StoreError::invalid(format!(
                "the PostgreSQL URL has {name}=…, which Signet does not use: {why}"
            )));
        }
        let slot = match key {
            "sslmode" => &mut self.mode,
            "sslrootcert" => &mut self.root,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            "sslnegotiation" => &mut self.negotiation,
            _ => return Ok(false),
        };
        *slot = Some(value);
        Ok(true)
    }

    /// Checks the parameters together. `unix_only`: every host of the URL
    /// is a Unix socket.
    pub(crate) fn settle(self, unix_only: bool) -> Result<TlsSettings, StoreError> {
        let root = match self.root.as_deref() {
            None => None,
            Some("") => return Err(StoreError::invalid(
                "the PostgreSQL URL has an empty sslrootcert; give the path of the CA certificate \
                     (PEM), or sslrootcert=system for the operating system's CA store",
            )),
            Some("system") => Some(RootCerts::System),
            Some(path) => Some(RootCerts::File(PathBuf::from(path))),
        };
        let mode = match (self.mode.as_deref(), &root) {
            (Some(mode), _) => SslMode::parse(mode)?,
            // libpq 16: the system store means the host name is checked.
            (None, Some(RootCerts::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::DEFAULT,
        };
        if root == Some(RootCerts::System) && mode != SslMode::VerifyFull {
            return Err(StoreError::invalid(format!(
                "the PostgreSQL URL has sslrootcert=system with sslmode={mode}: any certificate a public CA \
                 issued would pass without a host name check. Use sslmode=verify-full (or leave sslmode out)"
            )));
        }
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root.is_none() {
            return Err(StoreError::invalid(format!(
                "the PostgreSQL URL has sslmode={mode} but no sslrootcert; add sslrootcert=/path/to/ca.pem \
                 (the CA that signed the server's certificate, e.g. your provider's CA bundle) or \
                 sslrootcert=system"
            )));
        }
        let client = match (self.cert, self.key) {
            (None, None) => None,
            (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                Some((PathBuf::from(cert), PathBuf::from(key)))
            }
            _ => return Err(StoreError::invalid(
                "the PostgreSQL URL must give sslcert and sslkey together (the client certificate \
                     and its private key, both PEM files), or neither",
            )),
        };
        let negotiation = match self.negotiation.as_deref() {
            None | Some("postgres") => SslNegotiation::Postgres,
            Some("direct") if mode.requires_tls() => SslNegotiation::Direct,
            Some("direct") => {
                return Err(StoreError::invalid(format!(
                    "the PostgreSQL URL has sslnegotiation=direct with sslmode={mode}; direct TLS needs \
                     sslmode=require, verify-ca or verify-full"
                )))
            }
            Some(other) => {
                return Err(StoreError::invalid(format!(
                    "the PostgreSQL URL has sslnegotiation={other:?}; use postgres (the default) or direct"
                )))
            }
        };
        Ok(TlsSettings {
            mode,
            root,
            client,
            negotiation,
            unix_only,
        })
    }
}

impl TlsSettings {
    /// The `sslmode` asked for (or the default).
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Where the CA certificates come from, if `sslrootcert` was given.
    pub fn root(&self) -> Option<&RootCerts> {
        self.root.as_ref()
    }

    /// The client certificate and key files, if given.
    pub fn client_cert(&self) -> Option<(&Path, &Path)> {
        self.client
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
    }

    /// Applies the mode and negotiation to the driver's configuration.
    pub(crate) fn apply(&self, config: &mut tokio_postgres::Config) {
        let mode = match self.mode {
            _ if self.unix_only => DriverSslMode::Disable,
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Allow | SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        };
        config.ssl_mode(mode);
        config.ssl_negotiation(self.negotiation);
    }

    /// The connector every connection of a store uses: reads the
    /// certificate and key files now, so a wrong path fails at start.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::backend("setting up TLS for PostgreSQL", e))?;
        let uses_tls = self.mode != SslMode::Disable && !self.unix_only;
        let roots = match &self.root {
            Some(root) if uses_tls => Some(load_roots(root)?),
            _ => None,
        };
        let builder = match (self.mode, roots) {
            (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots),
            (_, Some(roots)) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { roots, provider })),
            (_, None) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly { provider })),
        };
        let mut config = match &self.client {
            Some((cert, key)) if uses_tls => {
                let chain = load_certs(cert, "sslcert")?;
                let key = load_key(key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    StoreError::invalid(format!(
                        "the client certificate (sslcert) and key (sslkey) cannot be used together: {e}; \
                         give the key that belongs to the certificate"
                    ))
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(MakeRustlsConnect::new(config))
    }
}

fn read_file(path: &Path, param: &str) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| {
        StoreError::invalid(format!(
            "cannot read {param}={} ({e}); check the path in the PostgreSQL URL and that Signet's user \
             may read the file",
            path.display()
        ))
    })
}

fn load_certs(path: &Path, param: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let bytes = read_file(path, param)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            StoreError::invalid(format!(
                "{param}={} is not a valid PEM file ({e}); give certificates in PEM form \
                 (-----BEGIN CERTIFICATE-----)",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(StoreError::invalid(format!(
            "{param}={} holds no certificate; give certificates in PEM form (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, StoreError> {
    let bytes = zeroize::Zeroizing::new(read_file(path, "sslkey")?);
    // The parser's error may quote the file: say only that it failed.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        StoreError::invalid(format!(
            "sslkey={} holds no usable private key; give an unencrypted PEM key (-----BEGIN PRIVATE KEY-----, \
             RSA PRIVATE KEY or EC PRIVATE KEY)",
            path.display()
        ))
    })
}

fn load_roots(root: &RootCerts) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match root {
        RootCerts::File(path) => {
            for cert in load_certs(path, "sslrootcert")? {
                store.add(cert).map_err(|e| {
                    StoreError::invalid(format!(
                        "sslrootcert={} holds a certificate that cannot be a trust anchor ({e}); give \
                         the CA's certificate",
                        path.display()
                    ))
                })?;
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(String::new, |e| format!(" ({e})"));
                return Err(StoreError::invalid(format!(
                    "sslrootcert=system found no CA certificates in the operating system's store{why}; \
                     install the CA certificates package, or give sslrootcert=/path/to/ca.pem"
                )));
            }
        }
    }
    Ok(store)
}

/// `verify-ca` (and `require`/`prefer` with `sslrootcert`): the server's
/// certificate must chain to one of `roots`; the name in it is not looked at.
#[derive(Debug)]
struct ChainOnly {
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`, as libpq: the traffic is
/// encrypted, but any certificate is accepted, so an active attacker can
/// sit in between. The handshake's signatures are still checked against
/// the certificate presented.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Says what a failed TLS connection means and which setting to change,
/// or `None` when `e` is not about TLS.
pub(crate) fn explain_tls_failure(e: &tokio_postgres::Error) -> Option<String> {
    use std::error::Error as _;
    let mut cause = e.source();
    while let Some(c) = cause {
        let tls = c.downcast_ref::<rustls::Error>().or_else(|| {
            c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return Some(explain_rustls(tls));
        }
        // The driver's own words when the server answers "no TLS here".
        if c.to_string() == "server does not support TLS" {
            return Some(
                "the PostgreSQL server does not offer TLS, and the URL's sslmode (require, verify-ca \
                 or verify-full) asks for it; turn ssl on in the server, or use sslmode=prefer or \
                 disable only on a network you trust"
                    .to_owned(),
            );
        }
        cause = c.source();
    }
    None
}

fn explain_rustls(e: &rustls::Error) -> String {
    use rustls::{AlertDescription, CertificateError};
    match e {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => format!(
            "the PostgreSQL server's certificate is not signed by a CA in sslrootcert ({e}); set \
             sslrootcert to the CA that signed the server's certificate (your provider's CA bundle)"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the PostgreSQL server's certificate does not name the host in the URL ({e}); connect with \
             a host name the certificate names, or use sslmode=verify-ca to check the CA only"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => format!(
            "the PostgreSQL server's certificate is outside its validity period ({e}); renew it on the \
             server, or check this machine's clock"
        ),
        rustls::Error::InvalidCertificate(_) => format!(
            "the PostgreSQL server's certificate was refused ({e}); check sslrootcert and the server's \
             certificate"
        ),
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => format!(
            "the PostgreSQL server refused this client's certificate ({e}); set sslcert and sslkey to a \
             certificate the server's CA signed"
        ),
        other => format!("the TLS handshake with PostgreSQL failed ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(pairs: &[(&str, &str)]) -> Result<TlsSettings, StoreError> {
        let mut p = TlsParams::default();
        for (k, v) in pairs {
            assert!(p.take(k, (*v).to_owned())?, "{k} is a TLS parameter");
        }
        p.settle(false)
    }

    #[test]
    fn defaults_follow_libpq() {
        assert_eq!(settle(&[]).unwrap().mode(), SslMode::Prefer);
        let s = settle(&[("sslrootcert", "system")]).unwrap();
        assert_eq!(s.mode(), SslMode::VerifyFull);
        assert_eq!(s.root(), Some(&RootCerts::System));
        for mode in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let s = settle(&[("sslmode", mode), ("sslrootcert", "/ca.pem")]).unwrap();
            assert_eq!(s.mode().as_str(), mode);
        }
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let e = settle(&[("sslmode", "verify-full")]).unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        let e = settle(&[("sslmode", "require"), ("sslrootcert", "system")]).unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
        let e = settle(&[("sslmode", "on")]).unwrap_err();
        assert!(e.to_string().contains("verify-ca"), "{e}");
        let e = settle(&[("sslcert", "/c.pem")]).unwrap_err();
        assert!(e.to_string().contains("sslkey"), "{e}");
        let e = settle(&[("sslnegotiation", "direct")]).unwrap_err();
        assert!(e.to_string().contains("require"), "{e}");
        assert!(settle(&[("sslnegotiation", "direct"), ("sslmode", "require")]).is_ok());
        let mut p = TlsParams::default();
        let e = p.take("sslpassword", "hunter2".into()).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("decrypt"), "{e}");
        assert!(!p.take("application_name", "x".into()).unwrap());
    }

    #[test]
    fn unix_sockets_never_use_tls() {
        let mut p = TlsParams::default();
        p.take("sslmode", "require".into()).unwrap();
        let s = p.settle(true).unwrap();
        let mut config = tokio_postgres::Config::new();
        s.apply(&mut config);
        assert_eq!(config.get_ssl_mode(), DriverSslMode::Disable);
        let mut config = tokio_postgres::Config::new();
        settle(&[("sslmode", "verify-ca"), ("sslrootcert", "/x")])
            .unwrap()
            .apply(&mut config);
        assert_eq!(config.get_ssl_mode(), DriverSslMode::Require);
    }

    #[test]
    fn missing_files_are_named() {
        let s = settle(&[
            ("sslmode", "verify-full"),
            ("sslrootcert", "/nonexistent/ca.pem"),
        ])
        .unwrap();
        let e = s.connector().err().expect("a missing file is refused");
        assert!(
            e.to_string().contains("sslrootcert=/nonexistent/ca.pem"),
            "{e}"
        );
        // With TLS off the files are not read.
        let s = settle(&[
            ("sslmode", "disable"),
            ("sslrootcert", "/nonexistent/ca.pem"),
        ])
        .unwrap();
        assert!(s.connector().is_ok());
    }

    #[test]
    fn bad_key_files_are_not_quoted() {
        let dir = std::env::temp_dir().join(format!("signet-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw\n",
        )
        .unwrap();
        let e = load_key(&key).expect_err("a truncated key is refused");
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        assert!(e.to_string().contains("sslkey="), "{e}");
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not pem at all\n").unwrap();
        let e = load_certs(&cert, "sslrootcert").unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
