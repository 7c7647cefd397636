//! `signet dlq ls|show|replay|purge`: the dead-letter queue.
//!
//! Replay and purge act on explicit ids (`--id`, repeatable) or on every dead
//! letter matching filters (`--all-matching` with `--queue`, `--reason`,
//! `--since`, `--until`); one of the two is required so that a forgotten
//! filter never replays or deletes everything by accident.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use serde_json::json;
use signet_runtime::{skipped_dead_letters, Skipped};
use signet_store::{DeadFilter, DeadReason, DeadSelector, Store, TaskState, MAX_PAGE};

use crate::commands::tasks::{print_task, PageArgs, ShowArgs};
use crate::commands::{block_on, finish, now_ms, Negative};
use crate::output::print_json;
use crate::store_url::DatabaseArgs;
use crate::task_view::{dead_cells, print_page, DEAD_COLUMNS};
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
    fn to_filter(&self, limit: usize, cursor: Option<String>) -> DeadFilter {
        DeadFilter {
            queue: self.queue.clone(),
            reason: self.reason,
            since_ms: self.since,
            until_ms: self.until,
            limit,
            cursor,
        }
    }
}

/// Arguments of `signet dlq ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
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
    fn selector(&self) -> anyhow::Result<DeadSelector> {
        let f = &self.filters;
        let has_filter =
            f.queue.is_some() || f.reason.is_some() || f.since.is_some() || f.until.is_some();
        if self.all_matching {
            Ok(DeadSelector::Filter(f.to_filter(0, None)))
        } else if has_filter {
            bail!("--queue, --reason, --since and --until select only with --all-matching; add it, or name dead letters with --id")
        } else {
            Ok(DeadSelector::Ids(self.ids.clone()))
        }
    }
}

/// Arguments of `signet dlq replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ActArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    selection: Selection,
    /// Re-sign with the active key (SIGNET_SIGNING_*) the dead letters whose
    /// signing key is no longer in the key ring (dead signature-invalid,
    /// unknown-key), then replay them; the others are refused, each with the
    /// reason. The re-signing is recorded in each task's history. An admin
    /// act: it vouches for work signed by a key that was removed.
    #[arg(long)]
    resign: bool,
    /// Print JSON: {"replayed": [ids], "warnings": [...], "skipped":
    /// [{"id", "reason"}]}; with --resign
    /// {"replayed": [ids], "resigned": [...], "refused": [...]} instead.
    #[arg(long)]
    json: bool,
}

/// Arguments of `signet dlq purge`.
#[derive(Debug, clap::Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    #[command(flatten)]
    selection: Selection,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print JSON: {"purged": [ids], "skipped": [{"id", "reason"}]}.
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
    let store = args.db.open().await?;
    let page = store
        .list_dead(args.filters.to_filter(args.page.limit, args.page.cursor))
        .await?;
    print_page(
        page,
        args.page.json,
        DEAD_COLUMNS,
        dead_cells,
        "no dead letters match",
    )
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let row = match store.task(&args.id).await? {
        Some(row) if row.state == TaskState::Dead => row,
        Some(row) => {
            return Err(Negative(format!(
                "task {} is not a dead letter (it is {}); see it with `signet tasks show {}`",
                args.id, row.state, args.id
            ))
            .into())
        }
        None => {
            return Err(Negative(format!(
                "dead letter {:?} not found; `signet dlq ls` lists them",
                args.id
            ))
            .into())
        }
    };
    let history = store.history(&args.id).await?;
    print_task(&row, &history, args.json)
}

/// Who the CLI records as the actor of a replay or re-sign.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown user".to_owned());
    let user: String = user.chars().take(64).collect();
    format!("cli ({user})")
}

async fn replay(args: ActArgs) -> anyhow::Result<()> {
    let selector = args.selection.selector()?;
    // The same keys every command on this database uses (variables, else
    // the key file beside it).
    let signing = crate::commands::keys::load(&args.db, false).map(|keys| keys.signing);
    if args.resign {
        let signing = signing.map_err(|e| {
            anyhow!("--resign signs with the active key, and the keys do not load: {e}")
        })?;
        let store = args.db.open().await?;
        let report = signet_runtime::resign_and_replay(
            store.as_ref(),
            &signing.ring,
            selector,
            &cli_actor(),
            now_ms(),
        )
        .await?;
        return report_resign(&report, args.json);
    }
    let store = args.db.open().await?;
    let replayed = store
        .replay_dead(selector.clone(), &cli_actor(), now_ms())
        .await?;
    let skipped = skipped(store.as_ref(), &selector, &replayed).await?;
    // Warnings need the key ring; a replay does not, so without a ring
    // there is nothing to compare with.
    let warnings = match &signing {
        Ok(signing) => {
            signet_runtime::replay_warnings(store.as_ref(), &signing.ring, &replayed).await?
        }
        Err(_) => Vec::new(),
    };
    if args.json {
        print_json(
            &json!({ "replayed": replayed, "warnings": warnings, "skipped": skipped }),
            false,
        )?;
        return nothing_done("replayed", &replayed, &skipped);
    }
    report("replayed", &replayed, &skipped, false)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// The ids named with `--id` that were not acted on, and why.
async fn skipped(
    store: &dyn Store,
    selector: &DeadSelector,
    acted: &[String],
) -> anyhow::Result<Vec<Skipped>> {
    match selector {
        DeadSelector::Ids(asked) => Ok(skipped_dead_letters(store, asked, acted).await?),
        DeadSelector::Filter(_) => Ok(Vec::new()),
    }
}

/// Named dead letters none of which was acted on: a negative answer (exit
/// 1) with the reason for each, `--json` or not.
fn nothing_done(verb: &str, acted: &[String], skipped: &[Skipped]) -> anyhow::Result<()> {
    if !acted.is_empty() || skipped.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = skipped
        .iter()
        .map(|s| format!("{}: {}", s.id, s.reason))
        .collect();
    Err(Negative(format!(
        "nothing {verb}: {}; `signet dlq ls` lists the dead letters, `signet tasks show ID` shows any task",
        reasons.join("; ")
    ))
    .into())
}

fn report_resign(report: &signet_runtime::ResignReport, json: bool) -> anyhow::Result<()> {
    let replayed: Vec<&str> = report.resigned.iter().map(|r| r.id.as_str()).collect();
    if json {
        let resigned: Vec<_> = report
            .resigned
            .iter()
            .map(|r| json!({ "id": r.id, "from_key_id": r.from_key_id, "to_key_id": r.to_key_id }))
            .collect();
        let refused: Vec<_> = report
            .refused
            .iter()
            .map(|r| json!({ "id": r.id, "reason": r.reason }))
            .collect();
        print_json(
            &json!({ "replayed": replayed, "resigned": resigned, "refused": refused }),
            false,
        )?;
        return nothing_resigned(report);
    }
    println!(
        "re-signed and replayed {} dead letter(s)",
        report.resigned.len()
    );
    for r in &report.resigned {
        println!("  {}: key {} -> {}", r.id, r.from_key_id, r.to_key_id);
    }
    for r in &report.refused {
        println!("  refused {}: {}", r.id, r.reason);
    }
    nothing_resigned(report)
}

/// A re-sign that refused every id it was given did nothing: exit non-zero,
/// with `--json` as without.
fn nothing_resigned(report: &signet_runtime::ResignReport) -> anyhow::Result<()> {
    if report.resigned.is_empty() && !report.refused.is_empty() {
        return Err(Negative("nothing was re-signed".to_owned()).into());
    }
    Ok(())
}

async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let selector = args.selection.selector()?;
    let store = args.db.open().await?;
    if !args.yes {
        let n = count_selected(store.as_ref(), &selector).await?;
        if n == 0 {
            let skipped = skipped(store.as_ref(), &selector, &[]).await?;
            return report("purged", &[], &skipped, args.json);
        }
        confirm(n)?;
    }
    let purged = store.purge_dead(selector.clone()).await?;
    let skipped = skipped(store.as_ref(), &selector, &purged).await?;
    report("purged", &purged, &skipped, args.json)
}

/// How many dead letters a selector names (for the confirmation prompt).
async fn count_selected(store: &dyn Store, selector: &DeadSelector) -> anyhow::Result<usize> {
    match selector {
        DeadSelector::Ids(ids) => {
            let mut n = 0;
            for id in ids {
                if matches!(store.task(id).await?, Some(row) if row.state == TaskState::Dead) {
                    n += 1;
                }
            }
            Ok(n)
        }
        DeadSelector::Filter(filter) => {
            let mut n = 0;
            let mut cursor = None;
            loop {
                let mut f = filter.clone();
                f.limit = MAX_PAGE;
                f.cursor = cursor;
                let page = store.list_dead(f).await?;
                n += page.items.len();
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => return Ok(n),
                }
            }
        }
    }
}

/// Asks on the terminal; refuses without one.
fn confirm(n: usize) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("this would delete {n} dead letter(s) for good; rerun with --yes to confirm");
    }
    eprint!("Delete {n} dead letter(s) for good? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Negative("nothing purged".to_owned()).into())
    }
}

/// Prints what was done and what was skipped; when ids were named and none
/// was acted on, a negative answer instead (after the JSON, with `--json`).
fn report(verb: &str, ids: &[String], skipped: &[Skipped], json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&json!({ verb: ids, "skipped": skipped }), false)?;
        return nothing_done(verb, ids, skipped);
    }
    nothing_done(verb, ids, skipped)?;
    println!("{verb} {} dead letter(s)", ids.len());
    for id in ids {
        println!("  {id}");
    }
    for s in skipped {
        println!("  skipped {}: {}", s.id, s.reason);
    }
    Ok(())
}
