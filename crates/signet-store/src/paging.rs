//! Paging through listings: the cursors every backend hands out and takes
//! back. Both listings are newest first and paged by a time and the id,
//! the cursor being `ms:id` of the last row of the previous page: tasks by
//! `(created_at_ms, id)`, dead letters by `(finished_at_ms, id)`.
//!
//! A backend fetches one row more than the page size and passes the rows
//! to [`task_page`] or [`dead_page`], which cut the page and write the
//! cursor.

use crate::error::StoreError;
use crate::ids::{MessageId, TaskId};
use crate::task::{Page, TaskRow};

/// Reads a task cursor: `(created_at_ms, id)` of the last row of the
/// previous page.
pub fn parse_task_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    parse_time_cursor(cursor)
}

/// Reads a dead-letter cursor: `(finished_at_ms, id)` of the last row of
/// the previous page.
pub fn parse_dead_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    parse_time_cursor(cursor)
}

/// Reads an `ms:id` cursor.
fn parse_time_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let (ms, id) = cursor.split_once(':').ok_or_else(|| bad_cursor(cursor))?;
    let ms: i64 = ms.parse().map_err(|_| bad_cursor(cursor))?;
    check_row_id(id).map_err(|_| bad_cursor(cursor))?;
    Ok((ms, id.to_owned()))
}

/// The page of at most `limit` tasks in `rows` (fetched with one extra
/// row), with the cursor to the next one.
pub fn task_page(rows: Vec<TaskRow>, limit: usize) -> Page<TaskRow> {
    cut(rows, limit, |r| {
        format!("{}:{}", r.envelope.created_at_ms, r.id())
    })
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
        for parse in [parse_task_cursor, parse_dead_cursor] {
            let (ms, back) = parse(&format!("12:{id}")).unwrap();
            assert_eq!((ms, back.as_str()), (12, id.as_str()));
            let (ms, back) = parse(&format!("-3:{msg}")).unwrap();
            assert_eq!((ms, back.as_str()), (-3, msg.as_str()));
            // A bare id (the cursor of the id-ordered listing before
            // newest-first) is refused with what to do.
            assert!(parse(id.as_str())
                .unwrap_err()
                .to_string()
                .contains("next_cursor"));
            for bad in ["12", "x:task_1", "12:nope", "nope"] {
                assert!(parse(bad).is_err(), "{bad}");
            }
        }
    }
}
