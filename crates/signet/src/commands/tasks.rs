//! `signet tasks ls|show`: list tasks by queue and state, show one task.

use std::process::ExitCode;

use signet_store::{HistoryEvent, TaskFilter, TaskRow, TaskState};

use crate::commands::{block_on, finish, Negative};
use crate::output::print_json;
use crate::store_url::DatabaseArgs;
use crate::task_view::{
    history_json, history_table, print_page, task_cells, task_detail, task_json, TASK_COLUMNS,
};

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// List tasks, newest first, one page at a time (messages and callbacks,
    /// on Signet's own queue `signet:messages`, only with `--all` or
    /// `--queue signet:messages`).
    Ls(LsArgs),
    /// Show one task: envelope, signature, delivery state and its history
    /// (every attempt, replay, re-sign and cancel, oldest first).
    Show(ShowArgs),
}

/// Arguments of `signet tasks ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Only this queue (Signet's own `signet:messages` included).
    #[arg(long)]
    queue: Option<String>,
    /// Only this state: scheduled, available, running, retryable, succeeded, dead, cancelled.
    #[arg(long, value_parser = parse_state)]
    state: Option<TaskState>,
    /// Also list messages and callbacks (the rows of Signet's own queue
    /// `signet:messages`).
    #[arg(long, conflicts_with = "queue")]
    all: bool,
    #[command(flatten)]
    page: PageArgs,
}

/// The paging flags of `signet tasks ls` and `signet dlq ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct PageArgs {
    /// Page size (at most 1000).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    /// Continue after the cursor a previous page printed.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Print JSON: {"items": [...], "next_cursor": ...}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `signet tasks show` and `signet dlq show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
    /// The task id (`task_…`).
    pub(crate) id: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_state(text: &str) -> Result<TaskState, String> {
    text.parse::<TaskState>().map_err(|e| e.to_string())
}

pub(crate) fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Ls(args) => finish("tasks ls", block_on(ls(args))),
        Command::Show(args) => finish("tasks show", block_on(show(args))),
    }
}

async fn ls(args: LsArgs) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let page = store
        .list_tasks(TaskFilter {
            queue: args.queue,
            state: args.state,
            include_internal: args.all,
            limit: args.page.limit,
            cursor: args.page.cursor,
        })
        .await?;
    print_page(
        page,
        args.page.json,
        TASK_COLUMNS,
        task_cells,
        "no tasks match",
    )
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let Some(row) = store.task(&args.id).await? else {
        return Err(Negative(format!(
            "task {:?} not found; `signet tasks ls` lists the ids",
            args.id
        ))
        .into());
    };
    let history = store.history(&args.id).await?;
    print_task(&row, &history, args.json)
}

/// Prints one task in full with its history (`tasks show`, `dlq show`), or
/// as JSON (the history under `history`).
pub(crate) fn print_task(
    row: &TaskRow,
    history: &[HistoryEvent],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let mut v = task_json(row);
        if let serde_json::Value::Object(map) = &mut v {
            map.insert("history".to_owned(), history_json(history));
        }
        return print_json(&v, true);
    }
    print!("{}", task_detail(row));
    println!();
    print!("{}", history_table(history));
    Ok(())
}
