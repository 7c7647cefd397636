//! Where a command's requests go: the `/v1` API of a running server
//! (`--url` with `--api-key`), or the same API in process on the database
//! (`--database-url`, the default).
//!
//! A command that reads or changes state builds its request once (method,
//! path, query, JSON body) and prints the JSON answer once. On the
//! database the request is served by [`signet_server::operator_app`]: the
//! server's own routes, checks and views over the local store, as admin,
//! so both modes answer with the same JSON and the same refusals, and the
//! CLI describes nothing the server does not.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use axum::http::{Method, StatusCode};
use clap::parser::ValueSource;
use serde_json::Value;
use signet_runtime::{SsrfPolicy, SystemClock};
use signet_server::config::DeliveryConfig;
use signet_server::{AppState, ServerConfig, Signing};
use signet_sign::KeyRing;
use zeroize::Zeroizing;

use crate::commands::Negative;
use crate::store_url::DatabaseArgs;

/// The variable `--url` reads.
pub(crate) const URL_VAR: &str = "SIGNET_URL";

/// The variable `--api-key` reads: the recommended way to give the key.
const KEY_VAR: &str = "SIGNET_API_KEY";

/// How long a request to a server may take before the command gives up.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a request in process may take: a re-seal of many targets is
/// one request, so longer than any server would allow.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// `--database-url`, or `--url` with `--api-key`: the flags of every
/// command that works either on the database or against a server.
#[derive(clap::Args)]
pub(crate) struct ApiArgs {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    /// Work against the Signet server at this URL (https://host:8787)
    /// instead of on the database; needs an API key. Plain http:// only to
    /// this machine, unless --insecure-http.
    #[arg(long = "url", env = URL_VAR, value_name = "URL")]
    pub(crate) server_url: Option<String>,
    /// The API key (sk_…) for --url: a read key for reads, an admin key for
    /// changes. A secret: never printed. Prefer the variable or
    /// --api-key-file: a flag shows in the process list and shell history;
    /// `-` reads the key from stdin.
    #[arg(
        long,
        env = KEY_VAR,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub(crate) api_key: Option<String>,
    /// Read the API key for --url from this file (surrounding whitespace
    /// ignored); keep it readable by you only (chmod 600).
    #[arg(long, value_name = "PATH")]
    pub(crate) api_key_file: Option<PathBuf>,
    /// Allow --url to be plain http:// to another machine: the API key then
    /// crosses the network unencrypted, readable by anyone on the path.
    #[arg(long)]
    pub(crate) insecure_http: bool,
}

impl fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiArgs")
            .field("db", &self.db)
            .field("server_url", &self.server_url.as_deref().map(shown))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_file", &self.api_key_file)
            .field("insecure_http", &self.insecure_http)
            .finish()
    }
}

/// Where the user gave the flags that pick the API: on the command line or
/// in the environment (`None`: not given, or only the default).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Given {
    database_url: Option<ValueSource>,
    api_key: Option<ValueSource>,
    metrics_token: Option<ValueSource>,
}

/// Whether `serve --metrics-token` was given on the command line (not by
/// its variable).
pub(crate) fn metrics_token_on_argv() -> bool {
    GIVEN.get().and_then(|g| g.metrics_token) == Some(ValueSource::CommandLine)
}

static GIVEN: OnceLock<Given> = OnceLock::new();

/// Notes where the command's API flags came from (clap's parse of the
/// whole command line), for [`ApiArgs::open`].
pub(crate) fn note_given(matches: &clap::ArgMatches) {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    let source = |id: &str| {
        m.ids()
            .any(|i| i == id)
            .then(|| m.value_source(id))
            .flatten()
            .filter(|s| *s != ValueSource::DefaultValue)
    };
    let _ = GIVEN.set(Given {
        database_url: source("database_url"),
        api_key: source("api_key"),
        metrics_token: source("metrics_token"),
    });
}

/// The flag, or the variable, a value came from.
fn named(source: ValueSource, flag: &'static str, var: &'static str) -> &'static str {
    if source == ValueSource::EnvVariable {
        var
    } else {
        flag
    }
}

/// The warning for a secret given as a flag: other users see the command
/// line (`ps`), and the shell keeps it in its history.
pub(crate) fn secret_on_argv_warning(flag: &str, instead: &str) -> String {
    format!("WARN {flag} on the command line shows in the process list (ps) and in shell history; prefer {instead}")
}

/// A URL safe to print: without the user and password a `user:pass@` part
/// carries (a URL that does not parse is redacted as database URLs are).
pub(crate) fn shown(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) if parsed.has_host() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            let text = parsed.to_string();
            // Keep the form the user typed: no added trailing slash.
            match text.strip_suffix('/') {
                Some(t) if !url.trim().ends_with('/') => t.to_owned(),
                _ => text,
            }
        }
        _ => crate::store_url::redact(url),
    }
}

/// What a command needs of the signing keys and master key when it works
/// on the database (a server has its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Nothing: the keys are not loaded (no key file is created).
    None,
    /// If they load: without them, what needs them is refused by the route
    /// and the rest is shown; a warning says why.
    IfAvailable,
    /// They must load, or the command stops with the loader's message.
    Required,
    /// None, on purpose (`--unsigned`): work is stored unsigned.
    Unsigned,
}

impl ApiArgs {
    /// The API these flags name. `keys` says what a command on the
    /// database needs loaded.
    pub(crate) async fn open(&self, keys: Keys) -> anyhow::Result<Api> {
        let given = GIVEN.get().copied().unwrap_or_default();
        if let (Some(url), Some(db)) = (&self.server_url, given.database_url) {
            let db_name = named(db, "--database-url", "SIGNET_DATABASE_URL");
            bail!(
                "both a server (--url or {URL_VAR}: {}) and a database ({db_name}: {}) are given; a command works on one of them: drop {db_name} to work against the server, or --url (unset {URL_VAR}) to work on the database",
                shown(url),
                crate::store_url::redact(&self.db.database_url)
            );
        }
        let key = self.key(given.api_key)?;
        match (&self.server_url, key) {
            (Some(url), Some(key)) => Remote::new(url, &key, self.insecure_http).map(Api::Remote),
            (Some(url), None) => bail!(
                "--url {} needs an API key: set {KEY_VAR}=sk_… (or give --api-key-file PATH); `signet api-keys create` on the server's database makes one",
                shown(url)
            ),
            (None, Some(_)) => bail!(
                "an API key is given (--api-key, --api-key-file or {KEY_VAR}) but no server: give --url (or {URL_VAR}) to work against a server, or drop the key to work on the database"
            ),
            (None, None) => {
                let database = crate::store_url::redact(&self.db.database_url);
                local(&self.db, keys)
                    .await
                    .map(|router| Api::Local { router, database })
            }
        }
    }

    /// The API key from --api-key (`-`: stdin), --api-key-file or the
    /// variable, given as `source`; warns when it is on the command line.
    fn key(&self, source: Option<ValueSource>) -> anyhow::Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.api_key_file {
            if self.api_key.is_some() {
                let other = source.map_or("--api-key", |s| named(s, "--api-key", KEY_VAR));
                bail!("both --api-key-file and {other} give an API key; give only one");
            }
            return read_key_file(path).map(Some);
        }
        match self.api_key.as_deref() {
            None => Ok(None),
            Some("-") => {
                let mut text = Zeroizing::new(String::new());
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("--api-key -: cannot read the key from stdin")?;
                if text.trim().is_empty() {
                    bail!("--api-key -: stdin gave no key; pipe it, e.g. `signet … --api-key - < key-file`, or set {KEY_VAR}");
                }
                Ok(Some(Zeroizing::new(text.trim().to_owned())))
            }
            Some(key) => {
                if source == Some(ValueSource::CommandLine) {
                    eprintln!(
                        "{}",
                        secret_on_argv_warning(
                            "--api-key",
                            &format!("{KEY_VAR}, --api-key-file PATH or --api-key - (stdin)")
                        )
                    );
                }
                Ok(Some(Zeroizing::new(key.to_owned())))
            }
        }
    }
}

/// The API key in the file at `path`, trimmed; warns when other users can
/// read the file, as for the key file.
fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "--api-key-file: cannot read {}: {e}; give a file holding the sk_… key",
            path.display()
        )
    })?);
    if let Some(warning) = signet_runtime::shared_secret_file(path, "the API key file") {
        eprintln!("WARN {warning}");
    }
    if text.trim().is_empty() {
        bail!(
            "--api-key-file: {} is empty; put the sk_… key the server printed or `signet api-keys create` made in it",
            path.display()
        );
    }
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// The API a command talks to.
pub(crate) enum Api {
    /// The server's routes in process, on the database (its URL redacted).
    Local {
        router: axum::Router,
        database: String,
    },
    /// A server over HTTP.
    Remote(Remote),
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Api::Local { database, .. } => f
                .debug_struct("Api::Local")
                .field("database", database)
                .finish(),
            Api::Remote(r) => f.debug_tuple("Api::Remote").field(r).finish(),
        }
    }
}

/// A server over HTTP, with its key.
pub(crate) struct Remote {
    base: String,
    key: Zeroizing<String>,
    client: reqwest::Client,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Remote {
    /// The server at `url`, with `key`. Plain `http://` only to this
    /// machine, unless `insecure_http` (said loudly): the key is a bearer
    /// token, readable by anyone on the path.
    fn new(url: &str, key: &str, insecure_http: bool) -> anyhow::Result<Self> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let show = shown(&base);
        let parsed = url::Url::parse(&base).map_err(|e| {
            anyhow!("--url {show:?} is not a URL ({e}); give the server's address, e.g. https://signet.example.com or http://127.0.0.1:8787")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            bail!("--url {show:?} is not an http:// or https:// URL; give the server's address, e.g. https://signet.example.com or http://127.0.0.1:8787");
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            bail!("--url {show:?} has a query or fragment; give only the server's address, e.g. http://127.0.0.1:8787");
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            bail!("--url {show:?} carries a user or password; the CLI authenticates with the API key only: give the address without them ({show})");
        }
        if parsed.scheme() == "http" && !is_loopback(&parsed) {
            if !insecure_http {
                bail!("--url {show:?} is plain http:// to another machine: the API key would cross the network unencrypted; use https://, or add --insecure-http if the network between is trusted");
            }
            eprintln!("WARN --insecure-http: the API key goes to {show} over plain http://, readable by anyone on the path; use https://");
        }
        if key.trim().is_empty() {
            bail!("the API key ({KEY_VAR}, --api-key-file or --api-key) is empty; give the sk_… key the server printed or `signet api-keys create` made");
        }
        let client = reqwest::Client::builder()
            .timeout(REMOTE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("signet-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base,
            key: Zeroizing::new(key.trim().to_owned()),
            client,
        })
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The server's routes on the database `db` names, with the keys `keys`
/// asks for.
async fn local(db: &DatabaseArgs, keys: Keys) -> anyhow::Result<axum::Router> {
    let loaded = match keys {
        Keys::None => None,
        Keys::Unsigned => {
            let state_of = |signing| local_state(db, signing, None);
            return Ok(signet_server::operator_app(
                state_of(Signing::off()).await?,
                cli_actor(),
            ));
        }
        Keys::Required => Some(crate::commands::keys::load(db, false)?),
        Keys::IfAvailable => match crate::commands::keys::load(db, false) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("WARN {e:#}; what needs the keys is refused, the rest is shown");
                None
            }
        },
    };
    let (signing, master_key) = match loaded {
        Some(k) => (Signing::from(k.signing), k.master_key),
        // Nothing is ever stored unsigned for want of keys: signing stays
        // required, so an enqueue is refused rather than stored unsigned.
        None => (
            Signing {
                ring: KeyRing::empty(),
                required: true,
                dev: false,
            },
            None,
        ),
    };
    let state = local_state(db, signing, master_key).await?;
    Ok(signet_server::operator_app(state, cli_actor()))
}

/// The server's state on the database `db` names, signing with `signing`,
/// opening target secrets with `master_key`.
async fn local_state(
    db: &DatabaseArgs,
    signing: Signing,
    master_key: Option<signet_sign::sealed::MasterKey>,
) -> anyhow::Result<AppState> {
    // The nodes deliver under this allow-list; a target's URL is checked
    // against the same one here.
    let allowed = std::env::var("SIGNET_ALLOWED_TARGET_CIDRS").unwrap_or_default();
    let ssrf = SsrfPolicy::parse_allowed(&allowed)
        .map_err(|e| anyhow!("SIGNET_ALLOWED_TARGET_CIDRS: {e}"))?;
    let config = ServerConfig {
        // One operator, in process: no limiter to share.
        rate_limit_per_key: None,
        rate_limit_per_ip: None,
        request_timeout: LOCAL_TIMEOUT,
        ..ServerConfig::default()
    };
    let delivery = DeliveryConfig {
        master_key,
        ssrf,
        ..DeliveryConfig::default()
    };
    Ok(AppState::with_delivery(
        db.open().await?,
        config,
        signing,
        signet_server::serve::detached_metrics_handle(),
        std::sync::Arc::new(SystemClock),
        delivery,
    ))
}

/// Who the CLI records as the actor of what it does on the database: a
/// server records the API key instead.
pub(crate) fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".to_owned());
    let user: String = user.chars().take(64).collect();
    format!("cli ({user})")
}

/// A request: method, path under the server, query pairs, JSON body.
#[derive(Debug)]
pub(crate) struct Call {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    /// The JSON body, serialised once (raw args stay byte for byte).
    body: Option<Vec<u8>>,
}

impl Call {
    /// `GET path`.
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST path`.
    pub(crate) fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    /// `PATCH path`.
    pub(crate) fn patch(path: impl Into<String>) -> Self {
        Self::new(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    /// Adds `name=value` to the query when `value` is given.
    pub(crate) fn query(mut self, name: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((name.to_owned(), v.to_string()));
        }
        self
    }

    /// The JSON body: `body` serialised (a `RawValue` in it is sent
    /// byte for byte).
    pub(crate) fn body(mut self, body: &impl serde::Serialize) -> anyhow::Result<Self> {
        self.body = Some(serde_json::to_vec(body)?);
        Ok(self)
    }

    pub(crate) fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.query)
            .finish();
        format!("{}?{query}", self.path)
    }
}

/// A path segment (an id or name a user typed), percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Api {
    /// Where requests go, for a prompt: `on the server at URL` or `in the
    /// database URL` (passwords never shown).
    pub(crate) fn destination(&self) -> String {
        match self {
            Api::Local { database, .. } => format!("in the database {database}"),
            Api::Remote(r) => format!("on the server at {}", r.base),
        }
    }

    /// Sends `call` and returns the JSON answer; a refusal is an error that
    /// carries the server's message (a `404` a negative answer, exit 1).
    pub(crate) async fn send(&self, call: Call) -> anyhow::Result<Value> {
        self.send_for_status(call).await.map(|(_, v)| v)
    }

    /// Like [`Api::send`], with the answer's status (`201` created or `200`
    /// already there, `204` nothing to say: JSON `null`).
    pub(crate) async fn send_for_status(&self, call: Call) -> anyhow::Result<(StatusCode, Value)> {
        let (status, body) = match self {
            Api::Local { router, .. } => local_send(router, &call).await?,
            Api::Remote(remote) => remote_send(remote, &call).await?,
        };
        if status.is_success() {
            if body.is_empty() {
                return Ok((status, Value::Null));
            }
            let value = serde_json::from_slice(&body).with_context(|| {
                format!(
                    "{} {} answered {status} with a body that is not JSON",
                    call.method, call.path
                )
            })?;
            return Ok((status, value));
        }
        Err(self.refusal(&call, status, &body))
    }

    /// The error for a refused request: the server's message, and what to
    /// do about the refusals that come from the flags (the key, the URL).
    fn refusal(&self, call: &Call, status: StatusCode, body: &[u8]) -> anyhow::Error {
        let (code, message) = error_body(body).unwrap_or_else(|| {
            (
                String::new(),
                format!(
                    "{} {} answered {status}: {}",
                    call.method,
                    call.path,
                    crate::output::truncate(&String::from_utf8_lossy(body), 200)
                ),
            )
        });
        let message = crate::output::printable(&message);
        let server = match self {
            Api::Remote(r) => r.base.as_str(),
            Api::Local { .. } => "",
        };
        match status {
            StatusCode::UNAUTHORIZED => anyhow!(
                "the server at {server} refused the API key (401 {code}): {message}; check --api-key (or SIGNET_API_KEY)"
            ),
            StatusCode::FORBIDDEN => anyhow!(
                "the server at {server} refused this to the API key (403 {code}): {message}; use an admin key"
            ),
            StatusCode::NOT_FOUND => Negative(message).into(),
            StatusCode::TOO_MANY_REQUESTS => {
                anyhow!("the server at {server} is rate limiting this key (429): {message}; try again shortly")
            }
            _ if server.is_empty() => anyhow!(message),
            _ => anyhow!("{message} ({status} {code} from {server})"),
        }
    }
}

/// The `{"error": {"code", "message"}}` of a refusal.
fn error_body(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    Some((
        e.get("code")?.as_str()?.to_owned(),
        e.get("message")?.as_str()?.to_owned(),
    ))
}

async fn local_send(router: &axum::Router, call: &Call) -> anyhow::Result<(StatusCode, Vec<u8>)> {
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::builder()
        .method(call.method.clone())
        .uri(call.path_and_query());
    let body = match &call.body {
        Some(bytes) => {
            request = request.header("content-type", "application/json");
            axum::body::Body::from(bytes.clone())
        }
        None => axum::body::Body::empty(),
    };
    let request = request
        .body(body)
        .map_err(|e| anyhow!("cannot build the request {}: {e}", call.path))?;
    let response = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| anyhow!("reading the answer to {}: {e}", call.path))?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}

async fn remote_send(remote: &Remote, call: &Call) -> anyhow::Result<(StatusCode, Vec<u8>)> {
    let url = format!("{}{}", remote.base, call.path_and_query());
    let method =
        reqwest::Method::from_bytes(call.method.as_str().as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let mut request = remote
        .client
        .request(method, &url)
        .bearer_auth(remote.key.as_str());
    if let Some(bytes) = &call.body {
        request = request
            .header("content-type", "application/json")
            .body(bytes.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| unreachable_server(remote, &e))?;
    let status = StatusCode::from_u16(response.status().as_u16())
        .map_err(|e| anyhow!("the server at {} answered an odd status: {e}", remote.base))?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable_server(remote, &e))?;
    Ok((status, bytes.to_vec()))
}

/// A request that got no answer: says which server, and why (the causes,
/// never the key).
fn unreachable_server(remote: &Remote, e: &reqwest::Error) -> anyhow::Error {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let why = causes.last().cloned().unwrap_or_else(|| e.to_string());
    let hint = if e.is_timeout() {
        format!("no answer within {} s", REMOTE_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "is `signet serve` running there, and is --url (SIGNET_URL) right?".to_owned()
    } else {
        "check --url (SIGNET_URL)".to_owned()
    };
    anyhow!(
        "cannot reach the Signet server at {}: {why}; {hint}",
        remote.base
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_segments_are_encoded() {
        let call = Call::get("/v1/tasks")
            .query("queue", Some("a b&c"))
            .query("state", None::<String>);
        assert_eq!(call.path_and_query(), "/v1/tasks?queue=a+b%26c");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn the_key_is_never_in_debug() {
        let remote = Remote::new("http://127.0.0.1:1", "sk_very_secret", false).unwrap();
        let text = format!("{:?}", Api::Remote(remote));
        assert!(!text.contains("sk_very_secret"), "{text}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
    }

    #[test]
    fn bad_urls_are_refused_with_the_shape_expected() {
        for bad in ["127.0.0.1:8787", "ftp://x", "http://h/?q=1", "nonsense"] {
            let err = Remote::new(bad, "sk_x", false).unwrap_err().to_string();
            assert!(err.contains("http://127.0.0.1:8787"), "{bad}: {err}");
        }
        assert!(Remote::new("http://127.0.0.1:1", " ", false).is_err());
    }

    #[test]
    fn plain_http_goes_only_to_this_machine_unless_insecure_http() {
        for here in [
            "http://127.0.0.1:8787",
            "http://127.1.2.3:1",
            "http://localhost:8787/",
            "http://LOCALHOST",
            "http://[::1]:8787",
            "https://signet.example.com",
        ] {
            assert!(Remote::new(here, "sk_x", false).is_ok(), "{here}");
        }
        for away in [
            "http://signet.example.com",
            "http://10.0.0.5:8787",
            "http://[2001:db8::1]",
        ] {
            let err = Remote::new(away, "sk_x", false).unwrap_err().to_string();
            assert!(
                err.contains("plain http://") && err.contains("--insecure-http"),
                "{away}: {err}"
            );
            assert!(Remote::new(away, "sk_x", true).is_ok(), "{away}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_and_never_shown() {
        for url in [
            "http://user:hunter2@127.0.0.1:8787",
            "https://sk_in_the_user@signet.example.com",
        ] {
            let err = Remote::new(url, "sk_x", true).unwrap_err().to_string();
            assert!(err.contains("user or password"), "{url}: {err}");
            assert!(
                !err.contains("hunter2") && !err.contains("sk_in_the_user"),
                "{err}"
            );
        }
        assert_eq!(shown("http://u:p@h:1/base"), "http://h:1/base");
        assert_eq!(shown("https://u@h"), "https://h");
        assert_eq!(shown("https://h/"), "https://h/");
        // Not a URL: the password still goes.
        assert!(!shown("http://u:hunter2@h:99999").contains("hunter2"));
    }
}
