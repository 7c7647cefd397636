//! `signet messages ls|show|retry|resend`: the HTTP messages Signet delivers (webhooks,
//! cron HTTP jobs, callbacks), on the database or, with `--url`, against a
//! server, through the API's routes (`GET /v1/messages[/{id}]`,
//! `POST /v1/messages/{id}/retry|resend`), so `--json` prints what the API
//! answers.

use std::process::ExitCode;

use serde_json::Value;
use signet_store::TaskState;

use crate::api::{segment, ApiArgs, Call, Keys};
use crate::commands::tasks::PageArgs;
use crate::commands::{block_on, finish};
use crate::output::{emit, print_json, truncate, Table};
use crate::task_view::{history_table, print_page, text};

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List messages, newest first, one page at a time.
    Ls(LsArgs),
    /// Show one message: where it goes, its state, every delivery attempt
    /// (status, latency, error, the start of the response) and what else
    /// happened to it.
    Show(ShowArgs),
    /// Retry now a message waiting for its backoff (state retryable): the
    /// dispatcher delivers it at once, its attempts still count.
    Retry(ShowArgs),
    /// Send a delivered message again: a new attempt in its history, the
    /// same webhook-id, a fresh signature. A dead message is replayed from
    /// the dead letters instead (`signet dlq replay`).
    Resend(ShowArgs),
}

/// Arguments of `signet messages ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only this state: scheduled, available, running, retryable,
    /// succeeded (delivered), dead, cancelled.
    #[arg(long, value_parser = parse_state)]
    state: Option<TaskState>,
    #[command(flatten)]
    page: PageArgs,
}

/// Arguments of `signet messages show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The message id (`msg_…`).
    id: String,
    /// Print JSON, as `GET /v1/messages/{id}` answers.
    #[arg(long)]
    json: bool,
}

fn parse_state(text: &str) -> Result<TaskState, String> {
    text.parse::<TaskState>().map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Ls(args) => finish("messages ls", block_on(ls(args))),
        Command::Show(args) => finish("messages show", block_on(show(args))),
        Command::Retry(args) => finish("messages retry", block_on(act(args, "retry"))),
        Command::Resend(args) => finish("messages resend", block_on(act(args, "resend"))),
    }
}

/// Columns of a message listing.
const MESSAGE_COLUMNS: &[&str] = &[
    "ID",
    "STATE",
    "METHOD",
    "URL",
    "TARGET",
    "ATTEMPTS",
    "NEXT/FINISHED",
    "LAST ERROR",
];

/// One row of a message listing.
fn message_cells(m: &Value) -> Vec<String> {
    let when = match m.get("next_attempt_at").and_then(Value::as_str) {
        Some(next) => next.to_owned(),
        None => text(m, "finished_at"),
    };
    vec![
        text(m, "id"),
        text(m, "state"),
        text(m, "method"),
        truncate(&text(m, "url"), 60),
        text(m, "target"),
        format!("{}/{}", text(m, "attempts_made"), text(m, "max_attempts")),
        when,
        truncate(&text(m, "last_error"), 60),
    ]
}

async fn ls(args: LsArgs) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let call = Call::get("/v1/messages").query("state", args.state.map(|s| s.as_str()));
    let page = api.send(args.page.on(call)).await?;
    print_page(
        &page,
        args.page.json,
        MESSAGE_COLUMNS,
        message_cells,
        "no messages match; publish one with `POST /v1/messages` (see the README)",
    )
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let m = api
        .send(Call::get(format!("/v1/messages/{}", segment(&args.id))))
        .await?;
    if args.json {
        return print_json(&m, true);
    }
    emit(&message_detail(&m))
}

/// `signet messages retry|resend`: `POST /v1/messages/{id}/{action}`,
/// then the message as it stands.
async fn act(args: ShowArgs, action: &str) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let m = api
        .send(Call::post(format!(
            "/v1/messages/{}/{action}",
            segment(&args.id)
        )))
        .await?;
    if args.json {
        return print_json(&m, true);
    }
    let done = if action == "retry" {
        "retrying now"
    } else {
        "resending"
    };
    emit(&format!("{done} {}\n\n", text(&m, "id")))?;
    emit(&message_detail(&m))
}

/// A message in full, for people: its fields, its attempts, then the rest
/// of its history.
fn message_detail(m: &Value) -> String {
    let mut t = Table::new(&["FIELD", "VALUE"]);
    for (key, label) in [
        ("id", "id"),
        ("state", "state"),
        ("method", "method"),
        ("url", "url"),
        ("target", "target"),
        ("signature_profile", "signature profile"),
        ("created_at", "created at"),
        ("updated_at", "updated at"),
        ("next_attempt_at", "next attempt at"),
        ("finished_at", "finished at"),
        ("callback_url", "callback url"),
        ("last_error", "last error"),
        ("dead_reason", "dead reason"),
        ("dead_detail", "dead detail"),
        ("redacted", "redacted"),
    ] {
        if m.get(key).is_some_and(|v| !v.is_null()) {
            t.row(vec![label.to_owned(), text(m, key)]);
        }
    }
    t.row(vec![
        "attempts".to_owned(),
        format!(
            "{} of {}",
            text(m, "attempts_made"),
            text(m, "max_attempts")
        ),
    ]);
    if let Some(Value::Object(headers)) = m.get("headers") {
        for (name, value) in headers {
            t.row(vec![
                "header".to_owned(),
                format!("{name}: {}", value.as_str().unwrap_or_default()),
            ]);
        }
    }
    if m.get("body").is_some_and(|v| !v.is_null()) {
        t.row(vec!["body".to_owned(), text(m, "body")]);
    }
    let mut out = t.render();
    let attempts = m["attempts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    out.push('\n');
    if attempts.is_empty() {
        out.push_str("attempts: none yet\n");
    } else {
        let mut a = Table::new(&[
            "ATTEMPT", "ENDED", "OUTCOME", "STATUS", "LATENCY", "ERROR", "RESPONSE",
        ]);
        for at in attempts {
            a.row(vec![
                text(at, "attempt"),
                text(at, "ended_at"),
                text(at, "outcome"),
                text(at, "status"),
                at.get("latency_ms")
                    .and_then(Value::as_i64)
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
                truncate(&text(at, "error"), 60),
                truncate(at["response_body"].as_str().unwrap_or_default(), 60),
            ]);
        }
        out.push_str(&a.render());
    }
    if m["history"].as_array().is_some_and(|h| !h.is_empty()) {
        out.push('\n');
        out.push_str(&history_table(&m["history"]));
    }
    out
}
