//! `signet dlq ls|show|replay|purge`: the dead-letter queue, on the
//! database or, with `--url`, against a server, through the API's routes
//! (`/v1/dead-letters…`), so `--json` prints what the API answers.
//!
//! Replay and purge act on explicit ids (`--id`, repeatable) or on every dead
//! letter matching filters (`--all-matching` with `--queue`, `--reason`,
//! `--since`, `--until`); one of the two is required so that a forgotten
//! filter never replays or deletes everything by accident.

use std::collections::HashSet;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use signet_server::MAX_DEAD_LETTER_IDS;
use signet_store::{DeadReason, MAX_PAGE};

use crate::api::{segment, Api, ApiArgs, Call, Keys};
use crate::commands::tasks::{PageArgs, ShowArgs};
use crate::commands::{block_on, finish, Negative};
use crate::output::{emit, format_ms, print_json};
use crate::task_view::{dead_cells, print_page, print_task, text, DEAD_COLUMNS};
use crate::timearg::parse_time_ms;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List dead letters, newest first.
    Ls(LsArgs),
    /// Show one dead letter with its reason, detail and history.
    Show(ShowArgs),
    /// Put dead letters back on their queue (the attempt count starts again;
    /// earlier attempts stay in the history; the signature is kept unless
    /// --resign).
    Replay(ActArgs),
    /// Delete dead letters for good.
    Purge(PurgeArgs),
}

/// Filters shared by listing and `--all-matching`.
#[derive(Debug, clap::Args)]
pub(crate) struct Filters {
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only this reason: signature-invalid, max-attempts, expired, unknown-task,
    /// payload-invalid, target-refused.
    #[arg(long, value_parser = parse_reason)]
    reason: Option<DeadReason>,
    /// Only dead since this time, inclusive: RFC 3339 (2026-11-23T12:00:00Z)
    /// or unix milliseconds (1795000000000), as in the API.
    #[arg(long, value_parser = parse_time_ms)]
    since: Option<i64>,
    /// Only dead before this time, exclusive: RFC 3339 or unix milliseconds.
    #[arg(long, value_parser = parse_time_ms)]
    until: Option<i64>,
}

impl Filters {
    /// The listing `call` with these filters.
    fn on(&self, call: Call) -> Call {
        call.query("queue", self.queue.as_deref())
            .query("reason", self.reason.map(|r| r.as_str()))
            .query("since", self.since)
            .query("until", self.until)
    }

    /// The filter as replay and purge take it.
    fn input(&self) -> Value {
        let mut filter = Map::new();
        if let Some(q) = &self.queue {
            filter.insert("queue".into(), json!(q));
        }
        if let Some(r) = self.reason {
            filter.insert("reason".into(), json!(r.as_str()));
        }
        if let Some(t) = self.since {
            filter.insert("since".into(), json!(format_ms(t)));
        }
        if let Some(t) = self.until {
            filter.insert("until".into(), json!(format_ms(t)));
        }
        Value::Object(filter)
    }
}

/// Arguments of `signet dlq ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    page: PageArgs,
}

/// Which dead letters `replay` and `purge` act on.
#[derive(Debug, clap::Args)]
#[group(id = "selection", required = true, multiple = false, args = ["ids", "all_matching"])]
pub(crate) struct Selection {
    /// A dead letter's id; repeat for several. An id that is not a dead
    /// letter is skipped with the reason; when none is acted on, the
    /// command exits 1.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// Every dead letter matching --queue, --reason, --since and --until
    /// (all of them when no filter is given).
    #[arg(long)]
    all_matching: bool,
    #[command(flatten)]
    filters: Filters,
}

impl Selection {
    /// The selection as replay and purge take it: `{"ids"}` or
    /// `{"filter"}`.
    fn input(&self) -> anyhow::Result<Map<String, Value>> {
        let f = &self.filters;
        let has_filter =
            f.queue.is_some() || f.reason.is_some() || f.since.is_some() || f.until.is_some();
        let mut body = Map::new();
        if self.all_matching {
            body.insert("filter".into(), f.input());
        } else if has_filter {
            bail!("--queue, --reason, --since and --until select only with --all-matching; add it, or name dead letters with --id")
        } else {
            body.insert("ids".into(), json!(self.ids));
        }
        Ok(body)
    }
}

/// Arguments of `signet dlq replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ActArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    selection: Selection,
    /// Re-sign with the active key (SIGNET_SIGNING_*) the dead letters whose
    /// signing key is no longer in the key ring (dead signature-invalid,
    /// unknown-key), then replay them; the others are refused, each with the
    /// reason. The re-signing is recorded in each task's history. An admin
    /// act: it vouches for work signed by a key that was removed.
    #[arg(long)]
    resign: bool,
    /// Print JSON, as the API answers: {"count", "ids", "warnings",
    /// "skipped": [{"id", "reason"}]}; with --resign also "resigned" and
    /// "refused".
    #[arg(long)]
    json: bool,
}

/// Arguments of `signet dlq purge`.
#[derive(Debug, clap::Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    selection: Selection,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print JSON, as the API answers: {"count", "ids", "skipped"}.
    #[arg(long)]
    json: bool,
}

fn parse_reason(text: &str) -> Result<DeadReason, String> {
    text.parse::<DeadReason>().map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Ls(args) => finish("dlq ls", block_on(ls(args))),
        Command::Show(args) => finish("dlq show", block_on(show(args))),
        Command::Replay(args) => finish("dlq replay", block_on(replay(args))),
        Command::Purge(args) => finish("dlq purge", block_on(purge(args))),
    }
}

async fn ls(args: LsArgs) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let call = args.filters.on(Call::get("/v1/dead-letters"));
    let page = api.send(args.page.on(call)).await?;
    print_page(
        &page,
        args.page.json,
        DEAD_COLUMNS,
        dead_cells,
        "no dead letters match",
    )
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let task = api
        .send(Call::get(format!("/v1/dead-letters/{}", segment(&args.id))))
        .await?;
    print_task(&task, args.json)
}

async fn replay(args: ActArgs) -> anyhow::Result<()> {
    let mut body = args.selection.input()?;
    body.insert("resign".into(), json!(args.resign));
    // --resign signs with the active key; a plain replay only warns with
    // the ring, and works without it.
    let keys = if args.resign {
        Keys::Required
    } else {
        Keys::IfAvailable
    };
    let api = args.api.open(keys).await?;
    let answer = api
        .send(Call::post("/v1/dead-letters/replay").body(&body)?)
        .await?;
    if args.json {
        print_json(&answer, false)?;
    } else {
        // What a re-sign refused is printed, each with its reason; a
        // plain replay that did nothing only says why, in the error.
        if !args.resign {
            nothing_done("replayed", &answer)?;
        }
        report("replayed", &answer)?;
    }
    nothing_done("replayed", &answer)
}

/// The ids of `field` in an answer.
fn list<'a>(answer: &'a Value, field: &str) -> &'a [Value] {
    answer[field]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Prints what a replay or purge did, for people.
fn report(verb: &str, answer: &Value) -> anyhow::Result<()> {
    let mut out = String::new();
    match answer.get("resigned").and_then(Value::as_array) {
        Some(resigned) => {
            out.push_str(&format!(
                "re-signed and replayed {} dead letter(s)\n",
                resigned.len()
            ));
            for r in resigned {
                out.push_str(&format!(
                    "  {}: key {} -> {}\n",
                    text(r, "id"),
                    text(r, "from_key_id"),
                    text(r, "to_key_id")
                ));
            }
            for r in list(answer, "refused") {
                out.push_str(&format!(
                    "  refused {}: {}\n",
                    text(r, "id"),
                    text(r, "reason")
                ));
            }
        }
        None => {
            out.push_str(&format!(
                "{verb} {} dead letter(s)\n",
                text(answer, "count")
            ));
            for id in list(answer, "ids") {
                out.push_str(&format!("  {}\n", id.as_str().unwrap_or_default()));
            }
        }
    }
    for s in list(answer, "skipped") {
        out.push_str(&format!(
            "  skipped {}: {}\n",
            text(s, "id"),
            text(s, "reason")
        ));
    }
    emit(&out)?;
    for w in list(answer, "warnings") {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
    Ok(())
}

/// Nothing acted on although dead letters were named (each skipped or
/// refused, with its reason): a negative answer (exit 1), `--json` or not.
fn nothing_done(verb: &str, answer: &Value) -> anyhow::Result<()> {
    if !list(answer, "ids").is_empty() {
        return Ok(());
    }
    let left: Vec<String> = list(answer, "skipped")
        .iter()
        .chain(list(answer, "refused"))
        .map(|s| format!("{}: {}", text(s, "id"), text(s, "reason")))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    Err(Negative(format!(
        "nothing {verb}: {}; `signet dlq ls` lists the dead letters, `signet tasks show ID` shows any task",
        left.join("; ")
    ))
    .into())
}

async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    // The flags are checked before anything is opened.
    let body = args.selection.input()?;
    let selection = args.selection;
    let api = args.api.open(Keys::None).await?;
    let answer = if args.yes {
        api.send(Call::post(PURGE).body(&body)?).await?
    } else if selection.all_matching {
        // What is deleted is exactly what was counted and confirmed: the
        // listed ids, not the filter again. A dead letter that dies
        // meanwhile is left, even one stamped before the count (a batch
        // stamped with one time, a node whose clock is behind).
        let ids = listed_ids(&api, &selection.filters).await?;
        if !ids.is_empty() {
            confirm(ids.len(), &api.destination())?;
        }
        purge_ids(&api, &ids).await?
    } else {
        let n = count_named(&api, &selection.ids).await?;
        if n > 0 {
            confirm(n, &api.destination())?;
        }
        api.send(Call::post(PURGE).body(&body)?).await?
    };
    // A filter that selects nothing, or dead letters that someone else
    // replayed or purged between the count and the purge (`skipped`), is
    // not an error; ids the user named that are not dead letters are.
    let named = !selection.all_matching;
    if args.json {
        print_json(&answer, false)?;
    } else {
        if named {
            nothing_done("purged", &answer)?;
        }
        report("purged", &answer)?;
    }
    if named {
        nothing_done("purged", &answer)?;
    }
    Ok(())
}

/// The purge route.
const PURGE: &str = "/v1/dead-letters/purge";

/// How many of the named ids are dead letters (for the confirmation
/// prompt).
async fn count_named(api: &Api, ids: &[String]) -> anyhow::Result<usize> {
    let mut n = 0;
    for id in ids {
        let call = Call::get(format!("/v1/dead-letters/{}", segment(id)));
        match api.send(call).await {
            Ok(_) => n += 1,
            Err(e) if e.downcast_ref::<Negative>().is_some() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The ids of every dead letter `filters` list now, page by page.
async fn listed_ids(api: &Api, filters: &Filters) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let call = filters
            .on(Call::get("/v1/dead-letters"))
            .query("limit", Some(MAX_PAGE))
            .query("cursor", cursor.as_deref());
        let page = api.send(call).await?;
        for item in list(&page, "items") {
            match item["id"].as_str() {
                // Once each: a dead letter replayed and dead again while
                // the pages are read may be listed twice.
                Some(id) if seen.insert(id.to_owned()) => ids.push(id.to_owned()),
                Some(_) => {}
                None => bail!("the dead-letter listing answered an item without an id: {item}"),
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(ids),
        }
    }
}

/// Purges exactly `ids`, as many per request as the route takes, and
/// answers as one purge would: `{"count", "ids", "skipped"}` (`skipped`
/// left out when empty, as the API does).
async fn purge_ids(api: &Api, ids: &[String]) -> anyhow::Result<Value> {
    let mut purged: Vec<Value> = Vec::new();
    let mut skipped: Vec<Value> = Vec::new();
    for chunk in ids.chunks(MAX_DEAD_LETTER_IDS) {
        let answer = api
            .send(Call::post(PURGE).body(&json!({ "ids": chunk }))?)
            .await
            .with_context(|| {
                let done: Vec<&str> = purged.iter().filter_map(Value::as_str).collect();
                format!(
                    "{} of the {} dead letter(s) were purged before this error: {}",
                    done.len(),
                    ids.len(),
                    if done.is_empty() {
                        "none".to_owned()
                    } else {
                        done.join(", ")
                    }
                )
            })?;
        purged.extend(list(&answer, "ids").iter().cloned());
        skipped.extend(list(&answer, "skipped").iter().cloned());
    }
    Ok(merged(purged, skipped))
}

/// One purge's answer made of several.
fn merged(purged: Vec<Value>, skipped: Vec<Value>) -> Value {
    let mut answer = Map::new();
    answer.insert("count".into(), json!(purged.len()));
    answer.insert("ids".into(), Value::Array(purged));
    if !skipped.is_empty() {
        answer.insert("skipped".into(), Value::Array(skipped));
    }
    Value::Object(answer)
}

/// Asks on the terminal, naming `destination` (where the dead letters
/// are); refuses without one.
fn confirm(n: usize, destination: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("this would delete {n} dead letter(s) for good {destination}; rerun with --yes to confirm");
    }
    eprint!("Delete {n} dead letter(s) for good {destination}? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Negative("nothing purged".to_owned()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_answers_read_as_one_purge() {
        let answer = merged(
            vec![json!("task_a"), json!("task_b")],
            vec![json!({"id": "task_c", "reason": "not found"})],
        );
        assert_eq!(
            answer,
            json!({"count": 2, "ids": ["task_a", "task_b"],
                   "skipped": [{"id": "task_c", "reason": "not found"}]})
        );
        // As the API answers a purge that found nothing.
        assert_eq!(
            merged(Vec::new(), Vec::new()),
            json!({"count": 0, "ids": []})
        );
    }
}
