//! A keep-alive HTTP/1.1 client connection for the processes of `signet
//! bench work`: the producers and the pull worker speak to `signet serve`
//! as any client would, one request in flight per connection.

use anyhow::{anyhow, Context as _};
use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// One connection to the server. Holds the API key: no `Debug`.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
    addr: String,
    auth: Option<String>,
}

impl Conn {
    /// Connects to `addr` (`host:port`); requests carry `api_key` as a
    /// bearer token when given.
    pub(crate) async fn open(addr: &str, api_key: Option<&str>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .with_context(|| format!("HTTP handshake with {addr} failed"))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            driver,
            addr: addr.to_owned(),
            auth: api_key.map(|k| format!("Bearer {k}")),
        })
    }

    /// `POST path` with a JSON body; the status and the whole answer.
    pub(crate) async fn post(
        &mut self,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(Method::POST, path, body).await
    }

    /// `GET path`; the status and the whole answer.
    pub(crate) async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(Method::GET, path, Vec::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.addr);
        if let Some(auth) = &self.auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| anyhow!("building a request to {path}: {e}"))?;
        self.sender
            .ready()
            .await
            .with_context(|| format!("the connection to {} closed", self.addr))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("{path}: the request failed"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{path}: reading the answer failed"))?
            .to_bytes();
        Ok((status, bytes))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The answer's text, shortened, for an error message.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(300).collect()
}
