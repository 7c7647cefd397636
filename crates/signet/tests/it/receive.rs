//! `signet receive` through the real binary and a real socket: what
//! `signet sign` signs is accepted and printed, a replay is acknowledged as
//! a duplicate, a tampered body and a stale timestamp are refused with
//! their reasons.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::signet;
use crate::support::{exchange, LineProcess};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(30);

/// A running `signet receive` whose stdout lines arrive on a channel; killed
/// when dropped.
struct Receiver {
    process: LineProcess,
    addr: String,
}

impl Receiver {
    fn start(extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_signet"));
        command
            .args(["receive", "--listen", "127.0.0.1:0", "--secret", SECRET])
            .args(extra)
            .stdin(Stdio::null());
        let mut receiver = Self {
            process: LineProcess::spawn(command).expect("start signet receive"),
            addr: String::new(),
        };
        let first = receiver.line();
        receiver.addr = first
            .strip_prefix("listening on http://")
            .map(str::to_owned)
            .or_else(|| {
                serde_json::from_str::<serde_json::Value>(&first)
                    .ok()
                    .and_then(|v| v["addr"].as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| panic!("first line names no address: {first}"));
        receiver
    }

    fn line(&self) -> String {
        self.process
            .next_line(WAIT)
            .expect("signet receive printed a line")
    }

    /// The next line about a request (skips the start-up details).
    fn event(&self) -> String {
        loop {
            let line = self.line();
            if !line.starts_with("  ") {
                return line;
            }
        }
    }

    /// POSTs `body` with `headers` (`Name: value` lines); returns the
    /// status and the response body.
    fn post(&self, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.addr,
            body.len()
        );
        for line in headers.lines().filter(|l| !l.trim().is_empty()) {
            request.push_str(line.trim_end());
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        exchange(&self.addr, &request, WAIT)
    }
}

/// `signet sign` of `body` with `extra` flags: the header lines.
fn sign(body: &[u8], extra: &[&str]) -> String {
    let mut args = vec!["sign", "--secret", SECRET];
    args.extend_from_slice(extra);
    signet(&args, body).ok().to_owned()
}

#[test]
fn signed_requests_are_accepted_and_bad_ones_refused_with_the_reason() {
    let receiver = Receiver::start(&[]);
    let body = br#"{"order":42,"note":"caf\u00e9"}"#;
    let headers = sign(body, &["--id", "msg_receive_test_1"]);
    assert!(headers.contains("webhook-signature: v1,"), "{headers}");

    let (status, answer) = receiver.post("/hooks", &headers, body);
    assert_eq!(status, 200, "{answer}");
    let line = receiver.event();
    assert!(
        line.starts_with("ACCEPTED POST /hooks id=msg_receive_test_1 timestamp="),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("body={}", String::from_utf8_lossy(body))),
        "{line}"
    );

    // The same delivery again: acknowledged, not processed twice.
    let (status, answer) = receiver.post("/hooks", &headers, body);
    assert_eq!(status, 200);
    assert!(answer.contains("\"duplicate\":true"), "{answer}");
    let line = receiver.event();
    assert!(
        line.starts_with("DUPLICATE POST /hooks id=msg_receive_test_1"),
        "{line}"
    );

    // The body changed after signing.
    let signed = sign(body, &["--id", "msg_receive_test_2"]);
    let (status, answer) = receiver.post("/hooks", &signed, br#"{"order":43,"note":"caf\u00e9"}"#);
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("\"reason\":\"mismatch\""), "{answer}");
    let line = receiver.event();
    assert!(
        line.starts_with("REJECTED POST /hooks reason=mismatch status=401: "),
        "{line}"
    );

    // Signed twenty minutes ago.
    let stale_ts = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1200)
        .to_string();
    let stale = sign(
        body,
        &["--id", "msg_receive_test_3", "--timestamp", &stale_ts],
    );
    let (status, _) = receiver.post("/hooks", &stale, body);
    assert_eq!(status, 401);
    let line = receiver.event();
    assert!(
        line.starts_with("REJECTED POST /hooks reason=too-old status=401"),
        "{line}"
    );

    // No signature at all.
    let (status, _) = receiver.post("/hooks", "", body);
    assert_eq!(status, 401);
    assert!(receiver.event().contains("reason=missing"));

    // Signed with another secret.
    let other = signet(
        &[
            "sign",
            "--secret",
            "whsec_c2lnbmV0LW90aGVyLXNlY3JldC0zMi1ieXRlcyEhISE=",
            "--id",
            "msg_receive_test_4",
        ],
        body,
    )
    .ok()
    .to_owned();
    let (status, _) = receiver.post("/hooks", &other, body);
    assert_eq!(status, 401);
    let line = receiver.event();
    assert!(line.contains("reason=mismatch"), "{line}");
    assert!(!line.contains(SECRET), "secrets are never printed: {line}");
}

#[test]
fn json_output_and_a_rotated_secret() {
    let next = "whsec_c2lnbmV0LW5leHQtc2VjcmV0LTMyLWJ5dGVzLWxvbmc=";
    let receiver = Receiver::start(&["--secret", next, "--json"]);
    let body = b"plain text body";
    // Signed with the second (new) secret only: any configured key verifies.
    let headers = signet(&["sign", "--secret", next, "--id", "msg_rotated"], body)
        .ok()
        .to_owned();
    let (status, _) = receiver.post("/", &headers, body);
    assert_eq!(status, 200);
    let event: serde_json::Value = serde_json::from_str(&receiver.event()).unwrap();
    assert_eq!(event["event"], "accepted");
    assert_eq!(event["id"], "msg_rotated");
    assert_eq!(
        event["key"], "secret 2",
        "named by its position in --secret"
    );
    assert_eq!(event["body"], "plain text body");
    assert!(event["timestamp"].as_i64().is_some());

    let (status, _) = receiver.post("/", &headers, b"plain text body!");
    assert_eq!(status, 401);
    let event: serde_json::Value = serde_json::from_str(&receiver.event()).unwrap();
    assert_eq!(event["event"], "rejected");
    assert_eq!(event["reason"], "mismatch");
    assert_eq!(event["status"], 401);
}

#[test]
fn bad_secrets_stop_it_before_it_listens() {
    let run = signet(
        &[
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--secret",
            "whsec_not*base64",
        ],
        b"",
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--secret 1 of 1"), "{run:#?}");
    assert!(
        !run.stderr.contains("not*base64"),
        "the secret is not echoed: {run:#?}"
    );
}
