//! `signet enqueue`: sign a task with the active key and enqueue it.
//!
//! The keys come from the one loader (`keys::load`): the `SIGNET_SIGNING_*`
//! variables, `SIGNET_KEYS_FILE`, or the key file beside an embedded
//! database (created on first use). Unsigned work is stored only with
//! `--unsigned` or `SIGNET_DEV=1`, and then with a WARN line. The args are
//! stored and signed byte for byte as given.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::json;
use signet_runtime::DEFAULT_QUEUE;
use signet_runtime::{Producer, TaskSpec};

use crate::commands::{block_on, finish, keys};
use crate::output::{format_ms, print_json};
use crate::store_url::DatabaseArgs;
use crate::timearg::parse_duration;

/// Arguments of `signet enqueue`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
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
    /// Print JSON: {"id": ..., "created": ..., "state": ..., ...}.
    #[arg(long)]
    json: bool,
    /// Store the task unsigned, loading no keys. Workers that require
    /// signatures (the default) dead-letter it signature-invalid/missing.
    #[arg(long)]
    unsigned: bool,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
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
fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("enqueue", enqueue(args))
}

fn enqueue(args: Args) -> anyhow::Result<()> {
    check_args(&args.args)?;
    let keys = keys::load(&args.db, args.unsigned)?;
    let source = keys.source.to_string();
    let signing = keys.signing;
    let can_sign = signing.ring.active().is_some_and(|k| k.can_sign());
    if args.unsigned {
        eprintln!(
            "WARN --unsigned: the task is stored UNSIGNED; workers that require signatures dead-letter it"
        );
    } else if !can_sign && !signing.dev && signing.ring.is_empty() {
        // The loader refuses no keys without dev mode; this is the guard
        // should that ever change.
        bail!("no signing key: give keys (the key file, SIGNET_KEYS_FILE or SIGNET_SIGNING_*), or pass --unsigned to store unsigned work on purpose");
    } else if !can_sign && signing.ring.is_empty() {
        eprintln!("WARN SIGNET_DEV is on and there are no keys: the task is stored UNSIGNED");
    }
    let mut spec = TaskSpec::raw(args.name.clone(), args.args.clone().into_bytes())
        .queue(args.queue.clone())
        .priority(args.priority);
    if let Some(d) = args.delay {
        spec = spec.delay(d);
    }
    if let Some(d) = args.expires_in {
        spec = spec.expires_in(d);
    }
    if let Some(n) = args.max_attempts {
        spec = spec.max_attempts(n);
    }
    if let Some(k) = &args.idempotency_key {
        spec = spec.idempotency_key(k.clone());
    }
    if let Some(url) = &args.callback_url {
        spec = spec.callback_url(url.clone());
    }
    for (k, v) in &args.headers {
        spec = spec.header(k.clone(), v.clone());
    }
    block_on(async {
        let store = args.db.open().await?;
        let producer = Producer::new(store, &signing).map_err(|e| anyhow!("{e}"))?;
        let out = producer.enqueue(spec).await.map_err(|e| anyhow!("{e}"));
        // Flush before exit; a failure to close after a durable enqueue is only reported.
        if let Err(e) = producer.store().close().await {
            eprintln!("warning: closing the store: {e}");
        }
        let out = out?;
        let row = &out.task;
        if args.json {
            return print_json(
                &json!({
                    "id": row.id(),
                    "created": out.created,
                    "queue": row.queue(),
                    "name": row.envelope.name,
                    "state": row.state.as_str(),
                    "run_at_ms": row.run_at_ms,
                    "key_id": row.signature.as_ref().map(|s| s.key_id.clone()),
                }),
                false,
            );
        }
        println!("{}", row.id());
        if !out.created {
            eprintln!(
                "already enqueued with this idempotency key (state: {}); nothing new was added",
                row.state
            );
        } else if let Some(sig) = &row.signature {
            eprintln!(
                "enqueued on {:?}, signed with {} key {} (keys from {source}), runs from {}",
                row.queue(),
                sig.alg,
                sig.key_id,
                format_ms(row.run_at_ms)
            );
        } else {
            eprintln!("enqueued UNSIGNED on {:?}", row.queue());
        }
        Ok(())
    })
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
