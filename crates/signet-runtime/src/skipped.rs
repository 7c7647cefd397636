//! Why a replay or purge of named dead letters left some of them alone.
//!
//! `Store::replay_dead` and `Store::purge_dead` with
//! [`DeadSelector::Ids`](signet_store::DeadSelector::Ids) act on the ids
//! that are dead letters and return those; the others are looked up
//! afterwards, here, for the reason. `signet dlq replay|purge` and
//! `/v1/dead-letters/replay|purge` both call [`skipped_dead_letters`].

use signet_store::Store;

use crate::error::RuntimeError;

/// A named dead letter that was not acted on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The id asked for.
    pub id: String,
    /// Why, for a person: `not found`, or `not a dead letter (it is …)`.
    pub reason: String,
}

/// The ids in `asked` that are not in `acted`, each once, in the order
/// asked, with the reason each was left alone (read now, after the act).
pub async fn skipped_dead_letters(
    store: &dyn Store,
    asked: &[String],
    acted: &[String],
) -> Result<Vec<Skipped>, RuntimeError> {
    let mut skipped: Vec<Skipped> = Vec::new();
    for id in asked {
        if acted.contains(id) || skipped.iter().any(|s| &s.id == id) {
            continue;
        }
        let reason = match store.task(id).await? {
            None => "not found".to_owned(),
            Some(row) => format!("not a dead letter (it is {})", row.state),
        };
        skipped.push(Skipped {
            id: id.clone(),
            reason,
        });
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use signet_store::testkit::{new_task, put};
    use signet_store::{DeadReason, DeadSelector, Store, TaskId};

    use super::*;

    #[tokio::test]
    async fn each_id_left_alone_gets_its_reason_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store: Arc<dyn Store> = Arc::new(
            signet_sqlite::SqliteStore::open(&url, signet_sqlite::SqliteConfig::default()).unwrap(),
        );
        let waiting = put(store.as_ref(), new_task("default")).await;
        let dead = put(store.as_ref(), new_task("default")).await;
        store
            .kill(dead.id(), DeadReason::Expired, "late", 1)
            .await
            .unwrap();
        let missing = TaskId::generate().to_string();
        let asked: Vec<String> = [dead.id(), waiting.id(), &missing, waiting.id()]
            .map(str::to_owned)
            .to_vec();
        let replayed = store
            .replay_dead(DeadSelector::Ids(asked.clone()), "test", 2)
            .await
            .unwrap();
        assert_eq!(replayed, [dead.id()]);
        let skipped = skipped_dead_letters(store.as_ref(), &asked, &replayed)
            .await
            .unwrap();
        assert_eq!(
            skipped,
            [
                Skipped {
                    id: waiting.id().to_owned(),
                    reason: "not a dead letter (it is available)".into(),
                },
                Skipped {
                    id: missing,
                    reason: "not found".into(),
                },
            ]
        );
    }
}
