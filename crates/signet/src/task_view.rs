//! How a stored task is shown: a table row, a detail page, and JSON.
//!
//! Args are shown as JSON when they are JSON (they are stored as the exact
//! bytes the producer wrote), else as base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use signet_store::{Event, HistoryEvent, Page, TaskRow};

use crate::output::{format_ms, format_opt_ms, print_json, truncate, Table};

/// Columns of a task listing.
pub(crate) const TASK_COLUMNS: &[&str] = &[
    "ID", "QUEUE", "NAME", "STATE", "ATTEMPT", "PRIORITY", "RUN AT", "KEY",
];

/// One row of a task listing.
pub(crate) fn task_cells(row: &TaskRow) -> Vec<String> {
    vec![
        row.id().to_owned(),
        row.queue().to_owned(),
        row.envelope.name.clone(),
        row.state.to_string(),
        format!("{}/{}", row.attempt, row.envelope.max_attempts),
        row.priority.to_string(),
        format_ms(row.run_at_ms),
        key_label(row),
    ]
}

/// Columns of a dead-letter listing.
pub(crate) const DEAD_COLUMNS: &[&str] = &[
    "ID", "QUEUE", "NAME", "REASON", "DEAD AT", "ATTEMPTS", "DETAIL",
];

/// One row of a dead-letter listing.
pub(crate) fn dead_cells(row: &TaskRow) -> Vec<String> {
    vec![
        row.id().to_owned(),
        row.queue().to_owned(),
        row.envelope.name.clone(),
        row.dead_reason
            .map_or_else(|| "-".to_owned(), |r| r.to_string()),
        format_opt_ms(row.finished_at_ms),
        row.attempts_made().to_string(),
        truncate(row.dead_detail.as_deref().unwrap_or("-"), 60),
    ]
}

/// `key-id (alg)`, or `unsigned`.
fn key_label(row: &TaskRow) -> String {
    match &row.signature {
        Some(sig) => sig.key_id.clone(),
        None => "unsigned".to_owned(),
    }
}

/// The args as JSON if they parse, else base64 under `args_base64`.
fn args_json(args: &[u8]) -> (&'static str, Value) {
    match serde_json::from_slice::<Value>(args) {
        Ok(v) => ("args", v),
        Err(_) => ("args_base64", Value::String(STANDARD.encode(args))),
    }
}

/// The whole task as a JSON object (times as unix ms and RFC 3339).
pub(crate) fn task_json(row: &TaskRow) -> Value {
    let env = &row.envelope;
    let (args_key, args) = args_json(&env.args);
    let mut v = json!({
        "id": env.id,
        "queue": env.queue,
        "name": env.name,
        "state": row.state.as_str(),
        "attempt": row.attempt,
        "attempts_made": row.attempts_made(),
        "max_attempts": env.max_attempts,
        "priority": row.priority,
        "headers": env.headers,
        "created_at_ms": env.created_at_ms,
        "created_at": format_ms(env.created_at_ms),
        "not_before_ms": env.not_before_ms,
        "expires_at_ms": env.expires_at_ms,
        "callback_url": env.callback_url,
        "run_at_ms": row.run_at_ms,
        "run_at": format_ms(row.run_at_ms),
        "updated_at_ms": row.updated_at_ms,
        "finished_at_ms": row.finished_at_ms,
        "lease_owner": row.lease_owner,
        "lease_expires_at_ms": row.lease_expires_at_ms,
        "last_error": row.last_error,
        "dead_reason": row.dead_reason.map(|r| r.as_str()),
        "dead_detail": row.dead_detail,
        "idempotency_key": row.idempotency_key,
        "signature": row.signature.as_ref().map(|s| json!({
            "alg": s.alg.as_str(),
            "key_id": s.key_id,
            "sig": STANDARD.encode(&s.sig),
        })),
        "result": row.result.as_deref().map(|r| serde_json::from_slice::<Value>(r)
            .unwrap_or_else(|_| Value::String(STANDARD.encode(r)))),
    });
    if let Value::Object(map) = &mut v {
        map.insert(args_key.to_owned(), args);
    }
    v
}

/// A task as `name: value` lines, for people.
pub(crate) fn task_detail(row: &TaskRow) -> String {
    let env = &row.envelope;
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let mut add = |k: &str, v: String| t.row(vec![k.to_owned(), v]);
    add("id", env.id.clone());
    add("queue", env.queue.clone());
    add("name", env.name.clone());
    add("state", row.state.to_string());
    add(
        "attempt",
        format!("{} of {}", row.attempt, env.max_attempts),
    );
    if row.attempts_before > 0 {
        add(
            "attempts made",
            format!(
                "{} ({} before the last replay)",
                row.attempts_made(),
                row.attempts_before
            ),
        );
    }
    add("priority", row.priority.to_string());
    add("created at", format_ms(env.created_at_ms));
    add("run at", format_ms(row.run_at_ms));
    if let Some(t) = env.not_before_ms {
        add("not before", format_ms(t));
    }
    if let Some(t) = env.expires_at_ms {
        add("expires at", format_ms(t));
    }
    add("updated at", format_ms(row.updated_at_ms));
    if let Some(t) = row.finished_at_ms {
        add("finished at", format_ms(t));
    }
    match &row.signature {
        Some(sig) => add("signed", format!("{} key {}", sig.alg, sig.key_id)),
        None => add("signed", "no (unsigned)".to_owned()),
    }
    if let Some(owner) = &row.lease_owner {
        add(
            "lease",
            format!("{owner} until {}", format_opt_ms(row.lease_expires_at_ms)),
        );
    }
    if let Some(k) = &row.idempotency_key {
        add("idempotency key", k.clone());
    }
    if let Some(url) = &env.callback_url {
        add("callback url", url.clone());
    }
    for (name, value) in &env.headers {
        add("header", format!("{name}: {value}"));
    }
    if let Some(e) = &row.last_error {
        add("last error", e.clone());
    }
    if let Some(r) = row.dead_reason {
        add("dead reason", r.to_string());
    }
    if let Some(d) = &row.dead_detail {
        add("dead detail", d.clone());
    }
    if let Some(r) = &row.result {
        add("result", String::from_utf8_lossy(r).into_owned());
    }
    // Args last: they can be long. Shown as the producer wrote them.
    let args = match std::str::from_utf8(&env.args) {
        Ok(s) => s.to_owned(),
        Err(_) => format!("(binary, base64) {}", STANDARD.encode(&env.args)),
    };
    add("args", args);
    t.render()
}

/// Prints a page of tasks: as `{"items", "next_cursor"}` JSON, or as a table
/// with `columns`/`cells`, `empty` when there is nothing, and the cursor hint.
pub(crate) fn print_page(
    page: Page<TaskRow>,
    json: bool,
    columns: &'static [&'static str],
    cells: fn(&TaskRow) -> Vec<String>,
    empty: &str,
) -> anyhow::Result<()> {
    if json {
        let items: Vec<_> = page.items.iter().map(task_json).collect();
        return print_json(
            &json!({ "items": items, "next_cursor": page.next_cursor }),
            false,
        );
    }
    let mut table = Table::new(columns);
    for row in &page.items {
        table.row(cells(row));
    }
    if table.is_empty() {
        println!("{empty}");
    } else {
        print!("{}", table.render());
    }
    if let Some(cursor) = page.next_cursor {
        println!("more: --cursor {cursor}");
    }
    Ok(())
}

/// A history as JSON: one object per event, oldest first.
pub(crate) fn history_json(history: &[HistoryEvent]) -> Value {
    Value::Array(history.iter().map(event_json).collect())
}

fn event_json(e: &HistoryEvent) -> Value {
    let mut v = json!({
        "kind": e.event.kind(),
        "at_ms": e.at_ms,
        "at": format_ms(e.at_ms),
    });
    let extra = match &e.event {
        Event::Attempt(a) => json!({
            "attempt": a.number,
            "outcome": a.outcome.as_str(),
            "worker": a.worker,
            "started_at_ms": a.started_at_ms,
            "error": a.error,
            "http": a.http.as_ref().map(|h| json!({
                "status": h.status,
                "latency_ms": h.latency_ms,
                "response_body": String::from_utf8_lossy(&h.response_body),
            })),
        }),
        Event::Replayed { actor }
        | Event::Cancelled { actor }
        | Event::RetriedNow { actor }
        | Event::Resent { actor } => json!({ "actor": actor }),
        Event::Resigned {
            actor,
            from_key_id,
            to_key_id,
        } => json!({ "actor": actor, "from_key_id": from_key_id, "to_key_id": to_key_id }),
        Event::DeadLettered { reason, detail } => {
            json!({ "reason": reason.as_str(), "detail": detail })
        }
        _ => json!({}),
    };
    if let (Value::Object(map), Value::Object(more)) = (&mut v, extra) {
        map.extend(more);
    }
    v
}

/// A history as a table, oldest first, for people.
pub(crate) fn history_table(history: &[HistoryEvent]) -> String {
    if history.is_empty() {
        return "history: nothing yet (no attempt has ended)\n".to_owned();
    }
    let mut t = Table::new(&["AT", "EVENT", "WHO", "DETAIL"]);
    for e in history {
        let (event, who, detail) = match &e.event {
            Event::Attempt(a) => {
                let mut detail = String::new();
                if let Some(h) = &a.http {
                    match h.status {
                        Some(s) => detail.push_str(&format!("HTTP {s} in {} ms", h.latency_ms)),
                        None => detail.push_str(&format!("no response after {} ms", h.latency_ms)),
                    }
                }
                if let Some(err) = &a.error {
                    if !detail.is_empty() {
                        detail.push_str("; ");
                    }
                    detail.push_str(err);
                }
                (
                    format!("attempt {} {}", a.number, a.outcome.as_str()),
                    a.worker.clone().unwrap_or_else(|| "-".to_owned()),
                    detail,
                )
            }
            Event::Replayed { actor } => ("replayed".to_owned(), actor.clone(), String::new()),
            Event::Cancelled { actor } => ("cancelled".to_owned(), actor.clone(), String::new()),
            Event::RetriedNow { actor } => ("retried now".to_owned(), actor.clone(), String::new()),
            Event::Resent { actor } => ("resent".to_owned(), actor.clone(), String::new()),
            Event::Resigned {
                actor,
                from_key_id,
                to_key_id,
            } => (
                "re-signed".to_owned(),
                actor.clone(),
                format!(
                    "key {} -> {to_key_id}",
                    from_key_id.as_deref().unwrap_or("(unsigned)")
                ),
            ),
            Event::DeadLettered { reason, detail } => (
                format!("dead-lettered {reason}"),
                "-".to_owned(),
                detail.clone(),
            ),
            _ => (e.event.kind().to_owned(), "-".to_owned(), String::new()),
        };
        t.row(vec![
            format_ms(e.at_ms),
            event,
            truncate(&who, 40),
            truncate(&detail, 80),
        ]);
    }
    t.render()
}
