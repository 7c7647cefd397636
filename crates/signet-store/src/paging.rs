//! Paging through listings: the cursors every backend hands out and takes
//! back. Both listings are newest first. Tasks are paged by id, descending
//! (Signet's ids are UUIDv7, so that is creation order without an index of
//! its own); the cursor is the last id. Dead letters are paged by
//! `(finished_at_ms, id)`; the cursor is `ms:id`.
//!
//! A backend fetches one row more than the page size and passes the rows
//! to [`task_page`] or [`dead_page`], which cut the page and write the
//! cursor.

use crate::error::StoreError;
use crate::ids::{MessageId, TaskId};
use crate::task::{Page, TaskRow};

/// Reads a task cursor: the id of the last row of the previous page (a
/// task or a message id).
pub fn parse_task_cursor(cursor: &str) -> Result<String, StoreError> {
    check_row_id(cursor).map_err(|_| bad_cursor(cursor))?;
    Ok(cursor.to_owned())
}

/// Reads a dead-letter cursor: `(finished_at_ms, id)` of the last row of
/// the previous page.
pub fn parse_dead_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let (ms, id) = cursor.split_once(':').ok_or_else(|| bad_cursor(cursor))?;
    let ms: i64 = ms.parse().map_err(|_| bad_cursor(cursor))?;
    check_row_id(id).map_err(|_| bad_cursor(cursor))?;
    Ok((ms, id.to_owned()))
}

/// The page of at most `limit` tasks in `rows` (fetched with one extra
/// row), with the cursor to the next one.
pub fn task_page(rows: Vec<TaskRow>, limit: usize) -> Page<TaskRow> {
    cut(rows, limit, |r| r.id().to_owned())
}

/// The page of at most `limit` dead letters in `rows` (fetched with one
/// extra row), with the cursor to the next one.
pub fn dead_page(rows: Vec<TaskRow>, limit: usize) -> Page<TaskRow> {
    cut(rows, limit, |r| {
        format!("{}:{}", r.finished_at_ms.unwrap_or_default(), r.id())
    })
}

fn cut(
    mut items: Vec<TaskRow>,
    limit: usize,
    cursor: impl Fn(&TaskRow) -> String,
) -> Page<TaskRow> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// Checks the id of a task row: a task id, or a message id.
fn check_row_id(id: &str) -> Result<(), StoreError> {
    if id.starts_with(MessageId::PREFIX) {
        MessageId::parse(id).map(drop)
    } else {
        TaskId::parse(id).map(drop)
    }
}

fn bad_cursor(cursor: &str) -> StoreError {
    StoreError::invalid(format!(
        "cursor {cursor:?} is not valid; pass the next_cursor of the previous page unchanged"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_must_be_what_a_page_handed_out() {
        let id = TaskId::generate();
        let msg = MessageId::generate();
        assert_eq!(parse_task_cursor(id.as_str()).unwrap(), id.as_str());
        assert_eq!(parse_task_cursor(msg.as_str()).unwrap(), msg.as_str());
        let (ms, back) = parse_dead_cursor(&format!("12:{id}")).unwrap();
        assert_eq!((ms, back.as_str()), (12, id.as_str()));
        let (ms, back) = parse_dead_cursor(&format!("-3:{msg}")).unwrap();
        assert_eq!((ms, back.as_str()), (-3, msg.as_str()));
        assert!(parse_task_cursor("nope")
            .unwrap_err()
            .to_string()
            .contains("next_cursor"));
        for bad in ["12", "x:task_1", "12:nope", "nope"] {
            assert!(parse_dead_cursor(bad).is_err(), "{bad}");
        }
        for bad in ["12", "12:task_1", "nope", "task_"] {
            assert!(parse_task_cursor(bad).is_err(), "{bad}");
        }
    }
}
