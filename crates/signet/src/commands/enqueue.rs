//! `signet enqueue`: sign a task with the active key and enqueue it.
//!
//! On the database or, with `--url`, against a server: either way through
//! `POST /v1/tasks`, so `--json` prints what it answers. On the database
//! the keys come from the one loader (`keys::load`): the `SIGNET_SIGNING_*`
//! variables, `SIGNET_KEYS_FILE`, or the key file beside an embedded
//! database (created on first use); a server signs with its own. Unsigned
//! work is stored only with `--unsigned` or `SIGNET_DEV=1`, and then with a
//! WARN line. The args are stored and signed byte for byte as given.

use std::process::ExitCode;
use std::time::Duration;

use std::collections::BTreeMap;

use anyhow::bail;
use serde_json::value::RawValue;
use signet_runtime::DEFAULT_QUEUE;

use crate::api::{ApiArgs, Call, Keys};
use crate::commands::{block_on, finish, now_ms};
use crate::output::{emit, print_json};
use crate::task_view::text;
use crate::timearg::parse_duration;

/// Arguments of `signet enqueue`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    api: ApiArgs,
    /// The queue.
    #[arg(long, default_value = DEFAULT_QUEUE)]
    queue: String,
    /// The task name a worker registered a handler for.
    #[arg(long = "task", value_name = "NAME")]
    name: String,
    /// The args, as JSON. Stored and signed exactly as written.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
    /// Do not run before this long from now (500ms, 10s, 5m, 2h, 1d).
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// Dead-letter the task as `expired` if no worker starts it within this long.
    #[arg(long, value_parser = parse_duration)]
    expires_in: Option<Duration>,
    /// Enqueue at most once per key: a repeat returns the first task.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Attempts allowed, the first one included (1 to 1000).
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Higher runs first among due tasks of the queue.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    priority: i32,
    /// A signed header as name=value; repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Where to send a signed callback when the task finishes.
    #[arg(long)]
    callback_url: Option<String>,
    /// Print JSON, as `POST /v1/tasks` answers: the task.
    #[arg(long)]
    json: bool,
    /// Store the task unsigned, loading no keys (on the database only).
    /// Workers that require signatures (the default) dead-letter it
    /// signature-invalid/missing.
    #[arg(long)]
    unsigned: bool,
}

/// `--header NAME=VALUE` (also for `signet messages publish`).
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

/// Checks that `--args` is JSON; the error names line and column.
fn check_args(text: &str) -> anyhow::Result<()> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        bail!(
            "--args is not valid JSON: {} at line {}, column {}; quote it for the shell, e.g. --args '{{\"to\":\"a@example.com\"}}'",
            describe_json_error(&e),
            e.line(),
            e.column()
        );
    }
    Ok(())
}

/// serde_json's message without its own trailing position.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("enqueue", block_on(enqueue(args)))
}

/// The body of `POST /v1/tasks`; the args go as the exact text given.
#[derive(serde::Serialize)]
struct Body<'a> {
    queue: &'a str,
    task: &'a str,
    args: &'a RawValue,
    priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
}

async fn enqueue(args: Args) -> anyhow::Result<()> {
    check_args(&args.args)?;
    let raw: Box<RawValue> = RawValue::from_string(args.args.clone())?;
    let mut headers = BTreeMap::new();
    for (k, v) in &args.headers {
        // A map carries one value per name; a second would be lost.
        if headers.insert(k.to_ascii_lowercase(), v.clone()).is_some() {
            bail!("--header {k} is given twice; a task carries each header once");
        }
    }
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let body = Body {
        queue: &args.queue,
        task: &args.name,
        args: &raw,
        priority: args.priority,
        delay_ms: args.delay.map(millis),
        expires_at: args
            .expires_in
            .map(|d| now_ms().saturating_add(i64::try_from(millis(d)).unwrap_or(i64::MAX))),
        max_attempts: args.max_attempts,
        headers,
        callback_url: args.callback_url.as_deref(),
        idempotency_key: args.idempotency_key.as_deref(),
    };
    let keys = if args.unsigned {
        if args.api.server_url.is_some() {
            bail!("--unsigned works on the database only: a server signs with its own keys (or takes what its clients signed)");
        }
        eprintln!(
            "WARN --unsigned: the task is stored UNSIGNED; workers that require signatures dead-letter it"
        );
        Keys::Unsigned
    } else {
        Keys::Required
    };
    let api = args.api.open(keys).await?;
    let (status, task) = api
        .send_for_status(Call::post("/v1/tasks").body(&body)?)
        .await?;
    if args.json {
        return print_json(&task, false);
    }
    emit(&format!("{}\n", text(&task, "id")))?;
    let queue = text(&task, "queue");
    if status != axum::http::StatusCode::CREATED {
        eprintln!(
            "already enqueued with this idempotency key (state: {}); nothing new was added",
            text(&task, "state")
        );
    } else if let Some(sig) = task.get("signature").filter(|s| !s.is_null()) {
        eprintln!(
            "enqueued on {queue:?}, signed with {} key {}, runs from {}",
            text(sig, "alg"),
            text(sig, "key_id"),
            text(&task, "run_at")
        );
    } else {
        eprintln!("enqueued UNSIGNED on {queue:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_args_name_the_position() {
        let err = check_args("{\"a\": 1,, }").unwrap_err().to_string();
        assert!(err.contains("line 1, column 9"), "{err}");
        assert!(check_args("{\"a\": [1, 2]}").is_ok());
    }

    #[test]
    fn headers_are_name_equals_value() {
        assert_eq!(
            parse_header("tenant=acme=1").unwrap(),
            ("tenant".to_owned(), "acme=1".to_owned())
        );
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=x").is_err());
    }
}
