//! `signet schedules add|ls|show|rm|pause|resume`: cron schedules, straight
//! on the store.
//!
//! Validation is the API's own (`signet_server::routes::schedules`), so a
//! schedule the CLI accepts is one `POST /v1/schedules` would accept, and
//! errors name the same fields (`cron`, `timezone`, `task.queue`, …).
//! Schedules fire from `signet serve` (on the node that leads).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use serde::Serialize;
use serde_json::value::RawValue;
use signet_runtime::DEFAULT_QUEUE;
use signet_server::routes::schedules::{
    build_schedule, check_message_target, set_paused, CreateScheduleRequest, ScheduleView,
};
use signet_server::AppError;
use signet_store::{ScheduleId, ScheduleRecord, Store};

use crate::commands::{block_on, finish, now_ms, Negative};
use crate::output::{format_ms, format_opt_ms, outln, print_json, printable, truncate, Table};
use crate::store_url::DatabaseArgs;
use crate::timearg::parse_duration;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a schedule that fires a task (--task) or a message (--message).
    Add(Box<AddArgs>),
    /// List schedules: name, id, cron, time zone, next and last due time.
    Ls {
        /// Print JSON: [{"id", "name", "cron", "timezone", "next_fire_at", "upcoming", ...}].
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Show one schedule and its next 5 due times.
    Show {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Delete a schedule (runs it already fired stay).
    Rm {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Pause a schedule: it fires nothing until resumed.
    Pause {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Resume a paused schedule from its next due time after now.
    Resume {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// Arguments of `signet schedules add`.
#[derive(Debug, clap::Args)]
pub(crate) struct AddArgs {
    /// A unique name (1–128 of A-Z a-z 0-9 . _ : -).
    name: String,
    /// The cron expression: 5 fields (minute hour day-of-month month
    /// day-of-week), 6 with seconds first, or @hourly/@daily/@weekly/@monthly/@yearly.
    #[arg(long)]
    cron: String,
    /// IANA time zone the expression is read in (default UTC).
    #[arg(long)]
    timezone: Option<String>,
    /// Due times missed while no scheduler ran: skip (default) or once.
    #[arg(long, value_name = "skip|once")]
    catch_up: Option<String>,
    /// Create it paused.
    #[arg(long)]
    paused: bool,
    /// Fire this task (the handler name) on each due time.
    #[arg(
        long = "task",
        value_name = "NAME",
        required_unless_present = "message",
        conflicts_with = "message"
    )]
    task: Option<String>,
    /// The task's queue.
    #[arg(long, default_value = DEFAULT_QUEUE, requires = "task")]
    queue: String,
    /// The task's args, as JSON, stored and signed as written.
    #[arg(long, value_name = "JSON", requires = "task")]
    args: Option<String>,
    /// Each run is due this long after it fires (500ms, 10s, 5m, 2h).
    #[arg(long, value_parser = parse_duration, requires = "task")]
    delay: Option<Duration>,
    /// Attempts allowed per run.
    #[arg(long, requires = "task")]
    max_attempts: Option<u32>,
    /// Higher runs first among due tasks of the queue.
    #[arg(long, allow_hyphen_values = true, requires = "task")]
    priority: Option<i32>,
    /// A signed header as name=value; repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header, requires = "task")]
    headers: Vec<(String, String)>,
    /// Where each run sends a signed callback when it finishes.
    #[arg(long, requires = "task")]
    callback_url: Option<String>,
    /// Fire this message instead: a POST /v1/messages body as JSON, e.g.
    /// '{"url":"https://example.com/hook","body":{"ping":true}}'.
    #[arg(long, value_name = "JSON")]
    message: Option<String>,
    /// Print the created schedule as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    finish("schedules", block_on(schedules(cmd)))
}

/// The task body of `POST /v1/tasks` that the flags describe; `args` keep
/// their bytes.
#[derive(Serialize)]
struct TaskBody<'a> {
    queue: &'a str,
    task: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<i32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
}

fn json_arg(flag: &str, text: &str) -> anyhow::Result<Box<RawValue>> {
    RawValue::from_string(text.to_owned()).map_err(|e| {
        anyhow!("{flag} is not valid JSON: {e}; quote it for the shell, e.g. {flag} '{{\"a\":1}}'")
    })
}

/// The create request the flags describe (validated by the API's own code).
fn request(args: &AddArgs) -> anyhow::Result<CreateScheduleRequest> {
    let (task, message) = match (&args.task, &args.message) {
        (Some(name), None) => {
            let raw_args = args
                .args
                .as_deref()
                .map(|a| json_arg("--args", a))
                .transpose()?;
            let mut headers = BTreeMap::new();
            for (k, v) in &args.headers {
                if headers.insert(k.clone(), v.clone()).is_some() {
                    return Err(anyhow!(
                        "--header {k} is given twice; give each header once"
                    ));
                }
            }
            let body = TaskBody {
                queue: &args.queue,
                task: name,
                args: raw_args.as_deref(),
                delay_ms: args
                    .delay
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                max_attempts: args.max_attempts,
                priority: args.priority,
                headers,
                callback_url: args.callback_url.as_deref(),
            };
            let text = serde_json::to_string(&body)?;
            (Some(json_arg("--task", &text)?), None)
        }
        (None, Some(message)) => (None, Some(json_arg("--message", message)?)),
        // clap makes these exclusive and one of them required.
        _ => return Err(anyhow!("give --task NAME or --message JSON")),
    };
    Ok(CreateScheduleRequest {
        name: args.name.clone(),
        cron: args.cron.clone(),
        timezone: args.timezone.clone(),
        task,
        message,
        catch_up: args.catch_up.clone(),
        paused: Some(args.paused),
    })
}

/// An API validation error as a CLI error (exit 2) naming the field.
fn refused(e: AppError) -> anyhow::Error {
    anyhow!("{e}")
}

async fn find(store: &dyn Store, key: &str) -> anyhow::Result<ScheduleRecord> {
    let found = if key.starts_with(ScheduleId::PREFIX) {
        store.schedule(key).await?
    } else {
        store.schedule_by_name(key).await?
    };
    found.ok_or_else(|| {
        Negative(format!(
            "no schedule {key:?}; `signet schedules ls` lists them"
        ))
        .into()
    })
}

async fn schedules(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add(args) => {
            let req = request(&args)?;
            let message = req.message.clone();
            let record = build_schedule(req, now_ms()).map_err(refused)?;
            let store = args.db.open().await?;
            let created = match check_message_target(store.as_ref(), message.as_deref()).await {
                Ok(()) => store
                    .create_schedule(record.clone())
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(refused(e)),
            };
            store.close().await?;
            created.with_context(|| format!("cannot create schedule {:?}", record.name))?;
            if args.json {
                return print_view(&record);
            }
            outln!(
                "created schedule {} ({})",
                printable(&record.name),
                record.id
            );
            print_details(&record)?;
            Ok(())
        }
        Command::Ls { json, db } => {
            let store = db.open().await?;
            let list = store.list_schedules().await;
            store.close().await?;
            let list = list?;
            if json {
                let items: Vec<ScheduleView> = list.iter().map(ScheduleView::from).collect();
                return print_json(&serde_json::to_value(items)?, false);
            }
            if list.is_empty() {
                outln!("no schedules yet; add one with `signet schedules add NAME --cron '*/5 * * * *' --task NAME`");
                return Ok(());
            }
            let mut table = Table::new(&[
                "NAME", "ID", "CRON", "TIMEZONE", "FIRES", "STATE", "NEXT", "LAST",
            ]);
            for s in &list {
                let view = ScheduleView::from(s);
                table.row(vec![
                    s.name.clone(),
                    s.id.clone(),
                    s.cron.clone(),
                    s.timezone.clone(),
                    fires(&view),
                    if s.paused { "paused" } else { "active" }.to_owned(),
                    if s.paused {
                        "-".to_owned()
                    } else {
                        format_opt_ms(s.next_fire_at_ms)
                    },
                    format_opt_ms(s.last_fired_at_ms),
                ]);
            }
            crate::output::emit(&table.render())?;
            Ok(())
        }
        Command::Show { schedule, json, db } => {
            let store = db.open().await?;
            let found = find(store.as_ref(), &schedule).await;
            store.close().await?;
            let record = found?;
            if json {
                return print_view(&record);
            }
            outln!("schedule {} ({})", printable(&record.name), record.id);
            print_details(&record)?;
            Ok(())
        }
        Command::Rm { schedule, db } => {
            let store = db.open().await?;
            let result = async {
                let record = find(store.as_ref(), &schedule).await?;
                store.delete_schedule(&record.id).await?;
                Ok::<_, anyhow::Error>(record)
            }
            .await;
            store.close().await?;
            let record = result?;
            outln!(
                "deleted schedule {} ({})",
                printable(&record.name),
                record.id
            );
            Ok(())
        }
        Command::Pause { schedule, json, db } => pause_or_resume(&schedule, true, json, &db).await,
        Command::Resume { schedule, json, db } => {
            pause_or_resume(&schedule, false, json, &db).await
        }
    }
}

async fn pause_or_resume(
    schedule: &str,
    paused: bool,
    json: bool,
    db: &DatabaseArgs,
) -> anyhow::Result<()> {
    let store = db.open().await?;
    let result = async {
        let record = find(store.as_ref(), schedule).await?;
        let changed = record.paused != paused;
        let record = set_paused(record, paused, now_ms()).map_err(refused)?;
        if changed {
            store.update_schedule(record.clone()).await?;
        }
        Ok::<_, anyhow::Error>((record, changed))
    }
    .await;
    store.close().await?;
    let (record, changed) = result?;
    if json {
        return print_view(&record);
    }
    let verb = match (paused, changed) {
        (true, true) => "paused",
        (true, false) => "was already paused:",
        (false, true) => "resumed",
        (false, false) => "was not paused:",
    };
    outln!(
        "{verb} schedule {} ({})",
        printable(&record.name),
        record.id
    );
    print_details(&record)?;
    Ok(())
}

fn print_view(record: &ScheduleRecord) -> anyhow::Result<()> {
    print_json(&serde_json::to_value(ScheduleView::from(record))?, true)
}

/// What a schedule fires, in a few words: `task report.daily on reports`
/// or `message POST https://…`.
fn fires(view: &ScheduleView) -> String {
    let text = match (&view.task, &view.message) {
        (Some(task), _) => {
            let v: serde_json::Value = serde_json::from_str(task.get()).unwrap_or_default();
            format!(
                "task {} on {}",
                v["task"].as_str().unwrap_or("?"),
                v["queue"].as_str().unwrap_or("?")
            )
        }
        (None, Some(message)) => {
            let v: serde_json::Value = serde_json::from_str(message.get()).unwrap_or_default();
            format!(
                "message {} {}",
                v["method"].as_str().unwrap_or("POST"),
                v["url"].as_str().unwrap_or("?")
            )
        }
        (None, None) => "?".to_owned(),
    };
    truncate(&text, 60)
}

fn print_details(record: &ScheduleRecord) -> anyhow::Result<()> {
    let view = ScheduleView::from(record);
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["cron".into(), record.cron.clone()]);
    table.row(vec!["timezone".into(), record.timezone.clone()]);
    table.row(vec!["fires".into(), fires(&view)]);
    table.row(vec!["catch up".into(), record.catch_up.as_str().into()]);
    table.row(vec![
        "state".into(),
        if record.paused { "paused" } else { "active" }.into(),
    ]);
    table.row(vec![
        "last fired".into(),
        format_opt_ms(record.last_fired_at_ms),
    ]);
    table.row(vec!["created".into(), format_ms(record.created_at_ms)]);
    crate::output::emit(&table.render())?;
    if record.paused {
        outln!(
            "paused: nothing fires until `signet schedules resume {}`",
            record.id
        );
    } else if view.upcoming.is_empty() {
        outln!("no due times ahead");
    } else {
        outln!("next due times (UTC):");
        for t in &view.upcoming {
            outln!("  {t}");
        }
    }
    Ok(())
}
