//! What an endpoint's answer means for the task (docs/push-queues.md):
//! a `2xx` body is the result, a dead answer dead-letters the task with the
//! endpoint's reason, anything else is a failed attempt; a binding that
//! requires signed answers first checks the answer's signature.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use signet_sign::profiles::ProfileKey;
use signet_sign::standard::VerifyOptions;
use signet_sign::Profile;
use signet_store::MAX_ATTEMPT_BODY_BYTES;

use crate::delivery::AttemptOutcome;
use crate::worker::RemoteFailure;

/// Largest result a push answer may carry: 1 MiB, the default body limit
/// of the pull protocol's `complete` (whose result rides in the request
/// body).
pub const MAX_PUSH_RESULT_BYTES: usize = 1024 * 1024;

/// What an attempt's answer comes to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Succeeded with this result (JSON bytes; `None`: no result).
    Succeeded(Option<Vec<u8>>),
    /// A failed attempt, or dead at once (a valid dead answer).
    Failed(RemoteFailure),
    /// The binding requires signed answers and this one's signature is
    /// missing, wrong or stale: a failed attempt; the body is not used.
    BadSignature(String),
}

/// What judging an answer needs besides the answer.
pub(super) struct Judge<'a> {
    /// The request's `webhook-id` (the task id).
    pub(super) task_id: &'a str,
    /// The target's keys, when the binding requires signed answers.
    pub(super) answer_keys: Option<&'a [ProfileKey]>,
    /// Now, unix ms (signature freshness, `Retry-After` dates).
    pub(super) now_ms: i64,
    /// Longest `Retry-After` honoured.
    pub(super) retry_after_cap: Duration,
}

/// The body of a dead answer: `{"dead": {"reason": …, "detail": …}}`.
#[derive(Deserialize)]
struct DeadAnswer {
    dead: DeadBody,
}

#[derive(Deserialize)]
struct DeadBody {
    reason: String,
    #[serde(default)]
    detail: Option<String>,
}

impl Judge<'_> {
    /// Judges one attempt.
    pub(super) fn answer(&self, outcome: AttemptOutcome) -> Answer {
        let (status, retry_after, location, headers, body, body_complete) = match outcome {
            AttemptOutcome::Response {
                status,
                retry_after,
                location,
                headers,
                body,
                body_complete,
                latency: _,
            } => (status, retry_after, location, headers, body, body_complete),
            AttemptOutcome::Refused(refusal) => return retry(format!("refused: {refusal}"), None),
            AttemptOutcome::Failed { error, .. } => return retry(error, None),
        };
        // Part of an answer is not the answer: a result cut short, or a dead
        // answer missing its end, must not be written.
        if !body_complete {
            return retry(
                format!(
                    "HTTP {status}: answer body cut short (the connection broke or timed out after {} bytes)",
                    body.len()
                ),
                None,
            );
        }
        if body.len() > MAX_PUSH_RESULT_BYTES {
            return retry(
                format!("HTTP {status}: the answer's body is over {MAX_PUSH_RESULT_BYTES} bytes, the result limit"),
                None,
            );
        }
        if let Some(keys) = self.answer_keys {
            if let Err(detail) = self.verify(keys, &headers, &body) {
                return Answer::BadSignature(detail);
            }
        }
        if (200..300).contains(&status) {
            return Answer::Succeeded(result(&body));
        }
        let mut error = match (status, location) {
            (300..=399, Some(to)) => format!("HTTP {status} (redirect to {to} not followed)"),
            (300..=399, None) => format!("HTTP {status} (redirects are not followed)"),
            _ => format!("HTTP {status}: {}", excerpt(&body)),
        };
        if let Ok(dead) = serde_json::from_slice::<DeadAnswer>(&body) {
            match RemoteFailure::dead(&dead.dead.reason, dead.dead.detail.unwrap_or_default()) {
                Ok(failure) => return Answer::Failed(failure),
                Err(why) => error = format!("{error} (not a valid dead answer: {why})"),
            }
        }
        let wait = retry_after.map(|r| r.wait(self.now_ms, self.retry_after_cap));
        retry(error, wait)
    }

    /// Checks a signed answer: `webhook-signature` over
    /// `{request webhook-id}.{answer webhook-timestamp}.{answer body}` with
    /// the target's secret, fresh within 5 minutes; a `webhook-id` answer
    /// header, if any, must be the request's. The error says which part
    /// failed.
    fn verify(&self, keys: &[ProfileKey], headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| -> Result<Option<String>, String> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| format!("malformed: {name} is not visible ASCII")),
            }
        };
        if let Some(id) = header("webhook-id")? {
            if id != self.task_id {
                return Err(format!(
                    "mismatch: the answer's webhook-id {:?} is not the request's {}",
                    signet_store::rules::excerpt(&id),
                    self.task_id
                ));
            }
        }
        let timestamp = header("webhook-timestamp")?
            .ok_or("missing: the answer has no webhook-timestamp header")?;
        let signature = header("webhook-signature")?
            .ok_or("missing: the answer has no webhook-signature header")?;
        let signed = [
            ("webhook-id".to_owned(), self.task_id.to_owned()),
            ("webhook-timestamp".to_owned(), timestamp),
            ("webhook-signature".to_owned(), signature),
        ];
        Profile::Standard
            .verify(
                keys,
                &signed,
                body,
                &VerifyOptions::new(self.now_ms.div_euclid(1000)),
            )
            .map(|_| ())
            .map_err(|e| format!("{}: {}", e.reason(), e.message()))
    }
}

fn retry(error: String, retry_after: Option<Duration>) -> Answer {
    Answer::Failed(RemoteFailure::Retry { error, retry_after })
}

/// A `2xx` body as the task's result: empty or JSON `null` → none; JSON →
/// those bytes as sent; anything else → a JSON string of it.
fn result(body: &[u8]) -> Option<Vec<u8>> {
    if body.is_empty() {
        return None;
    }
    match serde_json::from_slice::<&serde_json::value::RawValue>(body) {
        Ok(raw) if raw.get() == "null" => None,
        Ok(_) => Some(body.to_vec()),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            // A string always serialises.
            serde_json::to_vec(&text).ok()
        }
    }
}

/// The start of a response body for the attempt's error.
fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(MAX_ATTEMPT_BODY_BYTES / 8)];
    let text = String::from_utf8_lossy(cut).trim().to_owned();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    if cut.len() < body.len() {
        format!("{text}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::RetryAfter;
    use signet_store::DeadReason;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn response(status: u16, headers: HeaderMap, body: &[u8]) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after: None,
            location: None,
            headers,
            body: body.to_vec(),
            body_complete: true,
            latency: Duration::from_millis(2),
        }
    }

    #[test]
    fn an_answer_cut_short_is_a_failed_attempt() {
        let j = judge(None);
        for status in [200, 422] {
            let mut outcome = response(status, HeaderMap::new(), br#"{"dead": {"reason": "#);
            if let AttemptOutcome::Response { body_complete, .. } = &mut outcome {
                *body_complete = false;
            }
            match j.answer(outcome) {
                Answer::Failed(RemoteFailure::Retry { error, retry_after }) => {
                    assert!(error.contains("answer body cut short"), "{error}");
                    assert!(error.starts_with(&format!("HTTP {status}")), "{error}");
                    assert_eq!(retry_after, None);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn judge(keys: Option<&[ProfileKey]>) -> Judge<'_> {
        Judge {
            task_id: "task_1",
            answer_keys: keys,
            now_ms: NOW_MS,
            retry_after_cap: Duration::from_secs(3600),
        }
    }

    #[test]
    fn success_bodies_become_results() {
        let j = judge(None);
        let ok = |body: &[u8]| j.answer(response(200, HeaderMap::new(), body));
        assert_eq!(ok(b""), Answer::Succeeded(None));
        assert_eq!(ok(b"null"), Answer::Succeeded(None));
        assert_eq!(
            ok(br#"{"a": 1}"#),
            Answer::Succeeded(Some(br#"{"a": 1}"#.to_vec()))
        );
        assert_eq!(ok(b"done"), Answer::Succeeded(Some(br#""done""#.to_vec())));
        assert_eq!(
            j.answer(response(204, HeaderMap::new(), b"")),
            Answer::Succeeded(None)
        );
    }

    #[test]
    fn failures_name_the_status_and_honour_retry_after() {
        let j = judge(None);
        let mut outcome = response(503, HeaderMap::new(), b"busy, try later");
        if let AttemptOutcome::Response { retry_after, .. } = &mut outcome {
            *retry_after = Some(RetryAfter::Seconds(7));
        }
        assert_eq!(
            j.answer(outcome),
            Answer::Failed(RemoteFailure::Retry {
                error: "HTTP 503: busy, try later".into(),
                retry_after: Some(Duration::from_secs(7)),
            })
        );
        match j.answer(response(500, HeaderMap::new(), b"")) {
            Answer::Failed(RemoteFailure::Retry { error, .. }) => {
                assert_eq!(error, "HTTP 500: (empty body)")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dead_answers_are_checked_as_worker_reports() {
        let j = judge(None);
        let dead =
            br#"{"dead": {"reason": "signature-invalid", "detail": "mismatch: args changed"}}"#;
        assert_eq!(
            j.answer(response(422, HeaderMap::new(), dead)),
            Answer::Failed(RemoteFailure::Dead {
                reason: DeadReason::SignatureInvalid,
                detail: "mismatch: args changed".into(),
            })
        );
        // A reason a worker may not give is an ordinary failed attempt.
        let bad = br#"{"dead": {"reason": "max-attempts"}}"#;
        match j.answer(response(422, HeaderMap::new(), bad)) {
            Answer::Failed(RemoteFailure::Retry { error, .. }) => {
                assert!(error.contains("not a valid dead answer"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        // A 2xx is a success whatever its body says.
        assert!(matches!(
            j.answer(response(200, HeaderMap::new(), dead)),
            Answer::Succeeded(Some(_))
        ));
    }

    #[test]
    fn required_signed_answers_are_verified() {
        let key = Profile::Standard
            .parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let keys = [key];
        let j = judge(Some(&keys));
        let body = br#"{"ok":true}"#;
        let sign = |id: &str, ts: i64, body: &[u8]| {
            let headers = Profile::Standard
                .sign(
                    &keys,
                    &signet_sign::profiles::SignRequest {
                        id,
                        timestamp: ts,
                        body,
                    },
                )
                .unwrap();
            let mut map = HeaderMap::new();
            for (n, v) in headers {
                if n != "webhook-id" {
                    map.insert(
                        reqwest::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                        v.parse().unwrap(),
                    );
                }
            }
            map
        };
        let now_s = NOW_MS / 1000;
        assert_eq!(
            j.answer(response(200, sign("task_1", now_s, body), body)),
            Answer::Succeeded(Some(body.to_vec()))
        );
        let bad = |headers: HeaderMap, body: &[u8]| match j.answer(response(200, headers, body)) {
            Answer::BadSignature(detail) => detail,
            other => panic!("{other:?}"),
        };
        assert!(bad(HeaderMap::new(), body).starts_with("missing"));
        assert!(bad(sign("task_1", now_s, body), b"{}").starts_with("mismatch"));
        assert!(bad(sign("task_2", now_s, body), body).starts_with("mismatch"));
        assert!(bad(sign("task_1", now_s - 301, body), body).starts_with("too-old"));
        let mut wrong_id = sign("task_1", now_s, body);
        wrong_id.insert("webhook-id", "task_9".parse().unwrap());
        assert!(bad(wrong_id, body).contains("webhook-id"));
        // A failure must be signed too: unsigned, it is not believed.
        let dead = br#"{"dead": {"reason": "payload-invalid"}}"#;
        assert!(matches!(
            j.answer(response(422, HeaderMap::new(), dead)),
            Answer::BadSignature(_)
        ));
    }
}
