//! The HTTP client that sends deliveries.
//!
//! One [`reqwest`] client (rustls, connection pooling) with the safety rules
//! every delivery needs: no redirects followed (a `3xx` is a failed attempt
//! that names the `Location`), no proxies from the environment (a proxy
//! would connect to what the SSRF guard never saw), names resolved by the
//! [`GuardedResolver`], certificates checked against the public web roots
//! and any [`TrustedRoots`] given, connect and total timeouts, and the
//! response body read only up to a cap, of which the first
//! [`MAX_ATTEMPT_BODY_BYTES`](signet_store::MAX_ATTEMPT_BODY_BYTES) are kept.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use signet_store::delivery::MAX_ATTEMPT_ERROR_LEN;

use crate::error::RuntimeError;
use crate::ssrf::{find_refusal, GuardedResolver, Refusal, SsrfPolicy};

/// Default time to establish a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for a whole attempt: connect, send, and read the response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most response bytes read (the rest is not read; the connection
/// is then closed rather than reused).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Default longest `Retry-After` honoured; longer ones are cut to this.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("Signet/", env!("CARGO_PKG_VERSION"), " (webhook delivery)");

/// Certificate authorities trusted for HTTPS deliveries, callbacks and
/// push requests besides the public web PKI roots: the private CA of
/// receivers inside a company network. Empty by default.
#[derive(Clone, Default)]
pub struct TrustedRoots {
    certs: Vec<reqwest::Certificate>,
    /// Where they were read from, for `Debug`.
    from: Option<String>,
}

impl TrustedRoots {
    /// Reads a PEM file of one or more certificates
    /// (`-----BEGIN CERTIFICATE-----`).
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, RuntimeError> {
        let pem = std::fs::read(path).map_err(|e| {
            RuntimeError::Config(format!(
                "cannot read {} ({e}); check the path and that Signet's user may read the file",
                path.display()
            ))
        })?;
        Self::from_pem(&pem, &path.display().to_string())
    }

    /// One or more CA certificates in PEM form; `from` names them in
    /// errors. Each is checked as rustls will use it, so a damaged one is
    /// refused here, by its place in the file, not when the client is built.
    pub fn from_pem(pem: &[u8], from: &str) -> Result<Self, RuntimeError> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;
        const GIVE: &str = "give CA certificates in PEM form (-----BEGIN CERTIFICATE-----)";
        let ders = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                RuntimeError::Config(format!("{from} is not a valid PEM file ({e}); {GIVE}"))
            })?;
        if ders.is_empty() {
            return Err(RuntimeError::Config(format!(
                "{from} holds no certificate; {GIVE}"
            )));
        }
        let mut check = rustls::RootCertStore::empty();
        let mut certs = Vec::with_capacity(ders.len());
        for (n, der) in (1..).zip(ders) {
            let refused = |e: &dyn std::fmt::Display| {
                RuntimeError::Config(format!(
                    "certificate {n} of {from} cannot be trusted as a CA ({e}); {GIVE}"
                ))
            };
            certs.push(reqwest::Certificate::from_der(&der).map_err(|e| refused(&e))?);
            check.add(der).map_err(|e| refused(&e))?;
        }
        Ok(Self {
            certs,
            from: Some(from.to_owned()),
        })
    }

    /// Where the certificates were read from (`None` when there are none).
    pub fn source(&self) -> Option<&str> {
        self.from.as_deref()
    }

    /// How many certificates there are.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether there are none (only the public roots are trusted).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

impl std::fmt::Debug for TrustedRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedRoots")
            .field("from", &self.from)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

/// How deliveries are sent.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Time for the whole attempt.
    pub request_timeout: Duration,
    /// Most response bytes read.
    pub max_response_bytes: usize,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    /// Certificate authorities trusted besides the public roots.
    pub trusted_roots: TrustedRoots,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            trusted_roots: TrustedRoots::default(),
        }
    }
}

/// One request to send.
#[derive(Debug)]
pub(crate) struct OutgoingRequest {
    /// The method.
    pub method: reqwest::Method,
    /// The URL.
    pub url: url::Url,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// This request's time for the whole attempt, when not the client's
    /// [`HttpConfig::request_timeout`] (a push binding's `timeout_ms`).
    pub timeout: Option<Duration>,
    /// Most response body bytes to keep: a delivery keeps what an attempt
    /// record holds ([`MAX_ATTEMPT_BODY_BYTES`](signet_store::MAX_ATTEMPT_BODY_BYTES)), a push the whole answer
    /// up to the result limit. The client reads up to the larger of this
    /// and [`HttpConfig::max_response_bytes`].
    pub keep_body: usize,
}

/// How an attempt went.
#[derive(Debug)]
pub(crate) enum AttemptOutcome {
    /// A response arrived.
    Response {
        /// Its status.
        status: u16,
        /// Its `Retry-After`, if it had a valid one.
        retry_after: Option<RetryAfter>,
        /// Its `Location` (shown for redirects, which are not followed).
        location: Option<String>,
        /// Its headers (a push checks a signed answer's).
        headers: reqwest::header::HeaderMap,
        /// The first bytes of its body, up to the request's `keep_body`.
        body: Vec<u8>,
        /// Whether the body was read without error: `false` when the
        /// connection broke or timed out part-way (a push's answer is then
        /// not believed; a message's status still stands). A body only cut
        /// at the read limit counts as complete.
        body_complete: bool,
        /// From sending to the end of what was read.
        latency: Duration,
    },
    /// The SSRF guard refused the address.
    Refused(Refusal),
    /// No response: connect error, timeout, TLS failure…
    Failed {
        /// What went wrong, for people.
        error: String,
        /// Until the failure.
        latency: Duration,
    },
}

/// A `Retry-After` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryAfter {
    /// A number of seconds.
    Seconds(u64),
    /// An HTTP date.
    At(SystemTime),
}

impl RetryAfter {
    /// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110).
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits to be a sensible wait: treat as very long.
            return Some(RetryAfter::Seconds(value.parse().unwrap_or(u64::MAX)));
        }
        httpdate::parse_http_date(value).ok().map(RetryAfter::At)
    }

    /// The wait from `now_ms`, at most `cap` (a date in the past is 0).
    pub(crate) fn wait(self, now_ms: i64, cap: Duration) -> Duration {
        let wait = match self {
            RetryAfter::Seconds(s) => Duration::from_secs(s),
            RetryAfter::At(t) => {
                let at_ms = t
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                Duration::from_millis(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0))
            }
        };
        wait.min(cap)
    }
}

/// Sends deliveries. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    policy: SsrfPolicy,
    config: Arc<HttpConfig>,
}

impl HttpClient {
    /// A client with `config`, connecting only where `policy` allows.
    pub(crate) fn new(config: HttpConfig, policy: SsrfPolicy) -> Result<Self, RuntimeError> {
        if config.connect_timeout.is_zero() || config.request_timeout.is_zero() {
            return Err(RuntimeError::Config(
                "delivery timeouts must be longer than 0".into(),
            ));
        }
        let builder = config
            .trusted_roots
            .certs
            .iter()
            .fold(reqwest::Client::builder(), |b, cert| {
                b.add_root_certificate(cert.clone())
            });
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(USER_AGENT)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| RuntimeError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            policy,
            config: Arc::new(config),
        })
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The SSRF policy.
    pub(crate) fn policy(&self) -> &SsrfPolicy {
        &self.policy
    }

    /// Sends one request. Never fails: every way it can go wrong is an
    /// [`AttemptOutcome`].
    pub(crate) async fn send(&self, request: OutgoingRequest) -> AttemptOutcome {
        if let Err(refusal) = self.policy.check_url(&request.url) {
            return AttemptOutcome::Refused(refusal);
        }
        let started = Instant::now();
        let mut builder = self
            .client
            .request(request.method, request.url)
            .body(request.body);
        if let Some(timeout) = request.timeout {
            builder = builder.timeout(timeout);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return self.failed(&e, started, request.timeout),
        };
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .as_deref()
            .and_then(RetryAfter::parse);
        let location = header(reqwest::header::LOCATION);
        // Taken, not copied: the body is read from the response below.
        let headers = std::mem::take(response.headers_mut());
        let mut kept = Vec::new();
        let mut read = 0usize;
        let mut body_complete = true;
        let read_limit = self.config.max_response_bytes.max(request.keep_body);
        loop {
            if read >= read_limit {
                break;
            }
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read = read.saturating_add(chunk.len());
                    let room = request.keep_body.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                // The status arrived; the caller judges a body cut short.
                Err(e) => {
                    tracing::debug!(error = %e, "response body ended early");
                    body_complete = false;
                    break;
                }
            }
        }
        AttemptOutcome::Response {
            status,
            retry_after,
            location,
            headers,
            body: kept,
            body_complete,
            latency: started.elapsed(),
        }
    }

    fn failed(
        &self,
        e: &reqwest::Error,
        started: Instant,
        timeout: Option<Duration>,
    ) -> AttemptOutcome {
        if let Some(refusal) = find_refusal(e) {
            return AttemptOutcome::Refused(refusal.clone());
        }
        let what = if e.is_timeout() {
            format!(
                "timed out (connect {:?}, total {:?})",
                self.config.connect_timeout,
                timeout.unwrap_or(self.config.request_timeout)
            )
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else {
            "request failed".to_owned()
        };
        AttemptOutcome::Failed {
            error: clip(&format!("{what}: {}", error_text(e))),
            latency: started.elapsed(),
        }
    }
}

/// A failed request's error chain with the URL's query left out: reqwest
/// names the URL, its query may hold the receiver's credentials, and the
/// attempt's error is shown to every API key (the API shows a message's
/// URL query to admin keys only).
fn error_text(e: &reqwest::Error) -> String {
    let text = chain(e);
    match e.url() {
        Some(url) if url.query().is_some() => {
            let mut shown = url.clone();
            shown.set_query(None);
            text.replace(url.as_str(), shown.as_str())
        }
        _ => text,
    }
}

/// An error and its sources, joined with `: `, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// Cuts text to what an attempt record keeps.
pub(crate) fn clip(text: &str) -> String {
    if text.len() <= MAX_ATTEMPT_ERROR_LEN {
        return text.to_owned();
    }
    let mut end = MAX_ATTEMPT_ERROR_LEN - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_dates_and_is_capped() {
        let cap = Duration::from_secs(3600);
        assert_eq!(
            RetryAfter::parse("120").unwrap().wait(0, cap),
            Duration::from_secs(120)
        );
        assert_eq!(RetryAfter::parse(" 7 "), Some(RetryAfter::Seconds(7)));
        assert_eq!(
            RetryAfter::parse("99999999999999999999999")
                .unwrap()
                .wait(0, cap),
            cap
        );
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s.
        let date = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            date.wait(784_111_777_000 - 30_000, cap),
            Duration::from_secs(30)
        );
        assert_eq!(date.wait(784_111_777_000 + 5_000, cap), Duration::ZERO);
        for bad in ["", "-1", "soon", "1.5"] {
            assert_eq!(RetryAfter::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn request_errors_leave_the_url_query_out() {
        // Port 1 on loopback: refused at once.
        let e = reqwest::Client::new()
            .get("http://127.0.0.1:1/hook?code=s3cret&x=1")
            .send()
            .await
            .unwrap_err();
        assert!(chain(&e).contains("s3cret"), "reqwest names the URL: {e}");
        let text = error_text(&e);
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("127.0.0.1:1/hook"), "{text}");
    }

    #[test]
    fn long_errors_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(MAX_ATTEMPT_ERROR_LEN);
        let c = clip(&long);
        assert!(c.len() <= MAX_ATTEMPT_ERROR_LEN && c.ends_with("..."));
        assert_eq!(clip("short"), "short");
    }
}
