//! Dead letters whose signing key left the ring: re-signing them with the
//! active key and replaying them (`signet dlq replay --resign`, the API's
//! `resign: true`), and the warning a plain replay of one gives.
//!
//! A task signed with a key that was removed from the ring dies
//! `signature-invalid` (`unknown-key`), and replaying it as it is dies
//! again. Re-signing replaces only its signature (the envelope, and so what
//! the new signature covers, stays byte for byte) and records who did it,
//! with the old and new key ids, in the task's history. Only a dead letter
//! whose stored key id is not in the ring qualifies: one whose key is in
//! the ring failed for another reason (a changed envelope, a bad
//! signature), and signing it again would vouch for what nobody signed.

use signet_sign::KeyRing;
use signet_store::{
    DeadFilter, DeadReason, DeadSelector, SignatureRecord, Store, TaskRow, TaskState, MAX_PAGE,
};

use crate::error::RuntimeError;

/// Most dead letters one re-sign acts on.
pub const MAX_RESIGN: usize = 1000;

/// What a re-sign did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResignReport {
    /// Re-signed and replayed.
    pub resigned: Vec<Resigned>,
    /// Left as they are, each with the reason.
    pub refused: Vec<ResignRefusal>,
}

/// One dead letter re-signed and replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resigned {
    /// The task or message.
    pub id: String,
    /// The key id it was signed with.
    pub from_key_id: String,
    /// The key id it is signed with now.
    pub to_key_id: String,
}

/// One dead letter not re-signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResignRefusal {
    /// The id asked for.
    pub id: String,
    /// Why, for a person.
    pub reason: String,
}

/// Why `row` may not be re-signed with `ring`, or `None` when it may.
fn refusal(ring: &KeyRing, row: &TaskRow) -> Option<String> {
    if row.state != TaskState::Dead {
        return Some(format!(
            "it is {}; only dead letters can be re-signed",
            row.state
        ));
    }
    if row.dead_reason != Some(DeadReason::SignatureInvalid) {
        let reason = row.dead_reason.map_or("unknown", DeadReason::as_str);
        return Some(format!(
            "it died {reason}, not of a signature by a key that left the ring; replay it without --resign"
        ));
    }
    let Some(sig) = &row.signature else {
        return Some(
            "it is unsigned; re-signing would vouch for work nobody signed, so it stays dead (purge it, or enqueue it again signed)"
                .to_owned(),
        );
    };
    if ring.get(&sig.key_id).is_some() {
        return Some(format!(
            "its key {:?} is in the key ring, so its signature failed for another reason ({}); re-signing would hide that, so it stays dead",
            sig.key_id,
            row.dead_detail.as_deref().unwrap_or("no detail")
        ));
    }
    None
}

/// The warning a plain replay of `row` deserves: it is signed with a key
/// that is not in `ring`, so it will die `unknown-key` again.
pub(crate) fn unknown_key_warning(ring: &KeyRing, row: &TaskRow) -> Option<String> {
    let sig = row.signature.as_ref()?;
    if ring.is_empty() || ring.get(&sig.key_id).is_some() {
        return None;
    }
    Some(format!(
        "{} is signed with key {:?}, which is not in this key ring: it will be dead-lettered signature-invalid (unknown-key) again; add the key back, or replay it with --resign (admin) to sign it with the active key",
        row.id(),
        sig.key_id
    ))
}

/// The dead letters `selector` names, at most [`MAX_RESIGN`]; ids that are
/// not dead letters come back as refusals.
async fn select(
    store: &dyn Store,
    selector: DeadSelector,
) -> Result<(Vec<TaskRow>, Vec<ResignRefusal>), RuntimeError> {
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    match selector {
        DeadSelector::Ids(ids) => {
            if ids.len() > MAX_RESIGN {
                return Err(RuntimeError::InvalidTask(format!(
                    "{} ids given; re-sign at most {MAX_RESIGN} at a time",
                    ids.len()
                )));
            }
            for id in ids {
                match store.task(&id).await? {
                    Some(row) => rows.push(row),
                    None => refused.push(ResignRefusal {
                        id,
                        reason: "not found".to_owned(),
                    }),
                }
            }
        }
        DeadSelector::Filter(filter) => {
            let mut cursor = None;
            loop {
                let page = store
                    .list_dead(DeadFilter {
                        limit: MAX_PAGE,
                        cursor,
                        ..filter.clone()
                    })
                    .await?;
                rows.extend(page.items);
                if rows.len() > MAX_RESIGN {
                    return Err(RuntimeError::InvalidTask(format!(
                        "the filter matches more than {MAX_RESIGN} dead letters; narrow it (queue, reason, since, until) and re-sign in parts"
                    )));
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok((rows, refused))
}

/// Re-signs with the active key of `ring` each dead letter `selector` names
/// whose key is not in `ring`, records it (`actor`) in its history, and
/// replays the re-signed ones. The others are left as they are, each with
/// the reason. A ring without an active signing key is a
/// [`RuntimeError::Config`].
pub async fn resign_and_replay(
    store: &dyn Store,
    ring: &KeyRing,
    selector: DeadSelector,
    actor: &str,
    now_ms: i64,
) -> Result<ResignReport, RuntimeError> {
    if ring.active().is_none() {
        return Err(RuntimeError::Config(format!(
            "re-signing needs an active signing key and this key ring has none ({} key(s), none active or able to sign); set SIGNET_SIGNING_ACTIVE_KEY to a key that can sign",
            ring.len()
        )));
    }
    let (rows, mut refused) = select(store, selector).await?;
    let mut resigned = Vec::new();
    for row in rows {
        if let Some(reason) = refusal(ring, &row) {
            refused.push(ResignRefusal {
                id: row.id().to_owned(),
                reason,
            });
            continue;
        }
        let from_key_id = row
            .signature
            .as_ref()
            .map(|s| s.key_id.clone())
            .unwrap_or_default();
        let sig = row.envelope.sign(ring)?;
        let signature = SignatureRecord {
            alg: sig.alg,
            key_id: sig.key_id.as_str().to_owned(),
            sig: sig.sig,
        };
        let to_key_id = signature.key_id.clone();
        match store.resign_dead(row.id(), signature, actor, now_ms).await {
            Ok(_) => resigned.push(Resigned {
                id: row.id().to_owned(),
                from_key_id,
                to_key_id,
            }),
            // Replayed or purged by someone else meanwhile.
            Err(e) if e.is_not_found() || matches!(e, signet_store::StoreError::Conflict(_)) => {
                refused.push(ResignRefusal {
                    id: row.id().to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !resigned.is_empty() {
        let ids = resigned.iter().map(|r| r.id.clone()).collect();
        store
            .replay_dead(DeadSelector::Ids(ids), actor, now_ms)
            .await?;
    }
    Ok(ResignReport { resigned, refused })
}

/// The warnings of a plain replay of `ids` (one per task signed with a key
/// the ring lacks), read from the store.
pub async fn replay_warnings(
    store: &dyn Store,
    ring: &KeyRing,
    ids: &[String],
) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    if ring.is_empty() {
        return Ok(out);
    }
    for id in ids {
        if let Some(row) = store.task(id).await? {
            out.extend(unknown_key_warning(ring, &row));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use signet_sign::{HmacSecret, Key, KeyId, KeyMaterial, TaskEnvelope};
    use signet_store::{TaskId, TaskRow};

    use super::*;

    fn key(id: &str, byte: u8) -> Key {
        Key::new(
            KeyId::new(id).unwrap(),
            KeyMaterial::Hmac(HmacSecret::new(vec![byte; 32]).unwrap()),
        )
    }

    fn dead_row(key_id: Option<&str>, reason: DeadReason) -> TaskRow {
        TaskRow {
            envelope: TaskEnvelope {
                id: TaskId::generate().to_string(),
                queue: "q".into(),
                name: "t".into(),
                args: b"{}".to_vec(),
                headers: BTreeMap::new(),
                created_at_ms: 1,
                not_before_ms: None,
                expires_at_ms: None,
                max_attempts: 3,
                callback_url: None,
            },
            signature: key_id.map(|k| SignatureRecord {
                alg: signet_sign::Algorithm::HmacSha256,
                key_id: k.into(),
                sig: vec![1; 32],
            }),
            state: TaskState::Dead,
            priority: 0,
            attempt: 1,
            attempts_before: 0,
            run_at_ms: 1,
            lease_owner: None,
            lease_expires_at_ms: None,
            last_error: None,
            dead_reason: Some(reason),
            dead_detail: Some("unknown-key: gone".into()),
            result: None,
            idempotency_key: None,
            updated_at_ms: 1,
            finished_at_ms: Some(1),
        }
    }

    #[test]
    fn only_dead_letters_signed_with_a_key_that_left_the_ring_qualify() {
        let ring = KeyRing::new(vec![key("new", 2)], Some(KeyId::new("new").unwrap())).unwrap();
        let gone = dead_row(Some("old"), DeadReason::SignatureInvalid);
        assert_eq!(refusal(&ring, &gone), None);
        let in_ring = dead_row(Some("new"), DeadReason::SignatureInvalid);
        assert!(refusal(&ring, &in_ring)
            .unwrap()
            .contains("in the key ring"));
        let unsigned = dead_row(None, DeadReason::SignatureInvalid);
        assert!(refusal(&ring, &unsigned).unwrap().contains("unsigned"));
        let other = dead_row(Some("old"), DeadReason::MaxAttempts);
        assert!(refusal(&ring, &other).unwrap().contains("without --resign"));
        let mut alive = dead_row(Some("old"), DeadReason::SignatureInvalid);
        alive.state = TaskState::Available;
        assert!(refusal(&ring, &alive).unwrap().contains("available"));
    }

    #[test]
    fn a_replay_warns_only_about_keys_outside_the_ring() {
        let ring = KeyRing::new(vec![key("new", 2)], Some(KeyId::new("new").unwrap())).unwrap();
        let gone = dead_row(Some("old"), DeadReason::SignatureInvalid);
        let w = unknown_key_warning(&ring, &gone).unwrap();
        assert!(w.contains("\"old\"") && w.contains("--resign"), "{w}");
        let ok = dead_row(Some("new"), DeadReason::MaxAttempts);
        assert_eq!(unknown_key_warning(&ring, &ok), None);
        assert_eq!(unknown_key_warning(&KeyRing::empty(), &gone), None);
        assert_eq!(
            unknown_key_warning(&ring, &dead_row(None, DeadReason::MaxAttempts)),
            None
        );
    }
}
