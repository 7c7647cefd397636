//! Judging an attempt: its outcome (an answer, a refusal, a failure)
//! becomes what to write (delivered, retry at, dead). See the table in the
//! module docs of [`dispatcher`](super).

use std::time::Duration;

use signet_store::{DeadReason, HttpExchange};

use crate::clock::duration_ms;
use crate::delivery::{clip, AttemptOutcome};
use crate::message::RetrySchedule;

/// One delivery attempt as the history keeps it: what went wrong (if
/// anything) and the HTTP exchange.
#[derive(Clone, Debug)]
pub(super) struct AttemptRecord {
    pub(super) error: Option<String>,
    pub(super) http: HttpExchange,
}

/// What a delivery ends with, before it is written.
pub(super) enum Decision {
    Delivered {
        status: u16,
        record: AttemptRecord,
    },
    Retry {
        at_ms: i64,
        error: String,
        record: AttemptRecord,
    },
    Dead {
        reason: DeadReason,
        detail: String,
        record: AttemptRecord,
    },
    Release,
    LeaseLost,
}

/// What to write after an attempt: see the table in the module docs.
pub(super) fn decide(
    outcome: AttemptOutcome,
    attempt: u32,
    max_attempts: u32,
    now_ms: i64,
    schedule: &RetrySchedule,
    retry_after_cap: Duration,
) -> Decision {
    let (failure, wait_hint, record) = match outcome {
        AttemptOutcome::Response {
            status,
            retry_after,
            location,
            body,
            latency,
            headers: _,
            // A message's status stands even when its body was cut short.
            body_complete: _,
        } => {
            let record = attempt_record(latency, Some(status), None, body);
            if (200..300).contains(&status) {
                return Decision::Delivered { status, record };
            }
            if status == 410 {
                let mut record = record;
                record.error = Some("HTTP 410".into());
                return Decision::Dead {
                    reason: DeadReason::TargetRefused,
                    detail: "the receiver answered 410 Gone: it wants no more deliveries, so this message is not retried".into(),
                    record,
                };
            }
            let failure = match (status, location) {
                (300..=399, Some(to)) => {
                    format!("HTTP {status} (redirect to {to} not followed)")
                }
                (300..=399, None) => format!("HTTP {status} (redirects are not followed)"),
                _ => format!("HTTP {status}"),
            };
            let hint = match status {
                429 | 503 => retry_after.map(|r| r.wait(now_ms, retry_after_cap)),
                _ => None,
            };
            (failure, hint, record)
        }
        AttemptOutcome::Refused(refusal) => {
            let detail = refusal.to_string();
            let record = attempt_record(Duration::ZERO, None, Some(&detail), Vec::new());
            return Decision::Dead {
                reason: DeadReason::TargetRefused,
                detail,
                record,
            };
        }
        AttemptOutcome::Failed { error, latency } => {
            let record = attempt_record(latency, None, Some(&error), Vec::new());
            (error, None, record)
        }
    };
    if attempt >= max_attempts {
        let mut record = record;
        record.error.get_or_insert_with(|| clip(&failure));
        return Decision::Dead {
            reason: DeadReason::MaxAttempts,
            detail: clip(&format!(
                "all {max_attempts} attempts failed; last: {failure}"
            )),
            record,
        };
    }
    let wait = wait_hint.unwrap_or_else(|| schedule.delay_after(attempt, &mut rand::thread_rng()));
    Decision::Retry {
        at_ms: now_ms.saturating_add(duration_ms(wait)),
        error: clip(&failure),
        record,
    }
}

pub(super) fn attempt_record(
    latency: Duration,
    status: Option<u16>,
    error: Option<&str>,
    response_body: Vec<u8>,
) -> AttemptRecord {
    AttemptRecord {
        error: error.map(clip),
        http: HttpExchange {
            status,
            latency_ms: duration_ms(latency),
            response_body,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::RetryAfter;
    use crate::ssrf::Refusal;

    fn schedule() -> RetrySchedule {
        RetrySchedule::new(vec![Duration::from_secs(5), Duration::from_secs(60)])
            .unwrap()
            .with_jitter(0.0)
    }

    fn response(status: u16, retry_after: Option<RetryAfter>) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after,
            location: None,
            headers: Default::default(),
            body: b"ok".to_vec(),
            body_complete: true,
            latency: Duration::from_millis(3),
        }
    }

    fn run(outcome: AttemptOutcome, attempt: u32, max: u32) -> Decision {
        decide(
            outcome,
            attempt,
            max,
            2_000,
            &schedule(),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn two_hundreds_deliver_and_keep_the_body() {
        match run(response(204, None), 1, 3) {
            Decision::Delivered { status, record } => {
                assert_eq!(status, 204);
                assert_eq!(record.http.response_body, b"ok");
                assert_eq!(record.http.latency_ms, 3);
                assert_eq!(record.error, None);
            }
            _ => panic!("expected delivered"),
        }
    }

    #[test]
    fn failures_follow_the_schedule_then_die_with_the_last_status() {
        match run(response(500, None), 1, 3) {
            Decision::Retry { at_ms, error, .. } => {
                assert_eq!(at_ms, 7_000);
                assert_eq!(error, "HTTP 500");
            }
            _ => panic!("expected retry"),
        }
        match run(response(500, None), 2, 3) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 62_000),
            _ => panic!("expected retry"),
        }
        match run(response(502, None), 3, 3) {
            Decision::Dead {
                reason,
                detail,
                record,
            } => {
                assert_eq!(reason, DeadReason::MaxAttempts);
                assert!(detail.contains("HTTP 502"), "{detail}");
                assert_eq!(record.error.as_deref(), Some("HTTP 502"));
            }
            _ => panic!("expected dead"),
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only_and_capped() {
        let ra = Some(RetryAfter::Seconds(30));
        for status in [429, 503] {
            match run(response(status, ra), 1, 3) {
                Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 32_000, "{status}"),
                _ => panic!("expected retry"),
            }
        }
        match run(response(500, ra), 1, 3) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 7_000),
            _ => panic!("expected retry"),
        }
        match run(response(429, Some(RetryAfter::Seconds(1_000_000))), 1, 3) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 602_000),
            _ => panic!("expected retry"),
        }
    }

    #[test]
    fn gone_and_refusals_stop_at_once() {
        match run(response(410, None), 1, 5) {
            Decision::Dead { reason, detail, .. } => {
                assert_eq!(reason, DeadReason::TargetRefused);
                assert!(detail.contains("410 Gone"));
            }
            _ => panic!("expected dead"),
        }
        let refusal = Refusal {
            host: "localhost".into(),
            ip: "127.0.0.1".parse().unwrap(),
            rule: "loopback",
            range: "127.0.0.0/8".into(),
        };
        match run(AttemptOutcome::Refused(refusal), 1, 5) {
            Decision::Dead {
                reason,
                detail,
                record,
            } => {
                assert_eq!(reason, DeadReason::TargetRefused);
                assert!(detail.contains("loopback"), "{detail}");
                assert_eq!(record.error.as_deref(), Some(detail.as_str()));
            }
            _ => panic!("expected dead"),
        }
    }

    #[test]
    fn redirects_are_failures_that_name_the_location() {
        let outcome = AttemptOutcome::Response {
            status: 302,
            retry_after: None,
            location: Some("http://169.254.169.254/".into()),
            headers: Default::default(),
            body: Vec::new(),
            body_complete: true,
            latency: Duration::ZERO,
        };
        match run(outcome, 1, 2) {
            Decision::Retry { error, .. } => {
                assert!(
                    error.contains("not followed") && error.contains("169.254.169.254"),
                    "{error}"
                )
            }
            _ => panic!("expected retry"),
        }
    }
}
