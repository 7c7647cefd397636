//! `signet schedules add|ls|show|rm|pause|resume`: cron schedules, straight
//! on the store.
//!
//! The flags become signet-runtime's typed definition ([`NewSchedule`], its
//! task a [`TaskTemplate`]) and go through the [`ScheduleService`] that
//! `/v1/schedules` calls too, so a schedule the CLI accepts is one
//! `POST /v1/schedules` would accept, and errors name the same fields
//! (`cron`, `timezone`, `task.queue`, …).
//! Schedules fire from `signet serve` (on the node that leads).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use signet_runtime::schedules::{
    parse_catch_up, NewSchedule, SchedulePayload, ScheduleService, TaskTemplate,
};
use signet_runtime::RuntimeError;
use signet_runtime::DEFAULT_QUEUE;
use signet_store::ScheduleRecord;

use crate::commands::{block_on, finish, Negative};
use crate::output::{format_ms, format_opt_ms, outln, print_json, printable, truncate, Table};
use crate::store_url::DatabaseArgs;
use crate::timearg::parse_duration;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a schedule that fires a task (--task) or a message (--message).
    Add(Box<AddArgs>),
    /// List schedules: name, id, cron, time zone, next and last due time;
    /// a schedule whose target is gone says so in STATE.
    Ls {
        /// Print JSON: [{"id", "name", "cron", "timezone", "next_fire_at", "upcoming",
        /// "target_missing", ...}].
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
    /// Pause a schedule: it fires nothing until resumed. One already
    /// paused exits 1 (nothing changed).
    Pause {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Resume a paused schedule from its next due time after now. One not
    /// paused exits 1 (nothing changed).
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

fn json_arg(flag: &str, text: &str) -> anyhow::Result<Box<RawValue>> {
    RawValue::from_string(text.to_owned()).map_err(|e| {
        anyhow!("{flag} is not valid JSON: {e}; quote it for the shell, e.g. {flag} '{{\"a\":1}}'")
    })
}

/// The schedule the flags describe (checked by the service); `--args`
/// keep their bytes.
fn definition(args: &AddArgs) -> anyhow::Result<NewSchedule> {
    let payload = match (&args.task, &args.message) {
        (Some(name), None) => {
            let mut headers = BTreeMap::new();
            for (k, v) in &args.headers {
                if headers.insert(k.clone(), v.clone()).is_some() {
                    return Err(anyhow!(
                        "--header {k} is given twice; give each header once"
                    ));
                }
            }
            SchedulePayload::Task(TaskTemplate {
                queue: args.queue.clone(),
                task: name.clone(),
                args: args
                    .args
                    .as_deref()
                    .map(|a| json_arg("--args", a))
                    .transpose()?,
                delay_ms: args
                    .delay
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                max_attempts: args.max_attempts,
                priority: args.priority,
                headers: (!headers.is_empty()).then_some(headers),
                callback_url: args.callback_url.clone(),
                ..TaskTemplate::default()
            })
        }
        (None, Some(message)) => SchedulePayload::Message(json_arg("--message", message)?),
        // clap makes these exclusive and one of them required.
        _ => return Err(anyhow!("give --task NAME or --message JSON")),
    };
    Ok(NewSchedule {
        name: args.name.clone(),
        cron: args.cron.clone(),
        timezone: args.timezone.clone(),
        payload,
        catch_up: args.catch_up.as_deref().map(parse_catch_up).transpose()?,
        paused: args.paused,
    })
}

/// A service error as a CLI error (exit 2): a refused field as
/// `field: message`, a store error (a name in use) in its own words.
fn refused(e: RuntimeError) -> anyhow::Error {
    match e {
        RuntimeError::Store(e) => e.into(),
        other => other.into(),
    }
}

async fn find(service: &ScheduleService, key: &str) -> anyhow::Result<ScheduleRecord> {
    service.find(key).await?.ok_or_else(|| {
        Negative(format!(
            "no schedule {key:?}; `signet schedules ls` lists them"
        ))
        .into()
    })
}

async fn schedules(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add(args) => {
            let new = definition(&args)?;
            let name = new.name.clone();
            let store = args.db.open().await?;
            let created = ScheduleService::new(store.clone()).create(new).await;
            store.close().await?;
            let record = match created {
                Ok(record) => record,
                // A name in use, or a store failure.
                Err(RuntimeError::Store(e)) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("cannot create schedule {name:?}"))
                    )
                }
                Err(e) => return Err(refused(e)),
            };
            // The target was checked when it was created.
            if args.json {
                return print_view(&record, false);
            }
            outln!(
                "created schedule {} ({})",
                printable(&record.name),
                record.id
            );
            print_details(&record, false)?;
            Ok(())
        }
        Command::Ls { json, db } => {
            let store = db.open().await?;
            let service = ScheduleService::new(store.clone());
            let listed = async {
                let mut list = Vec::new();
                for s in service.list().await? {
                    let missing = service.target_missing(&s).await?;
                    list.push((s, missing));
                }
                Ok::<_, RuntimeError>(list)
            }
            .await;
            store.close().await?;
            let list = listed?;
            if json {
                let items = list
                    .iter()
                    .map(|(s, missing)| schedule_json(s, *missing))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                return print_json(&Value::Array(items), false);
            }
            if list.is_empty() {
                outln!("no schedules yet; add one with `signet schedules add NAME --cron '*/5 * * * *' --task NAME`");
                return Ok(());
            }
            let mut table = Table::new(&[
                "NAME", "ID", "CRON", "TIMEZONE", "FIRES", "STATE", "NEXT", "LAST",
            ]);
            for (s, missing) in &list {
                table.row(vec![
                    s.name.clone(),
                    s.id.clone(),
                    s.cron.clone(),
                    s.timezone.clone(),
                    fires(s),
                    state(s, *missing),
                    if s.paused {
                        "-".to_owned()
                    } else {
                        format_opt_ms(s.next_fire_at_ms)
                    },
                    format_opt_ms(s.last_fired_at_ms),
                ]);
            }
            crate::output::emit(&table.render())?;
            let missing = list.iter().filter(|(_, missing)| *missing).count();
            if missing > 0 {
                eprintln!("warning: {missing} schedule(s) name a target that does not exist; each of their due times is given up (nothing is sent). Register the target again (or point the schedule at another), or delete the schedule (`signet schedules rm NAME`)");
            }
            Ok(())
        }
        Command::Show { schedule, json, db } => {
            let store = db.open().await?;
            let service = ScheduleService::new(store.clone());
            let found = async {
                let record = find(&service, &schedule).await?;
                let missing = service.target_missing(&record).await?;
                Ok::<_, anyhow::Error>((record, missing))
            }
            .await;
            store.close().await?;
            let (record, missing) = found?;
            if json {
                return print_view(&record, missing);
            }
            outln!("schedule {} ({})", printable(&record.name), record.id);
            print_details(&record, missing)?;
            Ok(())
        }
        Command::Rm { schedule, db } => {
            let store = db.open().await?;
            let service = ScheduleService::new(store.clone());
            let result = async {
                let record = find(&service, &schedule).await?;
                service.delete(&record.id).await.map_err(refused)?;
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
    let service = ScheduleService::new(store.clone());
    let result = async {
        let record = find(&service, schedule).await?;
        let changed = if paused {
            service.pause(&record.id).await
        } else {
            service.resume(&record.id).await
        };
        let (record, changed) = changed.map_err(refused)?;
        let missing = service.target_missing(&record).await?;
        Ok::<_, anyhow::Error>((record, changed, missing))
    }
    .await;
    store.close().await?;
    let (record, changed, missing) = result?;
    // Nothing changed: a negative answer (exit 1), after the JSON with
    // --json.
    let unchanged = || -> anyhow::Result<()> {
        let (was, other) = if paused {
            ("already paused", "resume")
        } else {
            ("not paused", "pause")
        };
        Err(Negative(format!(
            "schedule {} ({}) is {was}; nothing changed (`signet schedules {other} {}` does the opposite)",
            printable(&record.name),
            record.id,
            record.id
        ))
        .into())
    };
    if json {
        print_view(&record, missing)?;
        return if changed { Ok(()) } else { unchanged() };
    }
    if !changed {
        return unchanged();
    }
    let verb = if paused { "paused" } else { "resumed" };
    outln!(
        "{verb} schedule {} ({})",
        printable(&record.name),
        record.id
    );
    print_details(&record, missing)?;
    Ok(())
}

/// `active` or `paused`, and whether the target it names is missing.
fn state(record: &ScheduleRecord, target_missing: bool) -> String {
    let state = if record.paused { "paused" } else { "active" };
    if target_missing {
        format!("{state}, target missing")
    } else {
        state.to_owned()
    }
}

/// A schedule as JSON: the fields `GET /v1/schedules/{id}` shows, times as
/// RFC 3339 (UTC) and `next_fire_at_ms`.
fn schedule_json(record: &ScheduleRecord, target_missing: bool) -> anyhow::Result<Value> {
    let (task, message) = SchedulePayload::stored_parts(&record.payload);
    let mut v = json!({
        "id": record.id,
        "name": record.name,
        "cron": record.cron,
        "timezone": record.timezone,
        "kind": if task.is_some() { "task" } else { "message" },
        "catch_up": record.catch_up.as_str(),
        "paused": record.paused,
        "next_fire_at": record.next_fire_at_ms.map(format_ms),
        "next_fire_at_ms": record.next_fire_at_ms,
        "last_fired_at": record.last_fired_at_ms.map(format_ms),
        "upcoming": ScheduleService::upcoming(record).into_iter().map(format_ms).collect::<Vec<_>>(),
        "target_missing": target_missing,
        "created_at": format_ms(record.created_at_ms),
        "updated_at": format_ms(record.updated_at_ms),
    });
    if let Some(task) = task {
        v["task"] = serde_json::to_value(task)?;
    }
    if let Some(message) = message {
        v["message"] = serde_json::to_value(message)?;
    }
    Ok(v)
}

fn print_view(record: &ScheduleRecord, target_missing: bool) -> anyhow::Result<()> {
    print_json(&schedule_json(record, target_missing)?, true)
}

/// What a schedule fires, in a few words: `task report.daily on reports`
/// or `message POST https://…`.
fn fires(record: &ScheduleRecord) -> String {
    let text = match SchedulePayload::stored_parts(&record.payload) {
        (Some(task), _) => {
            let v: Value = serde_json::from_str(task.get()).unwrap_or_default();
            format!(
                "task {} on {}",
                v["task"].as_str().unwrap_or("?"),
                v["queue"].as_str().unwrap_or("?")
            )
        }
        (None, Some(message)) => {
            let v: Value = serde_json::from_str(message.get()).unwrap_or_default();
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

fn print_details(record: &ScheduleRecord, target_missing: bool) -> anyhow::Result<()> {
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["cron".into(), record.cron.clone()]);
    table.row(vec!["timezone".into(), record.timezone.clone()]);
    table.row(vec!["fires".into(), fires(record)]);
    table.row(vec!["catch up".into(), record.catch_up.as_str().into()]);
    table.row(vec!["state".into(), state(record, target_missing)]);
    table.row(vec![
        "last fired".into(),
        format_opt_ms(record.last_fired_at_ms),
    ]);
    table.row(vec!["created".into(), format_ms(record.created_at_ms)]);
    crate::output::emit(&table.render())?;
    let upcoming = ScheduleService::upcoming(record);
    if target_missing {
        outln!("the target this schedule's message names does not exist: each due time is given up (nothing is sent); register the target again (or point the schedule at another), or delete the schedule");
    }
    if record.paused {
        outln!(
            "paused: nothing fires until `signet schedules resume {}`",
            record.id
        );
    } else if upcoming.is_empty() {
        outln!("no due times ahead");
    } else {
        outln!("next due times (UTC):");
        for t in upcoming {
            outln!("  {}", format_ms(t));
        }
    }
    Ok(())
}
