//! Filters the store cannot answer from an index (a task's name, a
//! message's target): a bounded scan of the listing, newest first.
//!
//! Listings walk the primary key backwards and stop after a page, with no
//! index on task name or message target: each index costs every enqueue
//! (about a third of PostgreSQL's writer throughput when measured, see
//! docs/benchmarks.md), and a message's target is inside its stored
//! request, where no plain index reaches. So these filters read pages of
//! the listing the API serves and keep the rows that match, up to
//! [`SCAN_BUDGET`] rows a request. A page that ends because the budget ran
//! out says how many rows it looked at and continues, with a cursor, where
//! it stopped: a rare name among a million tasks costs the operator clicks,
//! never the writers, and no request does unbounded work.

use signet_store::{Store, TaskFilter, TaskRow, MAX_PAGE};

use crate::error::AppError;

/// Most rows one request looks at.
pub(crate) const SCAN_BUDGET: usize = 5_000;

/// What a listing page or a bounded scan found.
pub(crate) struct Scan {
    /// The matching rows, newest first, at most the page size asked for.
    pub(crate) items: Vec<TaskRow>,
    /// Rows looked at.
    pub(crate) scanned: usize,
    /// Where the next request continues (a task cursor: the id of the last
    /// row looked at, as `signet_store::paging::parse_task_cursor` reads
    /// it); `None` when the listing is exhausted.
    pub(crate) next_cursor: Option<String>,
    /// Whether it stopped because [`SCAN_BUDGET`] ran out, not because the
    /// page was full.
    pub(crate) budget_spent: bool,
}

/// One page of `filter`'s listing: the store's page when nothing else
/// filters, else a bounded scan (of [`SCAN_BUDGET`] rows) for the rows
/// `matches` accepts.
pub(crate) async fn listing(
    store: &dyn Store,
    filter: TaskFilter,
    matches: Option<impl Fn(&TaskRow) -> bool>,
) -> Result<Scan, AppError> {
    match matches {
        None => {
            let page = store.list_tasks(filter).await?;
            Ok(Scan {
                scanned: page.items.len(),
                items: page.items,
                next_cursor: page.next_cursor,
                budget_spent: false,
            })
        }
        Some(matches) => {
            let want = signet_store::page_size(filter.limit);
            scan(store, filter, want, SCAN_BUDGET, matches).await
        }
    }
}

/// Reads `filter`'s listing from its cursor, keeping the rows `matches`
/// accepts, until `want` rows matched, the listing ends, or `budget` rows
/// were looked at.
async fn scan(
    store: &dyn Store,
    mut filter: TaskFilter,
    want: usize,
    budget: usize,
    matches: impl Fn(&TaskRow) -> bool,
) -> Result<Scan, AppError> {
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        filter.limit = MAX_PAGE.min(budget - scanned).max(1);
        let page = store.list_tasks(filter.clone()).await?;
        let last = page.items.len();
        for (i, row) in page.items.into_iter().enumerate() {
            scanned += 1;
            let id = row.id().to_owned();
            if matches(&row) {
                items.push(row);
            }
            let at_end = i + 1 == last && page.next_cursor.is_none();
            if items.len() == want {
                return Ok(Scan {
                    items,
                    scanned,
                    next_cursor: (!at_end).then_some(id),
                    budget_spent: false,
                });
            }
        }
        match page.next_cursor {
            None => {
                return Ok(Scan {
                    items,
                    scanned,
                    next_cursor: None,
                    budget_spent: false,
                })
            }
            Some(cursor) if scanned >= budget => {
                return Ok(Scan {
                    items,
                    scanned,
                    next_cursor: Some(cursor),
                    budget_spent: true,
                })
            }
            Some(cursor) => filter.cursor = Some(cursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use signet_runtime::{Producer, TaskSpec};
    use signet_sign::KeyRing;
    use signet_sqlite::{SqliteConfig, SqliteStore};

    use super::*;

    /// A store of 30 tasks, newest first named `t29` … `t0`, every tenth
    /// (`t0`, `t10`, `t20`) named `rare`.
    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
        let producer =
            Producer::with_ring(Arc::clone(&store), Arc::new(KeyRing::empty()), false).unwrap();
        for i in 0..30 {
            let name = if i % 10 == 0 {
                "rare".to_owned()
            } else {
                format!("t{i}")
            };
            producer
                .enqueue(TaskSpec::new(name, &serde_json::json!({})).queue("q"))
                .await
                .unwrap();
        }
        (dir, store)
    }

    fn rare(row: &TaskRow) -> bool {
        row.envelope.name == "rare"
    }

    #[tokio::test]
    async fn a_scan_stops_at_its_budget_and_continues_where_it_stopped() {
        let (_dir, store) = store().await;
        let filter = TaskFilter::default();
        // 9 rows looked at (t29 … t21): no match yet, and it says so.
        let first = scan(store.as_ref(), filter.clone(), 50, 9, rare)
            .await
            .unwrap();
        assert!(first.items.is_empty());
        assert_eq!((first.scanned, first.budget_spent), (9, true));
        // Continued from there: t20 is the next row.
        let next = TaskFilter {
            cursor: first.next_cursor,
            ..filter.clone()
        };
        let second = scan(store.as_ref(), next, 50, 9, rare).await.unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.scanned, 9);
        // A budget past the end: every match, nothing to continue.
        let all = scan(store.as_ref(), filter.clone(), 50, 1000, rare)
            .await
            .unwrap();
        assert_eq!((all.items.len(), all.scanned), (3, 30));
        assert!(all.next_cursor.is_none() && !all.budget_spent);
        // A full page stops early and continues after its last match.
        let two = scan(store.as_ref(), filter.clone(), 2, 1000, rare)
            .await
            .unwrap();
        assert_eq!(
            (two.items.len(), two.scanned, two.budget_spent),
            (2, 20, false)
        );
        let rest = TaskFilter {
            cursor: two.next_cursor,
            ..filter
        };
        let last = scan(store.as_ref(), rest, 2, 1000, rare).await.unwrap();
        assert_eq!((last.items.len(), last.scanned), (1, 10));
        assert!(last.next_cursor.is_none());
    }
}
