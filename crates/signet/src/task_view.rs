//! How a task is shown to people: a table row, a detail page, its history.
//!
//! Everything here reads the API's JSON view of a task (`GET /v1/tasks`,
//! `GET /v1/tasks/{id}`, `GET /v1/dead-letters…`), the one description of
//! a task, whichever of the database or a server answered.

use serde_json::Value;

use crate::output::{emit, print_json, truncate, Table};

/// The text of field `key` of `v`: strings as they are, numbers and
/// booleans printed, `-` when absent or null.
pub(crate) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Columns of a task listing.
pub(crate) const TASK_COLUMNS: &[&str] = &[
    "ID", "QUEUE", "NAME", "STATE", "ATTEMPT", "PRIORITY", "RUN AT", "KEY",
];

/// One row of a task listing.
pub(crate) fn task_cells(t: &Value) -> Vec<String> {
    vec![
        text(t, "id"),
        text(t, "queue"),
        text(t, "task"),
        text(t, "state"),
        format!("{}/{}", text(t, "attempt"), text(t, "max_attempts")),
        text(t, "priority"),
        text(t, "run_at"),
        key_label(t),
    ]
}

/// Columns of a dead-letter listing.
pub(crate) const DEAD_COLUMNS: &[&str] = &[
    "ID", "QUEUE", "NAME", "REASON", "DEAD AT", "ATTEMPTS", "DETAIL",
];

/// One row of a dead-letter listing.
pub(crate) fn dead_cells(t: &Value) -> Vec<String> {
    vec![
        text(t, "id"),
        text(t, "queue"),
        text(t, "task"),
        text(t, "dead_reason"),
        text(t, "finished_at"),
        text(t, "attempts_made"),
        truncate(&text(t, "dead_detail"), 60),
    ]
}

/// The signing key id, or `unsigned`.
fn key_label(t: &Value) -> String {
    t.get("signature")
        .filter(|s| !s.is_null())
        .map_or_else(|| "unsigned".to_owned(), |s| text(s, "key_id"))
}

/// A task as `name: value` lines, for people.
pub(crate) fn task_detail(t: &Value) -> String {
    let mut table = Table::new(&["FIELD", "VALUE"]);
    let mut add = |k: &str, v: String| table.row(vec![k.to_owned(), v]);
    let present = |k: &str| t.get(k).is_some_and(|v| !v.is_null());
    add("id", text(t, "id"));
    add("queue", text(t, "queue"));
    add("name", text(t, "task"));
    add("state", text(t, "state"));
    add(
        "attempt",
        format!("{} of {}", text(t, "attempt"), text(t, "max_attempts")),
    );
    let attempt = t.get("attempt").and_then(Value::as_u64).unwrap_or(0);
    let made = t.get("attempts_made").and_then(Value::as_u64).unwrap_or(0);
    if made > attempt {
        add(
            "attempts made",
            format!("{made} ({} before the last replay)", made - attempt),
        );
    }
    add("priority", text(t, "priority"));
    add("created at", text(t, "created_at"));
    add("run at", text(t, "run_at"));
    for (key, label) in [("not_before", "not before"), ("expires_at", "expires at")] {
        if present(key) {
            add(label, text(t, key));
        }
    }
    add("updated at", text(t, "updated_at"));
    if present("finished_at") {
        add("finished at", text(t, "finished_at"));
    }
    match t.get("signature").filter(|s| !s.is_null()) {
        Some(sig) => add(
            "signed",
            format!("{} key {}", text(sig, "alg"), text(sig, "key_id")),
        ),
        None => add("signed", "no (unsigned)".to_owned()),
    }
    if present("callback_url") {
        add("callback url", text(t, "callback_url"));
    }
    if let Some(Value::Object(headers)) = t.get("headers") {
        for (name, value) in headers {
            add(
                "header",
                format!("{name}: {}", value.as_str().unwrap_or_default()),
            );
        }
    }
    for (key, label) in [
        ("last_error", "last error"),
        ("dead_reason", "dead reason"),
        ("dead_detail", "dead detail"),
    ] {
        if present(key) {
            add(label, text(t, key));
        }
    }
    if present("result") {
        add("result", t["result"].to_string());
    }
    if present("redacted") {
        add("redacted", text(t, "redacted"));
    }
    // Args last: they can be long. Shown as JSON, or the base64 of bytes
    // that are not.
    if present("args_base64") {
        add(
            "args",
            format!("(binary, base64) {}", text(t, "args_base64")),
        );
    } else {
        add(
            "args",
            t.get("args").map_or_else(String::new, Value::to_string),
        );
    }
    table.render()
}

/// Prints a page (`{"items", "next_cursor"}`) as the API answered it
/// (`json`), or as a table with `columns`/`cells`, `empty` when there is
/// nothing, and the cursor hint.
pub(crate) fn print_page(
    page: &Value,
    json: bool,
    columns: &'static [&'static str],
    cells: fn(&Value) -> Vec<String>,
    empty: &str,
) -> anyhow::Result<()> {
    if json {
        return print_json(page, false);
    }
    let mut table = Table::new(columns);
    for item in page["items"].as_array().into_iter().flatten() {
        table.row(cells(item));
    }
    if table.is_empty() {
        emit(&format!("{empty}\n"))?;
    } else {
        emit(&table.render())?;
    }
    if let Some(cursor) = page["next_cursor"].as_str() {
        emit(&format!("more: --cursor {cursor}\n"))?;
    }
    Ok(())
}

/// A history (the API's `history`) as a table, oldest first, for people.
pub(crate) fn history_table(history: &Value) -> String {
    let events = history.as_array().map(Vec::as_slice).unwrap_or_default();
    if events.is_empty() {
        return "history: nothing yet (no attempt has ended)\n".to_owned();
    }
    let mut t = Table::new(&["AT", "EVENT", "WHO", "DETAIL"]);
    for e in events {
        let kind = text(e, "kind");
        let (event, who, detail) = match kind.as_str() {
            "attempt" => {
                let mut detail = String::new();
                if let Some(h) = e.get("http").filter(|h| !h.is_null()) {
                    match h.get("status").and_then(Value::as_u64) {
                        Some(s) => {
                            detail.push_str(&format!("HTTP {s} in {} ms", text(h, "latency_ms")));
                        }
                        None => detail
                            .push_str(&format!("no response after {} ms", text(h, "latency_ms"))),
                    }
                }
                if let Some(err) = e.get("error").and_then(Value::as_str) {
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    detail.push_str(err);
                }
                (
                    format!("attempt {} {}", text(e, "attempt"), text(e, "outcome")),
                    text(e, "worker"),
                    detail,
                )
            }
            "resigned" => (
                "re-signed".to_owned(),
                text(e, "actor"),
                format!(
                    "key {} -> {}",
                    e.get("from_key_id")
                        .and_then(Value::as_str)
                        .unwrap_or("(unsigned)"),
                    text(e, "to_key_id")
                ),
            ),
            "retried-now" => ("retried now".to_owned(), text(e, "actor"), String::new()),
            "dead-lettered" => (
                format!("dead-lettered {}", text(e, "reason")),
                "-".to_owned(),
                text(e, "detail"),
            ),
            _ => (kind.clone(), text(e, "actor"), String::new()),
        };
        t.row(vec![
            text(e, "at"),
            event,
            truncate(&who, 40),
            truncate(&detail, 80),
        ]);
    }
    t.render()
}

/// Prints one task in full with its history (`tasks show`, `dlq show`), or
/// the API's JSON.
pub(crate) fn print_task(task: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(task, true);
    }
    emit(&task_detail(task))?;
    emit("\n")?;
    emit(&history_table(&task["history"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_and_null_fields_read_as_a_dash() {
        let v = json!({"a": "x", "n": 3, "z": null});
        assert_eq!(text(&v, "a"), "x");
        assert_eq!(text(&v, "n"), "3");
        assert_eq!(text(&v, "z"), "-");
        assert_eq!(text(&v, "missing"), "-");
    }

    #[test]
    fn a_history_reads_oldest_first_with_what_happened() {
        let h = json!([
            {"kind": "attempt", "at": "T1", "attempt": 1, "outcome": "retry",
             "worker": "w1", "error": "boom", "http": {"status": 500, "latency_ms": 12}},
            {"kind": "replayed", "at": "T2", "actor": "cli (me)"},
        ]);
        let text = history_table(&h);
        assert!(text.contains("attempt 1 retry"), "{text}");
        assert!(text.contains("HTTP 500 in 12 ms; boom"), "{text}");
        let replayed = text.lines().nth(2).unwrap_or_default();
        assert!(
            replayed.starts_with("T2")
                && replayed.contains("replayed")
                && replayed.contains("cli (me)"),
            "{text}"
        );
        assert!(history_table(&json!([])).contains("nothing yet"));
    }
}
