//! Rows as every backend writes them and reads them back: the row a new
//! task starts as, and what a stored value must look like to decode.
//!
//! The backends keep their SQL and their drivers; what a column means, and
//! which stored values count as a corrupt row, is decided here once.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use signet_sign::Algorithm;

use crate::error::StoreError;
use crate::state::{DeadReason, TaskState};
use crate::task::{
    ApiKeyRecord, KeyUsage, LeaseToken, NewTask, QueueCounts, SignatureRecord, TaskRow,
};

/// The columns of the `tasks` table (the same names on every backend), in
/// the order the backends' task decoders read them.
pub const TASK_COLUMNS: &str = "id, queue, name, args, headers, created_at_ms, \
     not_before_ms, expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, \
     state, priority, attempt, run_at_ms, lease_owner, lease_expires_at_ms, last_error, \
     dead_reason, dead_detail, result, idempotency_key, updated_at_ms, finished_at_ms, \
     attempt_offset";

/// The columns of the `api_keys` table, in the order the backends' API key
/// decoders read them.
pub const API_KEY_COLUMNS: &str = "id, name, scope, hash, prefix, created_at_ms, revoked_at_ms";

/// A stored value that does not decode: the column (as the backends name
/// it in their messages) and why. A backend turns it into its own
/// [`corrupt_row`] error naming the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadColumn {
    /// The column, or the group of columns, that does not decode.
    pub column: &'static str,
    /// Why.
    pub cause: String,
}

impl BadColumn {
    fn new(column: &'static str, cause: impl fmt::Display) -> Self {
        Self {
            column,
            cause: cause.to_string(),
        }
    }
}

/// The error for a row that does not decode: the `what` row `id` has an
/// unreadable `column`. `inspect_with` names the tool to look at it with
/// (`sqlite3`, `psql`).
pub fn corrupt_row(
    what: &str,
    id: &str,
    column: &str,
    inspect_with: &str,
    cause: impl fmt::Display,
) -> StoreError {
    StoreError::backend(
        format!(
            "{what} {id} has an unreadable {column} column; the row is corrupt (edited by hand or damaged). Inspect it with {inspect_with}, or purge or delete the row"
        ),
        cause.to_string(),
    )
}

impl TaskRow {
    /// The row `task` is stored as when enqueued: in `state`, due at
    /// `run_at_ms`, no attempt yet, no lease and no outcome.
    pub fn enqueued(task: NewTask, state: TaskState, run_at_ms: i64, now_ms: i64) -> TaskRow {
        TaskRow {
            envelope: task.envelope,
            signature: task.signature,
            state,
            priority: task.priority,
            attempt: 0,
            attempts_before: 0,
            run_at_ms,
            lease_owner: None,
            lease_expires_at_ms: None,
            last_error: None,
            dead_reason: None,
            dead_detail: None,
            result: None,
            idempotency_key: task.idempotency_key,
            updated_at_ms: now_ms,
            finished_at_ms: None,
        }
    }
}

/// The order a claim returns its rows in: highest priority first, then
/// the earliest `run_at_ms`, then by id.
pub fn claim_order(a: &TaskRow, b: &TaskRow) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.run_at_ms.cmp(&b.run_at_ms))
        .then_with(|| a.id().cmp(b.id()))
}

impl LeaseToken {
    /// The error for a call presenting this lease once it is no longer the
    /// task's current one.
    pub fn lost(&self) -> StoreError {
        StoreError::LeaseLost {
            task_id: self.task_id.clone(),
            attempt: self.attempt,
        }
    }
}

impl SignatureRecord {
    /// Decodes the `sig_alg`, `sig_key_id` and `sig` columns: all set (a
    /// signed task) or all NULL (an unsigned one).
    pub fn from_columns(
        alg: Option<String>,
        key_id: Option<String>,
        sig: Option<Vec<u8>>,
    ) -> Result<Option<SignatureRecord>, BadColumn> {
        let alg = alg
            .map(|a| a.parse::<Algorithm>())
            .transpose()
            .map_err(|e| BadColumn::new("sig_alg", e))?;
        match (alg, key_id, sig) {
            (Some(alg), Some(key_id), Some(sig)) => Ok(Some(SignatureRecord { alg, key_id, sig })),
            (None, None, None) => Ok(None),
            _ => Err(BadColumn::new(
                "signature",
                "sig_alg, sig_key_id and sig must be all set or all NULL",
            )),
        }
    }
}

/// Encodes task headers for the `headers` column (a JSON object).
pub fn headers_to_json(headers: &BTreeMap<String, String>) -> Result<String, StoreError> {
    serde_json::to_string(headers)
        .map_err(|e| StoreError::backend("encoding task headers as JSON", e))
}

/// Decodes the `headers` column.
pub fn headers_from_json(json: &str) -> Result<BTreeMap<String, String>, BadColumn> {
    serde_json::from_str(json).map_err(|e| BadColumn::new("headers", e))
}

/// Decodes the `state` column.
pub fn state_from_column(state: &str) -> Result<TaskState, BadColumn> {
    state.parse().map_err(|e| BadColumn::new("state", e))
}

/// Decodes the `dead_reason` column (NULL unless the task is dead).
pub fn dead_reason_from_column(reason: Option<String>) -> Result<Option<DeadReason>, BadColumn> {
    reason
        .map(|r| r.parse())
        .transpose()
        .map_err(|e: StoreError| BadColumn::new("dead_reason", e))
}

impl QueueCounts {
    /// Groups `(queue, state, count)` rows by queue (queues by name, states
    /// in order). A state the build does not know means a corrupt database.
    pub fn from_counted(
        rows: impl IntoIterator<Item = (String, String, i64)>,
    ) -> Result<Vec<QueueCounts>, StoreError> {
        let mut by_queue: BTreeMap<String, Vec<(TaskState, u64)>> = BTreeMap::new();
        for (queue, state, n) in rows {
            let state: TaskState = state.parse().map_err(|e: StoreError| {
                StoreError::backend(
                    format!("queue {queue} has tasks in an unknown state; the database is corrupt"),
                    e,
                )
            })?;
            by_queue
                .entry(queue)
                .or_default()
                .push((state, u64::try_from(n).unwrap_or_default()));
        }
        Ok(by_queue
            .into_iter()
            .map(|(queue, mut counts)| {
                counts.sort();
                QueueCounts { queue, counts }
            })
            .collect())
    }
}

impl KeyUsage {
    /// One `(sig_key_id, sig_alg, tasks, messages)` row of pending work per
    /// key. An algorithm the build does not know means a corrupt database.
    pub fn from_counted(
        key_id: Option<String>,
        alg: Option<String>,
        tasks: i64,
        messages: i64,
    ) -> Result<KeyUsage, StoreError> {
        let alg = alg
            .map(|a| {
                a.parse::<Algorithm>().map_err(|e| {
                    StoreError::backend(
                        format!(
                            "tasks signed with key {key_id:?} name an unknown algorithm; the database is corrupt"
                        ),
                        e,
                    )
                })
            })
            .transpose()?;
        Ok(KeyUsage {
            key_id,
            alg,
            tasks: u64::try_from(tasks).unwrap_or_default(),
            messages: u64::try_from(messages).unwrap_or_default(),
        })
    }
}

impl ApiKeyRecord {
    /// The error when storing this key hits one already stored with the
    /// same id or the same secret.
    pub fn already_stored(&self) -> StoreError {
        StoreError::Conflict(format!(
            "api key {} was not stored: a key with the same id or the same secret already exists; generate a new key",
            self.id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_columns_are_all_set_or_all_null() {
        assert_eq!(SignatureRecord::from_columns(None, None, None), Ok(None));
        let signed = SignatureRecord::from_columns(
            Some("hmac-sha256".into()),
            Some("k1".into()),
            Some(vec![1, 2]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (signed.alg, signed.key_id.as_str()),
            (Algorithm::HmacSha256, "k1")
        );
        let half = SignatureRecord::from_columns(None, Some("k1".into()), None).unwrap_err();
        assert_eq!(half.column, "signature");
        let unknown =
            SignatureRecord::from_columns(Some("rot13".into()), Some("k".into()), Some(vec![]))
                .unwrap_err();
        assert_eq!(unknown.column, "sig_alg");
    }

    #[test]
    fn counts_group_by_queue_and_refuse_unknown_states() {
        let counts = QueueCounts::from_counted([
            ("b".to_owned(), "running".to_owned(), 2),
            ("a".to_owned(), "available".to_owned(), 1),
            ("b".to_owned(), "available".to_owned(), 3),
        ])
        .unwrap();
        assert_eq!(counts[0].queue, "a");
        assert_eq!(counts[1].count(TaskState::Available), 3);
        assert_eq!(counts[1].count(TaskState::Running), 2);
        assert!(QueueCounts::from_counted([("a".to_owned(), "lost".to_owned(), 1)]).is_err());
        assert!(KeyUsage::from_counted(Some("k".into()), Some("rot13".into()), 1, 0).is_err());
        let usage = KeyUsage::from_counted(None, None, 4, 2).unwrap();
        assert_eq!((usage.tasks, usage.messages, usage.pending()), (4, 2, 6));
    }
}
