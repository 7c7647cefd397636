//! `signet schedules add|ls|show|rm|pause|resume`: cron schedules, on the
//! database or, with `--url`, against a server, through the API's routes
//! (`/v1/schedules…`), so `--json` prints what the API answers.
//!
//! The flags become the body of `POST /v1/schedules` (its task a
//! signet-runtime [`TaskTemplate`], the args byte for byte), so a schedule
//! the CLI accepts is one the API accepts, and errors name the same fields
//! (`cron`, `timezone`, `task.queue`, …). A schedule is named by id or
//! name. Schedules fire from `signet serve` (on the node that leads).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use signet_runtime::schedules::TaskTemplate;
use signet_runtime::DEFAULT_QUEUE;

use crate::api::{segment, Api, ApiArgs, Call, Keys};
use crate::commands::{block_on, finish, Negative};
use crate::output::{emit, outln, print_json, printable, truncate, Table};
use crate::task_view::text;
use crate::timearg::parse_duration;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a schedule that fires a task (--task) or a message (--message).
    Add(Box<AddArgs>),
    /// List schedules: name, id, cron, time zone, next and last due time;
    /// a schedule whose target is gone says so in STATE.
    Ls {
        /// Print JSON, as `GET /v1/schedules` answers: {"items": [{"id",
        /// "name", "cron", "timezone", "next_fire_at", "upcoming",
        /// "target_missing", ...}]}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show one schedule and its next 5 due times.
    Show {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON, as the API answers.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Delete a schedule (runs it already fired stay).
    Rm {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Pause a schedule: it fires nothing until resumed. One already
    /// paused exits 1 (nothing changed).
    Pause {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON, as the API answers.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Resume a paused schedule from its next due time after now. One not
    /// paused exits 1 (nothing changed).
    Resume {
        /// The schedule id (`sch_…`) or name.
        schedule: String,
        /// Print JSON, as the API answers.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
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
    /// Print the created schedule as JSON, as `POST /v1/schedules` answers.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
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

/// The body of `POST /v1/schedules` the flags describe (checked by the
/// route); `--args` keep their bytes.
fn definition(args: &AddArgs) -> anyhow::Result<Map<String, Value>> {
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    body.insert("cron".into(), json!(args.cron));
    if let Some(tz) = &args.timezone {
        body.insert("timezone".into(), json!(tz));
    }
    if let Some(c) = &args.catch_up {
        body.insert("catch_up".into(), json!(c));
    }
    if args.paused {
        body.insert("paused".into(), json!(true));
    }
    match (&args.task, &args.message) {
        (Some(name), None) => {
            let mut headers = BTreeMap::new();
            for (k, v) in &args.headers {
                if headers.insert(k.clone(), v.clone()).is_some() {
                    return Err(anyhow!(
                        "--header {k} is given twice; give each header once"
                    ));
                }
            }
            let task = TaskTemplate {
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
            };
            body.insert("task".into(), serde_json::to_value(&task)?);
        }
        (None, Some(message)) => {
            let raw = json_arg("--message", message)?;
            body.insert("message".into(), serde_json::from_str(raw.get())?);
        }
        // clap makes these exclusive and one of them required.
        _ => return Err(anyhow!("give --task NAME or --message JSON")),
    }
    Ok(body)
}

/// The schedule named `key` (an id, `sch_…`, or a name) as the API shows
/// it; a name is looked up in the list.
async fn find(api: &Api, key: &str) -> anyhow::Result<Value> {
    if key.starts_with("sch_") {
        return api
            .send(Call::get(format!("/v1/schedules/{}", segment(key))))
            .await;
    }
    let list = api.send(Call::get("/v1/schedules")).await?;
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == key)
        .cloned()
        .ok_or_else(|| {
            Negative(format!(
                "no schedule {key:?}; `signet schedules ls` lists them"
            ))
            .into()
        })
}

/// The path of one schedule.
fn path(s: &Value) -> String {
    format!("/v1/schedules/{}", segment(&text(s, "id")))
}

async fn schedules(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add(args) => {
            let body = definition(&args)?;
            // A message's target is looked up; a task's args are not signed
            // until it fires, with the keys of the node that fires it.
            let api = args.api.open(Keys::None).await?;
            let s = api
                .send(Call::post("/v1/schedules").body(&body)?)
                .await
                .map_err(|e| e.context(format!("cannot create schedule {:?}", args.name)))?;
            if args.json {
                return print_json(&s, true);
            }
            outln!(
                "created schedule {} ({})",
                printable(&text(&s, "name")),
                text(&s, "id")
            );
            print_details(&s)
        }
        Command::Ls { json, api } => {
            let api = api.open(Keys::None).await?;
            let list = api.send(Call::get("/v1/schedules")).await?;
            if json {
                return print_json(&list, false);
            }
            let items = list["items"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if items.is_empty() {
                outln!("no schedules yet; add one with `signet schedules add NAME --cron '*/5 * * * *' --task NAME`");
                return Ok(());
            }
            let mut table = Table::new(&[
                "NAME", "ID", "CRON", "TIMEZONE", "FIRES", "STATE", "NEXT", "LAST",
            ]);
            for s in items {
                table.row(vec![
                    text(s, "name"),
                    text(s, "id"),
                    text(s, "cron"),
                    text(s, "timezone"),
                    fires(s),
                    state(s),
                    if s["paused"] == true {
                        "-".to_owned()
                    } else {
                        text(s, "next_fire_at")
                    },
                    text(s, "last_fired_at"),
                ]);
            }
            emit(&table.render())?;
            let missing = items.iter().filter(|s| s["target_missing"] == true).count();
            if missing > 0 {
                eprintln!("warning: {missing} schedule(s) name a target that does not exist; each of their due times is given up (nothing is sent). Register the target again (or point the schedule at another), or delete the schedule (`signet schedules rm NAME`)");
            }
            Ok(())
        }
        Command::Show {
            schedule,
            json,
            api,
        } => {
            let api = api.open(Keys::None).await?;
            let s = find(&api, &schedule).await?;
            if json {
                return print_json(&s, true);
            }
            outln!(
                "schedule {} ({})",
                printable(&text(&s, "name")),
                text(&s, "id")
            );
            print_details(&s)
        }
        Command::Rm { schedule, api } => {
            let api = api.open(Keys::None).await?;
            let s = find(&api, &schedule).await?;
            api.send(Call::delete(path(&s))).await?;
            outln!(
                "deleted schedule {} ({})",
                printable(&text(&s, "name")),
                text(&s, "id")
            );
            Ok(())
        }
        Command::Pause {
            schedule,
            json,
            api,
        } => pause_or_resume(&schedule, true, json, api).await,
        Command::Resume {
            schedule,
            json,
            api,
        } => pause_or_resume(&schedule, false, json, api).await,
    }
}

async fn pause_or_resume(
    schedule: &str,
    paused: bool,
    json: bool,
    api: ApiArgs,
) -> anyhow::Result<()> {
    let api = api.open(Keys::None).await?;
    let before = find(&api, schedule).await?;
    let changed = before["paused"] != paused;
    let verb = if paused { "pause" } else { "resume" };
    let s = api
        .send(Call::post(format!("{}/{verb}", path(&before))))
        .await?;
    // Nothing changed: a negative answer (exit 1), after the JSON with
    // --json.
    let unchanged = || -> anyhow::Result<()> {
        let (was, other) = if paused {
            ("already paused", "resume")
        } else {
            ("not paused", "pause")
        };
        let id = text(&s, "id");
        Err(Negative(format!(
            "schedule {} ({id}) is {was}; nothing changed (`signet schedules {other} {id}` does the opposite)",
            printable(&text(&s, "name")),
        ))
        .into())
    };
    if json {
        print_json(&s, true)?;
        return if changed { Ok(()) } else { unchanged() };
    }
    if !changed {
        return unchanged();
    }
    outln!(
        "{verb}d schedule {} ({})",
        printable(&text(&s, "name")),
        text(&s, "id")
    );
    print_details(&s)
}

/// `active` or `paused`, and whether the target it names is missing.
fn state(s: &Value) -> String {
    let state = if s["paused"] == true {
        "paused"
    } else {
        "active"
    };
    if s["target_missing"] == true {
        format!("{state}, target missing")
    } else {
        state.to_owned()
    }
}

/// What a schedule fires, in a few words: `task report.daily on reports`
/// or `message POST https://…`.
fn fires(s: &Value) -> String {
    let text = match (s.get("task"), s.get("message")) {
        (Some(task), _) => format!(
            "task {} on {}",
            task["task"].as_str().unwrap_or("?"),
            task["queue"].as_str().unwrap_or("?")
        ),
        (None, Some(message)) => format!(
            "message {} {}",
            message["method"].as_str().unwrap_or("POST"),
            message["url"].as_str().unwrap_or("?")
        ),
        (None, None) => "?".to_owned(),
    };
    truncate(&text, 60)
}

fn print_details(s: &Value) -> anyhow::Result<()> {
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["cron".into(), text(s, "cron")]);
    table.row(vec!["timezone".into(), text(s, "timezone")]);
    table.row(vec!["fires".into(), fires(s)]);
    table.row(vec!["catch up".into(), text(s, "catch_up")]);
    table.row(vec!["state".into(), state(s)]);
    table.row(vec!["last fired".into(), text(s, "last_fired_at")]);
    table.row(vec!["created".into(), text(s, "created_at")]);
    emit(&table.render())?;
    let upcoming = s["upcoming"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if s["target_missing"] == true {
        outln!("the target this schedule's message names does not exist: each due time is given up (nothing is sent); register the target again (or point the schedule at another), or delete the schedule");
    }
    if s["paused"] == true {
        outln!(
            "paused: nothing fires until `signet schedules resume {}`",
            text(s, "id")
        );
    } else if upcoming.is_empty() {
        outln!("no due times ahead");
    } else {
        outln!("next due times (UTC):");
        for t in upcoming {
            outln!("  {}", t.as_str().unwrap_or_default());
        }
    }
    Ok(())
}
