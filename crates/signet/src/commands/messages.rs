//! `signet messages publish|ls|show|retry|resend`: the HTTP messages Signet
//! delivers (webhooks, cron HTTP jobs, callbacks), on the database or, with
//! `--url`, against a server, through the API's routes (`POST /v1/messages`,
//! `POST /v1/messages/batch`, `GET /v1/messages[/{id}]`,
//! `POST /v1/messages/{id}/retry|resend`), so `--json` prints what the API
//! answers.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::value::RawValue;
use serde_json::Value;
use signet_store::TaskState;

use crate::api::{segment, ApiArgs, Call, Keys};
use crate::commands::enqueue::{describe_json_error, parse_header};
use crate::commands::tasks::PageArgs;
use crate::commands::{block_on, finish};
use crate::output::{emit, print_json, truncate, Table};
use crate::task_view::{history_table, print_page, text};
use crate::timearg::parse_duration;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Publish a message (Signet delivers it, signed, with retries), or
    /// with --file many, in batches of up to 1000.
    Publish(Box<PublishArgs>),
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

/// Arguments of `signet messages publish`.
#[derive(Debug, clap::Args)]
pub(crate) struct PublishArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Where to deliver: an http:// or https:// URL (not with --file).
    #[arg(value_name = "URL")]
    to: Option<String>,
    /// A target's id (tgt_…) or name: its secret signs, its limits apply.
    #[arg(long)]
    target: Option<String>,
    /// The body, sent exactly as written.
    #[arg(long, conflicts_with = "json_body")]
    body: Option<String>,
    /// The body as JSON (checked here), sent as written with
    /// content-type application/json unless a header sets one.
    #[arg(long, value_name = "JSON")]
    json_body: Option<String>,
    /// A header to send as NAME=VALUE; repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The HTTP method (default POST).
    #[arg(long)]
    method: Option<String>,
    /// standard (default), svix, stromboli, krafter, github or stripe; all
    /// but standard and svix need a target.
    #[arg(long)]
    signature_profile: Option<String>,
    /// Where a signed callback goes when the message is delivered or dead.
    #[arg(long)]
    callback_url: Option<String>,
    /// First attempt no sooner than this long from now (500ms, 10s, 5m).
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// Attempts allowed, 1 to 100 (default: the retry schedule's steps + 1).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Publish at most once per key: a repeat answers the first message.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Publish the messages in this file (`-`: stdin) instead: one JSON
    /// object per line, each what `POST /v1/messages` takes (with its own
    /// idempotency_key if any), sent in batches of up to 1000
    /// (`POST /v1/messages/batch`), each batch all or none.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Print JSON: the message, as `POST /v1/messages` answers it (with
    /// --file, `{"messages":[…]}` as `POST /v1/messages/batch` answers,
    /// every batch's items in order).
    #[arg(long)]
    json: bool,
}

impl PublishArgs {
    /// The flags that describe the one message of a publish without
    /// --file, by name, when given.
    fn message_flags(&self) -> Vec<&'static str> {
        [
            ("URL", self.to.is_some()),
            ("--target", self.target.is_some()),
            ("--body", self.body.is_some()),
            ("--json-body", self.json_body.is_some()),
            ("--header", !self.headers.is_empty()),
            ("--method", self.method.is_some()),
            ("--signature-profile", self.signature_profile.is_some()),
            ("--callback-url", self.callback_url.is_some()),
            ("--delay", self.delay.is_some()),
            ("--max-attempts", self.max_attempts.is_some()),
            ("--idempotency-key", self.idempotency_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// The body of `POST /v1/messages` from the flags.
#[derive(serde::Serialize)]
struct MessageBody<'a> {
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
}

/// The body of `POST /v1/messages/batch`: the lines as written.
#[derive(serde::Serialize)]
struct BatchBody<'a> {
    messages: &'a [Box<RawValue>],
}

/// Most messages in one `POST /v1/messages/batch` (the server's limit).
const FILE_BATCH: usize = signet_runtime::MAX_BATCH_MESSAGES;
/// Most bytes of messages in one batch: half the server's default body
/// limit, so a batch fits a server that kept it.
const FILE_BATCH_BYTES: usize = signet_server::config::DEFAULT_MAX_BODY_BYTES / 2;

fn parse_state(text: &str) -> Result<TaskState, String> {
    text.parse::<TaskState>().map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Publish(args) => finish("messages publish", block_on(publish(*args))),
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

async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.file {
        if let Some(flag) = args.message_flags().first() {
            bail!("{flag} describes one message and --file gives them all; put it in the file's lines instead");
        }
        let lines = read_lines(path)?;
        let api = args.api.open(Keys::Required).await?;
        return publish_lines(&api, &lines, args.json).await;
    }
    let Some(to) = args.to.as_deref() else {
        bail!("give the URL to deliver to (`signet messages publish https://example.com/hook --target orders`), or --file PATH");
    };
    let body = match (&args.body, &args.json_body) {
        (Some(text), _) => Some(serde_json::value::to_raw_value(text)?),
        (None, Some(json)) => Some(RawValue::from_string(json.clone()).map_err(|e| {
            anyhow::anyhow!(
                "--json-body is not valid JSON: {} at line {}, column {}; quote it for the shell, or use --body for text",
                describe_json_error(&e),
                e.line(),
                e.column()
            )
        })?),
        (None, None) => None,
    };
    let mut headers = BTreeMap::new();
    for (k, v) in &args.headers {
        if headers.insert(k.to_ascii_lowercase(), v.clone()).is_some() {
            bail!("--header {k} is given twice; a message carries each header once");
        }
    }
    let message = MessageBody {
        url: to,
        target: args.target.as_deref(),
        body,
        headers,
        method: args.method.as_deref(),
        signature_profile: args.signature_profile.as_deref(),
        callback_url: args.callback_url.as_deref(),
        delay_ms: args
            .delay
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        max_attempts: args.max_attempts,
        idempotency_key: args.idempotency_key.as_deref(),
    };
    let api = args.api.open(Keys::Required).await?;
    let (status, m) = api
        .send_for_status(Call::post("/v1/messages").body(&message)?)
        .await?;
    if args.json {
        return print_json(&m, false);
    }
    emit(&format!("{}\n", text(&m, "id")))?;
    if status == axum::http::StatusCode::CREATED {
        eprintln!(
            "published to {}, {}",
            text(&m, "url"),
            match m.get("next_attempt_at").and_then(Value::as_str) {
                Some(at) => format!("first attempt at {at}"),
                None => "delivered as soon as a dispatcher takes it".to_owned(),
            }
        );
    } else {
        eprintln!(
            "already published with this idempotency key (state: {}); nothing new was added",
            text(&m, "state")
        );
    }
    Ok(())
}

/// The messages of `path` (`-`: stdin): one JSON object per line, blank
/// lines skipped, each with its line number.
fn read_lines(path: &std::path::Path) -> anyhow::Result<Vec<(usize, Box<RawValue>)>> {
    let shown = path.display();
    let reader: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("--file: cannot read {shown}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.with_context(|| format!("--file {shown}: cannot read line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw = RawValue::from_string(line.trim().to_owned()).map_err(|e| {
            anyhow::anyhow!(
                "--file {shown} line {number} is not valid JSON: {} at column {}; each line is one message as POST /v1/messages takes it",
                describe_json_error(&e),
                e.column()
            )
        })?;
        if !raw.get().starts_with('{') {
            bail!("--file {shown} line {number} is not a JSON object; each line is one message as POST /v1/messages takes it, e.g. {{\"url\":\"https://example.com/hook\",\"target\":\"orders\"}}");
        }
        out.push((number, raw));
    }
    if out.is_empty() {
        bail!("--file {shown} holds no messages; put one JSON object per line");
    }
    Ok(out)
}

/// Publishes `lines` in batches (by count and by bytes), in order; on a
/// refused batch, says which lines it held and what was published before.
async fn publish_lines(
    api: &crate::api::Api,
    lines: &[(usize, Box<RawValue>)],
    json: bool,
) -> anyhow::Result<()> {
    let mut published: Vec<Value> = Vec::with_capacity(lines.len());
    let mut start = 0;
    let mut batches = 0;
    while start < lines.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < lines.len() && end - start < FILE_BATCH {
            let len = lines[end].1.get().len() + 1;
            if end > start && bytes + len > FILE_BATCH_BYTES {
                break;
            }
            bytes += len;
            end += 1;
        }
        let part: Vec<Box<RawValue>> = lines[start..end].iter().map(|(_, m)| m.clone()).collect();
        let call = Call::post("/v1/messages/batch").body(&BatchBody { messages: &part })?;
        let answer = api.send(call).await.map_err(|e| {
            let (first, last) = (lines[start].0, lines[end - 1].0);
            e.context(format!(
                "the batch of lines {first}–{last} was refused and nothing of it was published (messages[i] is the i-th message of the batch, from 0); {} message(s) of earlier lines were published",
                published.len()
            ))
        })?;
        let items = answer["messages"].as_array().cloned().unwrap_or_default();
        if items.len() != part.len() {
            bail!(
                "POST /v1/messages/batch answered {} message(s) for {}; see `signet messages ls`",
                items.len(),
                part.len()
            );
        }
        published.extend(items);
        batches += 1;
        start = end;
    }
    if json {
        return print_json(&serde_json::json!({ "messages": published }), false);
    }
    let mut ids = String::new();
    for m in &published {
        ids.push_str(&text(m, "id"));
        ids.push('\n');
    }
    emit(&ids)?;
    let existing = published
        .iter()
        .filter(|m| m["existing"].as_bool() == Some(true))
        .count();
    eprintln!(
        "published {} message(s) in {batches} batch(es){}",
        published.len() - existing,
        if existing > 0 {
            format!("; {existing} were already published under their idempotency keys")
        } else {
            String::new()
        }
    );
    Ok(())
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
