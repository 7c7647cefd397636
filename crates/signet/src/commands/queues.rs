//! `signet queues`: how many tasks each queue holds in each state, where
//! bound queues push, and which are paused (and since when). Signet's own queue (`signet:messages`: messages
//! and callbacks) only with `--all` or `--queue signet:messages`.
//!
//! `signet queues bind|unbind` bind a queue to a push endpoint and remove
//! the binding, on the database (docs/push-queues.md), with the checks of
//! `PUT /v1/queues/{queue}/push` (the runtime's `PushService`).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Map, Value};
use signet_runtime::{
    format_time_ms, queue_overview, NewBinding, PushService, SsrfPolicy, TargetService,
};
use signet_server::PushView;
use signet_store::TaskState;

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
    db: DatabaseArgs,
    /// Only this queue (Signet's own `signet:messages` included).
    #[arg(long)]
    queue: Option<String>,
    /// Also count messages and callbacks (Signet's own queue
    /// `signet:messages`).
    #[arg(long, conflicts_with = "queue")]
    all: bool,
    /// Print JSON: [{"queue": ..., "counts": {"available": 3, ...}, "total": ...,
    /// "paused": false, "paused_at": null, ...}].
    #[arg(long)]
    json: bool,
}

/// `signet queues bind|unbind`.
#[derive(Debug, clap::Subcommand)]
enum Action {
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
        Some(Action::Bind(bind)) => finish("queues bind", block_on(bind_queue(bind))),
        Some(Action::Unbind { queue, db }) => {
            finish("queues unbind", block_on(unbind_queue(queue, db)))
        }
        None => finish("queues", block_on(queues(args))),
    }
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
    let store = args.db.open().await?;
    let internal_hidden =
        args.queue.is_none() && !args.all && store.counts().await?.iter().any(|c| c.is_internal());
    let overview = queue_overview(store.as_ref(), args.queue.as_deref(), args.all).await?;
    if args.json {
        let items: Vec<Value> = overview
            .iter()
            .map(|o| {
                let q = &o.counts;
                let per_state: Map<String, Value> = TaskState::ALL
                    .iter()
                    .map(|s| (s.as_str().to_owned(), json!(q.count(*s))))
                    .collect();
                let total: u64 = TaskState::ALL.iter().map(|s| q.count(*s)).sum();
                let mut item = json!({
                    "queue": q.queue,
                    "counts": per_state,
                    "total": total,
                    "paused": o.pause.is_some(),
                    "paused_at": o.pause.as_ref().map(|p| format_time_ms(p.paused_at_ms)),
                    "paused_by": o.pause.as_ref().map(|p| p.paused_by.clone()),
                    "pause_reason": o.pause.as_ref().and_then(|p| p.reason.clone()),
                });
                if let (Some(b), Some(map)) = (&o.push, item.as_object_mut()) {
                    let view = serde_json::to_value(PushView::new(b.clone(), None))?;
                    map.insert("push".into(), view);
                }
                Ok(item)
            })
            .collect::<anyhow::Result<_>>()?;
        return print_json(&Value::Array(items), false);
    }
    if overview.is_empty() {
        if let Some(queue) = &args.queue {
            println!("queue {queue:?} holds no tasks");
            return Ok(());
        }
        if internal_hidden {
            println!("no tasks yet; messages and callbacks: `signet queues --all`");
            return Ok(());
        }
        println!(
            "no tasks yet; enqueue one with `signet enqueue --queue Q --task NAME --args '{{}}'`"
        );
        return Ok(());
    }
    let mut columns = vec!["QUEUE"];
    columns.extend(TaskState::ALL.iter().map(|s| s.as_str()));
    columns.push("total");
    columns.push("PUSH");
    columns.push("PAUSED");
    let mut table = Table::new(&columns);
    for o in &overview {
        let q = &o.counts;
        let mut cells = vec![q.queue.clone()];
        cells.extend(TaskState::ALL.iter().map(|s| q.count(*s).to_string()));
        cells.push(
            TaskState::ALL
                .iter()
                .map(|s| q.count(*s))
                .sum::<u64>()
                .to_string(),
        );
        cells.push(
            o.push
                .as_ref()
                .map_or_else(|| "-".to_owned(), |b| printable(&b.url)),
        );
        cells.push(o.pause.as_ref().map_or_else(
            || "-".to_owned(),
            |p| format!("since {}", format_time_ms(p.paused_at_ms)),
        ));
        table.row(cells);
    }
    print!("{}", table.render());
    Ok(())
}
