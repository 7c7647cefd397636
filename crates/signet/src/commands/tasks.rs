//! `signet tasks ls|show|cancel|retry`: list tasks by queue and state, show
//! one task, cancel one, retry one now; on the database or, with `--url`,
//! against a server, through the API's routes (`GET /v1/tasks[/{id}]`,
//! `POST /v1/tasks/{id}/cancel|retry`), so `--json` prints what the API
//! answers.

use std::process::ExitCode;

use signet_store::TaskState;

use crate::api::{segment, ApiArgs, Call, Keys};
use crate::commands::{block_on, finish};
use crate::output::{emit, print_json};
use crate::task_view::{print_page, print_task, task_cells, text, TASK_COLUMNS};

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
    /// Cancel a task that has not started or waits to retry (a running or
    /// finished task is refused). Recorded in its history.
    Cancel(ShowArgs),
    /// Retry now a task waiting for its backoff (state retryable): it is
    /// available at once, its attempts still count. Recorded in its
    /// history.
    Retry(ShowArgs),
}

/// Arguments of `signet tasks ls`.
#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    api: ApiArgs,
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

/// The paging flags of the listings.
#[derive(Debug, clap::Args)]
pub(crate) struct PageArgs {
    /// Page size (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    /// Continue after the cursor a previous page printed.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Print JSON, as the API answers: {"items": [...], "next_cursor": ...}.
    #[arg(long)]
    pub(crate) json: bool,
}

impl PageArgs {
    /// `call` with this page's `limit` and `cursor`.
    pub(crate) fn on(&self, call: Call) -> Call {
        call.query("limit", Some(self.limit))
            .query("cursor", self.cursor.as_deref())
    }
}

/// Arguments of the commands that name one task.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The task id (`task_…`).
    pub(crate) id: String,
    /// Print JSON, as the API answers.
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
        Command::Cancel(args) => finish("tasks cancel", block_on(act(args, "cancel"))),
        Command::Retry(args) => finish("tasks retry", block_on(act(args, "retry"))),
    }
}

async fn ls(args: LsArgs) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let call = Call::get("/v1/tasks")
        .query("queue", args.queue.as_deref())
        .query("state", args.state.map(|s| s.as_str()))
        .query("include_internal", args.all.then_some("true"));
    let page = api.send(args.page.on(call)).await?;
    print_page(
        &page,
        args.page.json,
        TASK_COLUMNS,
        task_cells,
        "no tasks match",
    )
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let task = api
        .send(Call::get(format!("/v1/tasks/{}", segment(&args.id))))
        .await?;
    print_task(&task, args.json)
}

/// `signet tasks cancel|retry`: `POST /v1/tasks/{id}/{action}`.
async fn act(args: ShowArgs, action: &str) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let task = api
        .send(Call::post(format!(
            "/v1/tasks/{}/{action}",
            segment(&args.id)
        )))
        .await?;
    if args.json {
        return print_json(&task, false);
    }
    let done = if action == "cancel" {
        "cancelled"
    } else {
        "retrying now"
    };
    emit(&format!(
        "{done} {} (queue {}, task {}, state {})\n",
        text(&task, "id"),
        text(&task, "queue"),
        text(&task, "task"),
        text(&task, "state")
    ))
}
