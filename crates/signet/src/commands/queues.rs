//! `signet queues`: how many tasks each queue holds in each state, where
//! bound queues push and which are paused, on the database or, with
//! `--url`, against a server (`GET /v1/queues`; `--json` prints what it
//! answers). `signet queues pause|resume` stop and restart claims from a
//! queue on every node (`POST /v1/queues/{queue}/pause|resume`), either way
//! too. Signet's own
//! queue (`signet:messages`: messages and callbacks) only with `--all` or
//! `--queue signet:messages`.
//!
//! `signet queues bind|unbind` bind a queue to a push endpoint and remove
//! the binding, on the database (docs/push-queues.md), with the checks of
//! `PUT /v1/queues/{queue}/push` (the runtime's `PushService`).

use std::process::ExitCode;
use std::time::Duration;

use signet_runtime::{NewBinding, PushService, SsrfPolicy, TargetService};
use signet_server::PushView;
use signet_store::TaskState;

use crate::api::{segment, ApiArgs, Call, Keys};
use crate::task_view::text;

use crate::commands::{block_on, finish, Negative};
use crate::output::{outln, print_json, printable, Table};
use crate::store_url::DatabaseArgs;
use crate::timearg::parse_duration;

/// Arguments of `signet queues`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    api: ApiArgs,
    /// Only this queue (Signet's own `signet:messages` included).
    #[arg(long)]
    queue: Option<String>,
    /// Also count messages and callbacks (Signet's own queue
    /// `signet:messages`).
    #[arg(long, conflicts_with = "queue")]
    all: bool,
    /// Print JSON, as `GET /v1/queues` answers: {"queues": [{"queue",
    /// "counts": {"available": 3, ...}, "total", "push", "paused",
    /// "paused_at", "paused_by", "pause_reason"}]}.
    #[arg(long)]
    json: bool,
}

/// `signet queues pause|resume|bind|unbind`.
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Pause a queue on every node: no worker, push drain or (for
    /// `signet:messages`) delivery takes work from it until resumed;
    /// running work is not touched. Pausing a paused queue changes nothing.
    Pause(PauseArgs),
    /// Resume a paused queue: claims take from it again at once, on every
    /// node.
    Resume(PauseArgs),
    /// Bind a queue to a push endpoint: the dispatcher of `signet serve`
    /// then POSTs each of its tasks there, signed with the target's secret.
    /// Binding again replaces the binding.
    Bind(BindArgs),
    /// Unbind a queue: its tasks stay queued for pull workers.
    Unbind {
        /// The queue.
        queue: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// Arguments of `signet queues pause|resume`.
#[derive(Debug, clap::Args)]
struct PauseArgs {
    /// The queue (Signet's own `signet:messages` holds every HTTP delivery).
    queue: String,
    /// Why, shown beside the pause (pause only).
    #[arg(long)]
    reason: Option<String>,
    /// Print JSON, as `POST /v1/queues/{queue}/pause|resume` answers: the
    /// queue.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Arguments of `signet queues bind`.
#[derive(Debug, clap::Args)]
struct BindArgs {
    /// The queue (not Signet's own `signet:…`).
    queue: String,
    /// Where each task is POSTed (http:// or https://).
    #[arg(long)]
    url: String,
    /// The target whose secret signs the requests: id (tgt_…) or name.
    #[arg(long)]
    target: String,
    /// Time the endpoint gets to answer, 1s to 5m.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    timeout: Duration,
    /// Pushes in flight per node, 1 to 1000.
    #[arg(long, default_value_t = 10)]
    concurrency: u64,
    /// Require answers signed with the target's secret (a missing or bad
    /// signature fails the attempt: response-signature-invalid).
    #[arg(long)]
    signed_response: bool,
    /// Addresses the endpoint may have although they are not public (the
    /// setting `signet serve` delivers under), CIDRs comma separated. An
    /// IP-literal URL outside them is refused now.
    #[arg(long, env = "SIGNET_ALLOWED_TARGET_CIDRS", default_value = "")]
    allowed_target_cidrs: String,
    /// Print the binding as JSON, as `PUT /v1/queues/{queue}/push` answers.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(crate) fn run(args: Args) -> ExitCode {
    match args.action {
        Some(Action::Pause(p)) => finish("queues pause", block_on(pause(p, true))),
        Some(Action::Resume(p)) => finish("queues resume", block_on(pause(p, false))),
        Some(Action::Bind(bind)) => finish("queues bind", block_on(bind_queue(bind))),
        Some(Action::Unbind { queue, db }) => {
            finish("queues unbind", block_on(unbind_queue(queue, db)))
        }
        None => finish("queues", block_on(queues(args))),
    }
}

/// `signet queues pause` (`paused`) or `resume`.
async fn pause(args: PauseArgs, paused: bool) -> anyhow::Result<()> {
    if !paused && args.reason.is_some() {
        anyhow::bail!("--reason is for pause; a resume needs none");
    }
    let api = args.api.open(Keys::None).await?;
    let verb = if paused { "pause" } else { "resume" };
    let mut call = Call::post(format!("/v1/queues/{}/{verb}", segment(&args.queue)));
    if let Some(reason) = &args.reason {
        call = call.body(&serde_json::json!({ "reason": reason }))?;
    }
    let q = api.send(call).await?;
    if args.json {
        return print_json(&q, false);
    }
    match q["paused_at"].as_str() {
        Some(at) => outln!(
            "queue {} is paused since {at} (by {}{}): claims skip it on every node; `signet queues resume {}` resumes it",
            printable(&text(&q, "queue")),
            text(&q, "paused_by"),
            q["pause_reason"]
                .as_str()
                .map_or_else(String::new, |r| format!(": {}", printable(r))),
            printable(&text(&q, "queue"))
        ),
        None => outln!(
            "queue {} runs: claims take from it on every node",
            printable(&text(&q, "queue"))
        ),
    }
    Ok(())
}

async fn bind_queue(args: BindArgs) -> anyhow::Result<()> {
    let store = args.db.open().await?;
    let ssrf = SsrfPolicy::parse_allowed(&args.allowed_target_cidrs)?;
    // Finding the target needs no master key: its secret is opened by the
    // dispatcher, when it signs.
    let service = PushService::new(store.clone(), TargetService::new(store, None), ssrf);
    let (b, target) = service
        .bind(
            &args.queue,
            NewBinding {
                url: args.url,
                target: args.target,
                timeout_ms: Some(u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX)),
                concurrency: Some(args.concurrency),
                require_signed_response: args.signed_response,
            },
        )
        .await?;
    if args.json {
        return print_json(
            &serde_json::to_value(PushView::new(b, Some(target.name)))?,
            false,
        );
    }
    outln!(
        "queue {} now pushes to {} (target {}, timeout {} ms, {} in flight per node{})",
        printable(&b.queue),
        printable(&b.url),
        printable(&target.name),
        b.timeout_ms,
        b.concurrency,
        if b.require_signed_response {
            ", signed answers required"
        } else {
            ""
        }
    );
    outln!(
        "running `signet serve` nodes start pushing within {} s",
        signet_runtime::BINDINGS_REFRESH.as_secs()
    );
    Ok(())
}

async fn unbind_queue(queue: String, db: DatabaseArgs) -> anyhow::Result<()> {
    let store = db.open().await?;
    let service = PushService::new(
        store.clone(),
        TargetService::new(store, None),
        SsrfPolicy::new(),
    );
    if service.get(&queue).await?.is_none() {
        return Err(Negative(format!(
            "queue {} is not bound to a push endpoint; nothing to unbind (bound queues: `signet queues`)",
            printable(&queue)
        ))
        .into());
    }
    service.unbind(&queue).await?;
    outln!(
        "queue {} unbound; its tasks stay queued for pull workers",
        printable(&queue)
    );
    Ok(())
}

async fn queues(args: Args) -> anyhow::Result<()> {
    let api = args.api.open(Keys::None).await?;
    let call = Call::get("/v1/queues")
        .query("queue", args.queue.as_deref())
        .query("include_internal", args.all.then_some("true"));
    let answer = api.send(call).await?;
    if args.json {
        return print_json(&answer, false);
    }
    let queues = answer["queues"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if queues.is_empty() {
        match &args.queue {
            Some(queue) => outln!("queue {} holds no tasks", printable(queue)),
            None if args.all => outln!(
                "no tasks yet; enqueue one with `signet enqueue --queue Q --task NAME --args '{{}}'`"
            ),
            None => outln!(
                "no tasks yet; enqueue one with `signet enqueue --queue Q --task NAME --args '{{}}'` (messages and callbacks: `signet queues --all`)"
            ),
        }
        return Ok(());
    }
    let mut columns = vec!["QUEUE"];
    columns.extend(TaskState::ALL.iter().map(|s| s.as_str()));
    columns.push("total");
    columns.push("PUSH");
    columns.push("PAUSED");
    let mut table = Table::new(&columns);
    for q in queues {
        let mut cells = vec![text(q, "queue")];
        cells.extend(
            TaskState::ALL
                .iter()
                .map(|s| text(&q["counts"], s.as_str())),
        );
        cells.push(text(q, "total"));
        cells.push(
            q.get("push")
                .map_or_else(|| "-".to_owned(), |p| text(p, "url")),
        );
        cells.push(match q.get("paused_at") {
            Some(serde_json::Value::String(at)) => format!("since {at}"),
            _ => "-".to_owned(),
        });
        table.row(cells);
    }
    crate::output::emit(&table.render())
}
