//! A task's history: the append-only list of what happened to it.
//!
//! Every attempt of a task or message (numbered from 1, the numbers going on
//! across replays and resends), and every operator act on it (replay,
//! re-sign, cancel, retry now, resend)
//! and every refusal before it ran, is one [`HistoryEvent`]. Stores write an
//! event in the same write as the change it records, never update or
//! replace one, and delete a task's events only with the task (prune,
//! purge). [`Store::history`](crate::Store::history) reads them in order.

use crate::error::StoreError;
use crate::state::DeadReason;

/// Longest actor text kept on an operator event.
pub const MAX_ACTOR_LEN: usize = 256;

/// One entry of a task's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    /// The task (or message) it belongs to.
    pub task_id: String,
    /// Its place in the task's history: 1, 2, 3, … in the order the events
    /// were written.
    pub seq: i64,
    /// When it happened, unix ms (for an attempt: when it ended).
    pub at_ms: i64,
    /// What happened.
    pub event: Event,
}

/// What a [`HistoryEvent`] records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An attempt ended.
    Attempt(AttemptEvent),
    /// An operator put the dead letter back in its queue.
    Replayed {
        /// Who (an API key, the CLI).
        actor: String,
    },
    /// An operator replaced the signature of the dead letter (the envelope
    /// is unchanged; the new signature is over the same bytes).
    Resigned {
        /// Who.
        actor: String,
        /// The key id of the signature replaced.
        from_key_id: Option<String>,
        /// The key id of the new signature.
        to_key_id: String,
    },
    /// An operator cancelled it before it ran (again).
    Cancelled {
        /// Who.
        actor: String,
    },
    /// An operator made it due at once while it waited to retry (it was
    /// `retryable`); the attempts it had made still count.
    RetriedNow {
        /// Who.
        actor: String,
    },
    /// An operator sent a delivered message again: it is due at once, the
    /// attempts so far move behind the next ones (numbers go on), and it
    /// keeps its id (so its `webhook-id`).
    Resent {
        /// Who.
        actor: String,
    },
    /// It was dead-lettered without running (refused before a claim).
    DeadLettered {
        /// Why.
        reason: DeadReason,
        /// More about why.
        detail: String,
    },
}

impl Event {
    /// The stored name of the kind: `attempt`, `replayed`, `resigned`,
    /// `cancelled`, `retried-now`, `resent`, `dead-lettered`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Attempt(_) => "attempt",
            Event::Replayed { .. } => "replayed",
            Event::Resigned { .. } => "resigned",
            Event::Cancelled { .. } => "cancelled",
            Event::RetriedNow { .. } => "retried-now",
            Event::Resent { .. } => "resent",
            Event::DeadLettered { .. } => "dead-lettered",
        }
    }
}

/// One attempt of a task or message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEvent {
    /// From 1; never reused, also across replays.
    pub number: u32,
    /// The worker (lease owner) that ran it; `None` for attempts recorded
    /// before histories existed.
    pub worker: Option<String>,
    /// When it was claimed, unix ms.
    pub started_at_ms: Option<i64>,
    /// What came of it.
    pub outcome: AttemptOutcome,
    /// The error of a failed attempt.
    pub error: Option<String>,
    /// For a message: the HTTP exchange.
    pub http: Option<HttpExchange>,
}

/// What came of an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// It succeeded (a message was delivered).
    Succeeded,
    /// It failed and the task waits to retry.
    Retry,
    /// It failed and the task was dead-lettered.
    Dead,
    /// Its worker stopped heartbeating; the rescuer made the task
    /// retryable (out of attempts it is [`Dead`](AttemptOutcome::Dead)).
    LeaseExpired,
}

impl AttemptOutcome {
    /// Every outcome.
    pub const ALL: [AttemptOutcome; 4] = [
        AttemptOutcome::Succeeded,
        AttemptOutcome::Retry,
        AttemptOutcome::Dead,
        AttemptOutcome::LeaseExpired,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::LeaseExpired => "lease-expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| StoreError::invalid(format!("unknown attempt outcome {s:?}")))
    }
}

/// The HTTP exchange of one delivery attempt of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpExchange {
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Time to the end of the response (or the failure), ms.
    pub latency_ms: i64,
    /// The first [`MAX_ATTEMPT_BODY_BYTES`](crate::MAX_ATTEMPT_BODY_BYTES)
    /// of the response body.
    pub response_body: Vec<u8>,
}

impl HttpExchange {
    /// The exchange kept in a status, a latency and a body column (of an
    /// attempt event, or of the task row for the success it keeps): none
    /// when the latency is NULL (the attempt was not a delivery). On a bad
    /// value, the column and why, for the backend's corrupt-row error.
    pub fn from_columns(
        status: Option<i64>,
        latency_ms: Option<i64>,
        response_body: Option<Vec<u8>>,
    ) -> Result<Option<HttpExchange>, (&'static str, String)> {
        let Some(latency_ms) = latency_ms else {
            return Ok(None);
        };
        Ok(Some(HttpExchange {
            status: status
                .map(u16::try_from)
                .transpose()
                .map_err(|e| ("status", e.to_string()))?,
            latency_ms,
            response_body: response_body.unwrap_or_default(),
        }))
    }
}

/// Checks an operator's actor text: 1 to [`MAX_ACTOR_LEN`] bytes.
pub fn check_actor(actor: &str) -> Result<(), StoreError> {
    if actor.is_empty() || actor.len() > MAX_ACTOR_LEN {
        return Err(StoreError::invalid(format!(
            "the actor of an operator act must be 1 to {MAX_ACTOR_LEN} bytes, got {}",
            actor.len()
        )));
    }
    Ok(())
}

/// The columns of a stored event, as both backends keep them (one table,
/// `task_events`): what [`HistoryEvent::from_columns`] decodes.
#[derive(Clone, Debug, Default)]
pub struct EventColumns {
    /// `seq`.
    pub seq: i64,
    /// `task_id`.
    pub task_id: String,
    /// `kind`.
    pub kind: String,
    /// `at_ms`.
    pub at_ms: i64,
    /// `attempt`.
    pub attempt: Option<i64>,
    /// `worker`.
    pub worker: Option<String>,
    /// `started_at_ms`.
    pub started_at_ms: Option<i64>,
    /// `outcome`.
    pub outcome: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `status`.
    pub status: Option<i64>,
    /// `latency_ms`.
    pub latency_ms: Option<i64>,
    /// `response_body`.
    pub response_body: Option<Vec<u8>>,
    /// `actor`.
    pub actor: Option<String>,
    /// `reason`.
    pub reason: Option<String>,
    /// `detail`.
    pub detail: Option<String>,
    /// `from_key_id`.
    pub from_key_id: Option<String>,
    /// `to_key_id`.
    pub to_key_id: Option<String>,
}

/// The `task_events` columns in the order [`EventColumns`] lists them.
pub const EVENT_COLUMNS: &str = "seq, task_id, kind, at_ms, attempt, worker, started_at_ms, \
     outcome, error, status, latency_ms, response_body, actor, reason, detail, from_key_id, \
     to_key_id";

impl HistoryEvent {
    /// Decodes stored columns; a value that does not fit gives the name of
    /// the column and why, for the backend's corrupt-row error.
    pub fn from_columns(c: EventColumns) -> Result<HistoryEvent, (&'static str, String)> {
        fn need<T>(v: Option<T>, column: &'static str) -> Result<T, (&'static str, String)> {
            v.ok_or((column, "is NULL".to_owned()))
        }
        let event = match c.kind.as_str() {
            "attempt" => {
                let number = need(c.attempt, "attempt")?;
                let number = u32::try_from(number).map_err(|e| ("attempt", e.to_string()))?;
                let outcome = AttemptOutcome::parse(&need(c.outcome, "outcome")?)
                    .map_err(|e| ("outcome", e.to_string()))?;
                let http = HttpExchange::from_columns(c.status, c.latency_ms, c.response_body)?;
                Event::Attempt(AttemptEvent {
                    number,
                    worker: c.worker,
                    started_at_ms: c.started_at_ms,
                    outcome,
                    error: c.error,
                    http,
                })
            }
            "replayed" => Event::Replayed {
                actor: need(c.actor, "actor")?,
            },
            "resigned" => Event::Resigned {
                actor: need(c.actor, "actor")?,
                from_key_id: c.from_key_id,
                to_key_id: need(c.to_key_id, "to_key_id")?,
            },
            "cancelled" => Event::Cancelled {
                actor: need(c.actor, "actor")?,
            },
            "retried-now" => Event::RetriedNow {
                actor: need(c.actor, "actor")?,
            },
            "resent" => Event::Resent {
                actor: need(c.actor, "actor")?,
            },
            "dead-lettered" => Event::DeadLettered {
                reason: need(c.reason, "reason")?
                    .parse()
                    .map_err(|e: StoreError| ("reason", e.to_string()))?,
                detail: c.detail.unwrap_or_default(),
            },
            other => return Err(("kind", format!("unknown event kind {other:?}"))),
        };
        Ok(HistoryEvent {
            task_id: c.task_id,
            seq: c.seq,
            at_ms: c.at_ms,
            event,
        })
    }
}

/// What a task row keeps of its last attempt, for [`complete_history`].
#[derive(Clone, Debug)]
pub struct RowAttempt {
    /// The task's state.
    pub state: crate::TaskState,
    /// Events numbered so far (`event_seq`).
    pub event_seq: i64,
    /// `attempt_offset + attempt`.
    pub number: i64,
    /// `attempt_worker`.
    pub worker: Option<String>,
    /// `attempt_started_at_ms`.
    pub started_at_ms: Option<i64>,
    /// `finished_at_ms`.
    pub finished_at_ms: Option<i64>,
    /// A delivered message's HTTP exchange (`attempt_status`,
    /// `attempt_latency_ms`, `attempt_response_body`, decoded with
    /// [`HttpExchange::from_columns`]); none for a task.
    pub http: Option<HttpExchange>,
}

/// Adds to the stored `events` of a task the attempt its row keeps: the
/// successful attempt of a task or of a delivered message is numbered
/// (`event_seq`) but not written as an event row (the row, final until an
/// operator resends it, holds it, with a delivery's HTTP exchange), so the
/// completion path stays one write. A resend writes the kept attempt as its
/// event before the row changes.
pub fn complete_history(events: &mut Vec<HistoryEvent>, task_id: &str, row: RowAttempt) {
    let last = events.last().map_or(0, |e| e.seq);
    if row.state != crate::TaskState::Succeeded || row.event_seq <= last {
        return;
    }
    let (Ok(number), Some(at_ms)) = (u32::try_from(row.number), row.finished_at_ms) else {
        return;
    };
    events.push(HistoryEvent {
        task_id: task_id.to_owned(),
        seq: row.event_seq,
        at_ms,
        event: Event::Attempt(AttemptEvent {
            number,
            worker: row.worker,
            started_at_ms: row.started_at_ms,
            outcome: AttemptOutcome::Succeeded,
            error: None,
            http: row.http,
        }),
    });
}

/// The columns [`RowAttempt`] is read from, in its order (the last three
/// are its exchange's, as [`HttpExchange::from_columns`] takes them).
pub const ROW_ATTEMPT_COLUMNS: &str = "state, event_seq, attempt_offset + attempt, \
     attempt_worker, attempt_started_at_ms, finished_at_ms, attempt_status, \
     attempt_latency_ms, attempt_response_body";

/// The attempts of a history, in order.
pub fn attempts(history: &[HistoryEvent]) -> impl Iterator<Item = (&HistoryEvent, &AttemptEvent)> {
    history.iter().filter_map(|e| match &e.event {
        Event::Attempt(a) => Some((e, a)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(o.as_str()).unwrap(), o);
        }
        assert!(AttemptOutcome::parse("maybe").is_err());
    }

    #[test]
    fn columns_decode_each_kind_and_name_what_is_wrong() {
        let attempt = EventColumns {
            seq: 7,
            task_id: "task_1".into(),
            kind: "attempt".into(),
            at_ms: 10,
            attempt: Some(3),
            worker: Some("w".into()),
            started_at_ms: Some(5),
            outcome: Some("retry".into()),
            error: Some("boom".into()),
            status: Some(503),
            latency_ms: Some(4),
            response_body: Some(b"busy".to_vec()),
            ..EventColumns::default()
        };
        let e = HistoryEvent::from_columns(attempt.clone()).unwrap();
        let Event::Attempt(a) = &e.event else {
            panic!("{e:?}")
        };
        assert_eq!((a.number, a.outcome), (3, AttemptOutcome::Retry));
        assert_eq!(a.http.as_ref().unwrap().status, Some(503));
        let bad = EventColumns {
            attempt: Some(-1),
            ..attempt.clone()
        };
        assert_eq!(HistoryEvent::from_columns(bad).unwrap_err().0, "attempt");
        let bad = EventColumns {
            kind: "nonsense".into(),
            ..attempt
        };
        assert_eq!(HistoryEvent::from_columns(bad).unwrap_err().0, "kind");
        let resigned = EventColumns {
            kind: "resigned".into(),
            actor: Some("cli".into()),
            to_key_id: Some("k2".into()),
            from_key_id: Some("k1".into()),
            ..EventColumns::default()
        };
        assert!(matches!(
            HistoryEvent::from_columns(resigned).unwrap().event,
            Event::Resigned { ref to_key_id, .. } if to_key_id == "k2"
        ));
        let dead = EventColumns {
            kind: "dead-lettered".into(),
            reason: Some("expired".into()),
            ..EventColumns::default()
        };
        assert!(matches!(
            HistoryEvent::from_columns(dead).unwrap().event,
            Event::DeadLettered {
                reason: DeadReason::Expired,
                ..
            }
        ));
    }

    #[test]
    fn actors_are_bounded() {
        assert!(check_actor("cli").is_ok());
        assert!(check_actor("").is_err());
        assert!(check_actor(&"a".repeat(MAX_ACTOR_LEN + 1)).is_err());
    }
}
