//! Push queues against a real endpoint on 127.0.0.1 (an axum receiver):
//! the endpoint verifies the hop (Standard Webhooks, the target's secret)
//! and the producer (the envelope signature, rebuilt from `args_b64`) with
//! signet-sign, as docs/push-queues.md tells endpoint authors to; answers
//! become results, retries, dead letters and signed-answer failures.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use signet_runtime::{
    Clock, ManualClock, NewBinding, NewTarget, Producer, PushService, SsrfPolicy, TaskSpec,
};
use signet_sign::profiles::{ProfileKey, SignRequest};
use signet_sign::standard::VerifyOptions;
use signet_sign::{Algorithm, KeyRing, Profile, TaskEnvelope};
use signet_store::{DeadReason, TaskRow, TaskState};

use crate::dispatcher::{Answer, Received, Receiver, RunningDispatcher, Setup};
use crate::support::*;

/// What the endpoint found checking a request.
#[derive(Debug)]
enum Checked {
    /// Both signatures verify; the body's claimed task.
    Valid(Value),
    /// The hop signature is bad.
    BadHop(String),
    /// The envelope signature is bad: `<outcome>: <message>`.
    BadEnvelope(String),
}

/// Checks a push request as an endpoint must: the hop with the target's
/// keys at `now_s`, then the producer's signature over the envelope rebuilt
/// from `args_b64`, with `ring`.
fn check(r: &Received, hop: &[ProfileKey], ring: &KeyRing, now_s: i64) -> Checked {
    if let Err(e) =
        Profile::Standard.verify(hop, &r.header_list(), &r.body, &VerifyOptions::new(now_s))
    {
        return Checked::BadHop(format!("{}: {}", e.reason(), e.message()));
    }
    let body: Value = serde_json::from_slice(&r.body).expect("a JSON body");
    let e = &body["envelope"];
    let opt = |v: &Value| v.as_i64();
    let envelope = TaskEnvelope {
        id: e["id"].as_str().unwrap().to_owned(),
        queue: e["queue"].as_str().unwrap().to_owned(),
        name: e["name"].as_str().unwrap().to_owned(),
        args: base64::engine::general_purpose::STANDARD
            .decode(e["args_b64"].as_str().unwrap())
            .unwrap(),
        headers: serde_json::from_value(e["headers"].clone()).unwrap(),
        created_at_ms: e["created_at_ms"].as_i64().unwrap(),
        not_before_ms: opt(&e["not_before_ms"]),
        expires_at_ms: opt(&e["expires_at_ms"]),
        max_attempts: u32::try_from(e["max_attempts"].as_u64().unwrap()).unwrap(),
        callback_url: e["callback_url"].as_str().map(str::to_owned),
    };
    let sig = &body["signature"];
    let alg: Algorithm = sig["alg"].as_str().unwrap().parse().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sig["sig"].as_str().unwrap())
        .unwrap();
    match envelope.verify(alg, sig["key_id"].as_str().unwrap(), &bytes, ring) {
        Ok(_) => Checked::Valid(body),
        Err(e) => Checked::BadEnvelope(format!("{}: {}", e.reason(), e.message())),
    }
}

/// Signs an answer body as an endpoint does: over
/// `{request webhook-id}.{timestamp}.{body}` with the target's keys.
fn signed(mut answer: Answer, keys: &[ProfileKey], id: &str, now_s: i64) -> Answer {
    let headers = Profile::Standard
        .sign(
            keys,
            &SignRequest {
                id,
                timestamp: now_s,
                body: answer.body.as_bytes(),
            },
        )
        .unwrap();
    for (name, value) in headers {
        match name.as_str() {
            "webhook-timestamp" => answer = answer.header("webhook-timestamp", value),
            "webhook-signature" => answer = answer.header("webhook-signature", value),
            _ => {}
        }
    }
    answer
}

/// A test world: the dispatcher setup, a target with a known secret, a
/// producer on the setup's ring, and the push service.
struct World {
    s: Setup,
    target: String,
    /// The target's secret, as an endpoint is configured with it.
    secret: String,
    producer: Producer,
    push: PushService,
}

impl World {
    async fn new() -> Self {
        let s = Setup::new();
        let (target, secret) = s
            .targets
            .create(NewTarget {
                name: "push-endpoint".into(),
                url_prefix: None,
                secret: None,
                rate_limit_per_s: None,
                max_concurrency: None,
                https_only: false,
            })
            .await
            .unwrap();
        let secret = secret.expose_secret().to_owned();
        let producer =
            Producer::with_ring(Arc::clone(&s.db.store), Arc::new(s.ring.duplicate()), true)
                .unwrap()
                .clock(Arc::clone(&s.dyn_clock));
        let push = PushService::new(
            Arc::clone(&s.db.store),
            s.targets.clone(),
            SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap(),
        )
        .clock(Arc::clone(&s.dyn_clock));
        Self {
            s,
            target: target.name,
            secret,
            producer,
            push,
        }
    }

    /// The target's keys, parsed as an endpoint parses its secret.
    fn keys(&self) -> Vec<ProfileKey> {
        vec![Profile::Standard.parse_key(&self.secret).unwrap()]
    }

    async fn bind(&self, queue: &str, rx: &Receiver, signed_answers: bool) {
        self.push
            .bind(
                queue,
                NewBinding {
                    url: rx.url("/push"),
                    target: self.target.clone(),
                    timeout_ms: Some(5_000),
                    concurrency: Some(4),
                    require_signed_response: signed_answers,
                },
            )
            .await
            .unwrap();
    }

    async fn enqueue(&self, queue: &str, name: &str, attempts: u32) -> String {
        enqueue_id(
            &self.producer,
            TaskSpec::new(name, &json!({"a": 1, "b": 2}))
                .queue(queue)
                .max_attempts(attempts),
        )
        .await
    }

    fn start(&self) -> RunningDispatcher {
        RunningDispatcher::start(self.s.dispatcher().build().unwrap())
    }

    /// Waits for the task to reach a final state.
    async fn until_final(&self, id: &str) -> TaskRow {
        tokio::time::timeout(WAIT, async {
            loop {
                let row = self.s.db.task(id).await;
                if row.state.is_final() {
                    return row;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("task {id} not final within {WAIT:?}"))
    }

    /// The errors of a task's attempts, oldest first.
    async fn errors(&self, id: &str) -> Vec<Option<String>> {
        let history = self.s.db.store.history(id).await.unwrap();
        signet_store::history::attempts(&history)
            .map(|(_, a)| a.error.clone())
            .collect()
    }
}

fn now_s(clock: &ManualClock) -> i64 {
    clock.now_ms() / 1000
}

#[tokio::test]
async fn a_verified_push_answers_its_result() {
    let w = World::new().await;
    let (keys, ring, clock) = (w.keys(), w.s.ring.duplicate(), Arc::clone(&w.s.clock));
    let rx = Receiver::start(move |r, _| match check(r, &keys, &ring, now_s(&clock)) {
        Checked::Valid(body) => {
            let args = &body["envelope"]["args"];
            let sum = args["a"].as_i64().unwrap() + args["b"].as_i64().unwrap();
            Answer::status(200).body(&format!("{{\"sum\": {sum}}}"))
        }
        other => Answer::status(401).body(&format!("{other:?}")),
    })
    .await;
    w.bind("adds", &rx, false).await;
    let d = w.start();
    let id = w.enqueue("adds", "add", 3).await;
    let row = w.until_final(&id).await;
    assert_eq!(row.state, TaskState::Succeeded, "{row:?}");
    assert_eq!(row.result.as_deref(), Some(&br#"{"sum": 3}"#[..]));
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/push");
    assert_eq!(r.header("webhook-id"), id);
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("user-agent").starts_with("Signet/"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["max_attempts"], 3);
    assert_eq!(body["envelope"]["name"], "add");
    assert_eq!(body["signature"]["key_id"], "k1");
    assert!(body.get("lease").is_none(), "{body}");
    d.stop().await;
}

#[tokio::test]
async fn failed_answers_retry_then_dead_letter_with_max_attempts() {
    let w = World::new().await;
    let rx = Receiver::start(|_, _| {
        Answer::status(503)
            .header("retry-after", "0")
            .body("busy, come back")
    })
    .await;
    w.bind("busy", &rx, false).await;
    let d = w.start();
    let id = w.enqueue("busy", "work", 2).await;
    let row = w.until_final(&id).await;
    assert_eq!(row.state, TaskState::Dead);
    assert_eq!(row.dead_reason, Some(DeadReason::MaxAttempts));
    assert!(
        row.dead_detail
            .as_deref()
            .unwrap()
            .contains("HTTP 503: busy, come back"),
        "{row:?}"
    );
    let got = rx.requests();
    assert_eq!(got.len(), 2, "one request per attempt");
    assert!(got.iter().all(|r| r.header("webhook-id") == id));
    let errors = w.errors(&id).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].as_deref(), Some("HTTP 503: busy, come back"));
    d.stop().await;
}

#[tokio::test]
async fn a_dead_answer_dead_letters_a_tampered_task() {
    let w = World::new().await;
    let (keys, ring, clock) = (w.keys(), w.s.ring.duplicate(), Arc::clone(&w.s.clock));
    let rx = Receiver::start(move |r, _| match check(r, &keys, &ring, now_s(&clock)) {
        Checked::Valid(_) => Answer::status(204),
        Checked::BadEnvelope(detail) => Answer::status(422)
            .body(&json!({"dead": {"reason": "signature-invalid", "detail": detail}}).to_string()),
        Checked::BadHop(detail) => Answer::status(401).body(&detail),
    })
    .await;
    w.bind("pay", &rx, false).await;
    let tampered = w.enqueue("pay", "pay", 5).await;
    let fine = w.enqueue("pay", "pay", 5).await;
    assert_eq!(
        w.s.db
            .raw()
            .execute(
                r#"UPDATE tasks SET args = CAST('{"a":1,"b":2000}' AS BLOB) WHERE id = ?1"#,
                [&tampered],
            )
            .unwrap(),
        1
    );
    let d = w.start();
    let row = w.until_final(&tampered).await;
    assert_eq!(row.state, TaskState::Dead);
    assert_eq!(row.dead_reason, Some(DeadReason::SignatureInvalid));
    assert!(
        row.dead_detail.as_deref().unwrap().starts_with("mismatch"),
        "{row:?}"
    );
    let row = w.until_final(&fine).await;
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.result, None, "an empty 2xx body is no result");
    d.stop().await;
}

#[tokio::test]
async fn required_signed_answers_fail_unsigned_and_forged_ones() {
    let w = World::new().await;
    let (keys, clock) = (w.keys(), Arc::clone(&w.s.clock));
    let forger = vec![Profile::Standard
        .parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap()];
    let rx = Receiver::start(move |r, _| {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let id = r.header("webhook-id");
        let answer = Answer::status(200).body(r#"{"ok":true}"#);
        match body["envelope"]["name"].as_str().unwrap() {
            "unsigned" => answer,
            "forged" => signed(answer, &forger, id, now_s(&clock)),
            _ => signed(answer, &keys, id, now_s(&clock)),
        }
    })
    .await;
    w.bind("strict", &rx, true).await;
    let unsigned = w.enqueue("strict", "unsigned", 1).await;
    let forged = w.enqueue("strict", "forged", 1).await;
    let good = w.enqueue("strict", "good", 1).await;
    let d = w.start();
    for (id, outcome) in [(&unsigned, "missing"), (&forged, "mismatch")] {
        let row = w.until_final(id).await;
        assert_eq!(row.state, TaskState::Dead, "{row:?}");
        assert_eq!(row.dead_reason, Some(DeadReason::MaxAttempts));
        let error = w.errors(id).await.remove(0).unwrap();
        assert!(
            error.starts_with(&format!("response-signature-invalid: {outcome}")),
            "{error}"
        );
        assert_eq!(row.result, None, "the answer's body is not used");
    }
    let row = w.until_final(&good).await;
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.result.as_deref(), Some(&br#"{"ok":true}"#[..]));
    d.stop().await;
}

#[tokio::test]
async fn bindings_refuse_what_can_never_be_pushed() {
    let w = World::new().await;
    let bind = |queue: &'static str, url: &'static str, target: &str| {
        let target = target.to_owned();
        let push = w.push.clone();
        async move {
            push.bind(
                queue,
                NewBinding {
                    url: url.into(),
                    target,
                    ..NewBinding::default()
                },
            )
            .await
        }
    };
    let field = |r: Result<_, signet_runtime::RuntimeError>| match r {
        Err(signet_runtime::RuntimeError::InvalidField(e)) => e.field().to_owned(),
        other => panic!("want a field error, got {other:?}"),
    };
    let t = w.target.clone();
    assert_eq!(
        field(bind("signet:messages", "https://a.example/", &t).await),
        "queue"
    );
    assert_eq!(field(bind("q", "http://10.0.0.1/push", &t).await), "url");
    assert_eq!(field(bind("q", "ftp://a.example/", &t).await), "url");
    assert_eq!(
        field(bind("q", "https://a.example/", "nope").await),
        "target"
    );
    let out_of_range = w
        .push
        .bind(
            "q",
            NewBinding {
                url: "https://a.example/".into(),
                target: t.clone(),
                timeout_ms: Some(500),
                ..NewBinding::default()
            },
        )
        .await;
    assert_eq!(field(out_of_range), "timeout_ms");
    assert!(w.push.list().await.unwrap().is_empty(), "nothing was bound");
    let (b, _) = bind("q", "https://a.example/push", &t).await.unwrap();
    assert_eq!((b.timeout_ms, b.concurrency), (30_000, 10), "the defaults");
    w.push.unbind("q").await.unwrap();
    assert!(w.push.get("q").await.unwrap().is_none());
}

/// An endpoint on a raw socket that reads a request, answers `200` with a
/// `content-length` of 100 but only `sent` bytes of body, and hangs up.
async fn cut_short_endpoint(sent: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // Read the whole request (headers, then content-length bytes)
                // so the hang-up is not a reset of unread data.
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(sent).await;
                let _ = conn.flush().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_answer_cut_short_is_a_failed_attempt_not_a_result() {
    let w = World::new().await;
    let addr = cut_short_endpoint(br#"{"total": 12"#).await;
    w.push
        .bind(
            "cut",
            NewBinding {
                url: format!("http://{addr}/push"),
                target: w.target.clone(),
                timeout_ms: Some(5_000),
                concurrency: Some(1),
                require_signed_response: false,
            },
        )
        .await
        .unwrap();
    let d = w.start();
    let id = w.enqueue("cut", "sum", 1).await;
    let row = w.until_final(&id).await;
    assert_eq!(row.state, TaskState::Dead, "{row:?}");
    assert_eq!(row.dead_reason, Some(DeadReason::MaxAttempts));
    assert_eq!(row.result, None, "part of an answer is no result");
    let error = w.errors(&id).await.remove(0).unwrap();
    assert!(
        error.starts_with("HTTP 200: answer body cut short"),
        "{error}"
    );
    d.stop().await;
}

/// A receiver whose answers wait `hold`, and how many requests arrived
/// (counted on arrival, before the wait).
async fn slow_receiver(hold: Duration) -> (Receiver, Arc<std::sync::atomic::AtomicUsize>) {
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&arrived);
    let rx = Receiver::start(move |_, _| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Answer::status(200).body(r#"{"ok":true}"#).hold(hold)
    })
    .await;
    (rx, arrived)
}

async fn until_arrived(arrived: &std::sync::atomic::AtomicUsize, n: usize) {
    tokio::time::timeout(WAIT, async {
        while arrived.load(std::sync::atomic::Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the push arrived");
}

#[tokio::test]
async fn a_changed_binding_lets_pushes_in_flight_finish() {
    let w = World::new().await;
    // Longer than a bindings refresh plus the shutdown grace below: cut
    // to the grace, the push would be released and pushed again.
    let (rx, arrived) =
        slow_receiver(signet_runtime::BINDINGS_REFRESH + Duration::from_secs(1)).await;
    w.bind("slow", &rx, false).await;
    let d = RunningDispatcher::start(
        w.s.dispatcher()
            .shutdown_grace(Duration::from_millis(200))
            .build()
            .unwrap(),
    );
    let id = w.enqueue("slow", "work", 3).await;
    until_arrived(&arrived, 1).await;
    // A real change (concurrency): the loop is restarted.
    w.push
        .bind(
            "slow",
            NewBinding {
                url: rx.url("/push"),
                target: w.target.clone(),
                timeout_ms: Some(5_000),
                concurrency: Some(3),
                require_signed_response: false,
            },
        )
        .await
        .unwrap();
    let row = w.until_final(&id).await;
    assert_eq!(row.state, TaskState::Succeeded, "{row:?}");
    assert_eq!(row.attempt, 1, "{row:?}");
    assert_eq!(
        arrived.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the push in flight finished; the task was not pushed again"
    );
    d.stop().await;
}

#[tokio::test]
async fn shutdown_releases_pushes_still_running_after_the_grace() {
    let w = World::new().await;
    // Far longer than the test waits for a dispatcher to stop (`WAIT`), as
    // is the binding's timeout: only the grace may bound the shutdown.
    let (rx, arrived) = slow_receiver(Duration::from_secs(60)).await;
    w.push
        .bind(
            "held",
            NewBinding {
                url: rx.url("/push"),
                target: w.target.clone(),
                timeout_ms: Some(60_000),
                concurrency: Some(2),
                require_signed_response: false,
            },
        )
        .await
        .unwrap();
    let d = RunningDispatcher::start(
        w.s.dispatcher()
            .shutdown_grace(Duration::from_millis(200))
            .build()
            .unwrap(),
    );
    let id = w.enqueue("held", "work", 3).await;
    until_arrived(&arrived, 1).await;
    d.stop().await;
    let row = w.s.db.task(&id).await;
    assert_eq!(row.state, TaskState::Available, "released: {row:?}");
    assert!(w.errors(&id).await.is_empty(), "a release is no attempt");
}
